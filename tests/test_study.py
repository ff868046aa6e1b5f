"""The whole study chain (`make demo`) on a tiny configuration: tiny random models, slices of real collections.

This is the integration test of every stage together through the Makefile a user runs: retrieve -> score-teacher
-> sample (two sources) -> train (two students) -> re-rank in and out of domain -> report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import DATA, ROOT


def make_slice(source: Path, target: Path, n_docs: int, splits: tuple[str, ...]) -> Path:
    """A real BEIR folder cut to its first n_docs documents and the queries judged on them."""
    target.mkdir(parents=True)
    (target / "qrels").mkdir()
    keep: set[str] = set()
    with open(source / "corpus.jsonl") as src, open(target / "corpus.jsonl", "w") as dst:
        for line in src:
            if len(keep) >= n_docs:
                break
            keep.add(orjson.loads(line)["_id"])
            dst.write(line)
    judged: set[str] = set()
    for split in splits:
        lines = (source / "qrels" / f"{split}.tsv").read_text().splitlines()
        kept = [line for line in lines[1:] if line.split("\t")[1] in keep and int(line.split("\t")[2]) > 0]
        judged |= {line.split("\t")[0] for line in kept}
        (target / "qrels" / f"{split}.tsv").write_text("\n".join([lines[0], *kept]) + "\n")
    with open(source / "queries.jsonl") as src, open(target / "queries.jsonl", "w") as dst:
        for line in src:
            if orjson.loads(line)["_id"] in judged:
                dst.write(line)
    return target


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_runs_the_whole_chain(tmp_path: Path, tiny_cross: Path, tiny_bi: Path) -> None:
    data = tmp_path / "data"
    make_slice(DATA / "cranfield", data / "cran", 300, ("train", "test"))
    make_slice(DATA / "vaswani", data / "vas", 300, ("test",))
    out = tmp_path / "out"
    cmd = ["make", "-C", str(ROOT), "demo", f"BIN={Path(sys.executable).parent}", f"DATA={data}", "DATASET=cran",
           "OOD=vas", f"OUT={out}", f"TEACHER_MODEL={tiny_cross}", f"STUDENT={tiny_bi}", "INIT_LAYERS=1",
           "GROUP_SIZE=4", "BATCH=2", "STEPS=3", "DEPTH=50", "RERANK_DEPTH=20", "WINDOW=1:20"]
    # The timeouts only guard against a hang (the fused teacher adds two stages per pool); on a shared machine the
    # chain can take several times its quiet-machine time.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    for text in ("| kl | bm25 | 1 |", "| kl | teacher | 1 |", "| loss | sampling | seeds | cran nDCG@10 | cran AP | "
                 "vas nDCG@10 |", "| (baseline) | bm25 |", "| (baseline) | teacher |"):
        assert text in report
    for collection in ("cran", "vas"):
        for student in ("bm25.kl.s42", "teacher.kl.s42"):
            run = out / "runs" / collection / f"{student}.trec"
            assert run.stat().st_size > 0
    assert (out / "entropy_vs_ndcg.png").stat().st_size > 0
    # Each student ships (issue 31): sentence-transformers loads it as trained, and its model card parses and says
    # how it was made, the sampling source included (train reads the groups file, so its sidecar).
    import yaml
    from sentence_transformers import SentenceTransformer

    for student in ("bm25.kl.s42", "teacher.kl.s42"):
        card = (out / "students" / student / "README.md").read_text()
        assert yaml.safe_load(card.split("---\n")[1])["datasets"] == ["cran"]
        assert f"\n# {student}\n" in card and "- Loss: kl" in card and "- Sampling: " in card
        assert SentenceTransformer(str(out / "students" / student), device="cpu").similarity_fn_name == "dot"
        # The default student trains its query tower only; its folder names the document tower it was trained
        # against, which is the initial model (here the tiny bi-encoder).
        tower = orjson.loads((out / "students" / student / "rdistill_documents.json").read_bytes())
        assert tower["model"] == str(tiny_bi) and tower["max_length"] == 256
    # The default teacher is the fusion of BM25 and TEACHER_MODEL over the same pools, positives included.
    fused = (out / "teacher.train.trec").read_text().splitlines()
    assert fused and all(line.endswith(" fused") and 0.0 <= float(line.split()[4]) <= 2.0 for line in fused)
    parts = [(out / "teacher-parts" / f"train.{p}.trec").read_text().splitlines() for p in ("bm25", "model")]
    assert len(parts[0]) == len(parts[1]) == len(fused)
    # The report says what each source's groups cost, from the stages' sidecars.
    cost = report.split("### What each sampling source's groups cost")[1]
    row = next(line for line in cost.splitlines() if line.startswith("| bm25 |"))
    assert "1 (bm25.train.trec)" in row and "Not counted" not in cost
    # A second `make demo` finds everything up to date and redoes nothing.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "rdistill train" not in again.stdout
    # Settings are inputs: more steps retrain the students (and re-rank with them) but keep retrieval, the teacher's
    # scores and the groups.
    more = subprocess.run([*cmd, "STEPS=4"], capture_output=True, text=True, timeout=900)
    assert more.returncode == 0, more.stderr[-3000:]
    assert more.stdout.count("rdistill train") == 2 and "--max-steps 4" in more.stdout
    for stage in ("rdistill retrieve", "rdistill sample", "--split train"):
        assert stage not in more.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_takes_data_given_then_shared_then_data_dir_else_says_how(tmp_path: Path) -> None:
    """Where `make demo` reads the collections (a dry run in a fresh folder, with the project's Makefile): DATA=
    if given, ../shared/data if present, data/ (what `make data` writes); with none, one line before any stage."""
    clone = tmp_path / "clone"
    clone.mkdir()

    def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
        # --no-print-directory: under `make test` this make is a sub-make, which would say where it runs.
        return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-n", "demo", *args],
                              cwd=clone, capture_output=True, text=True, timeout=60)

    def collections(folder: Path) -> None:
        for name in ("scifact", "cranfield", "vaswani"):
            (folder / name).mkdir(parents=True)
            (folder / name / "corpus.jsonl").write_text("")

    none = dry_run()
    assert none.returncode != 0 and none.stdout == ""
    assert none.stderr.count("\n") == 1 and "no collection data/scifact" in none.stderr
    assert "run `make data` first" in none.stderr
    collections(clone / "data")
    assert "--corpus data/scifact " in dry_run().stdout
    collections(tmp_path / "shared" / "data")
    assert "--corpus ../shared/data/scifact " in dry_run().stdout
    collections(tmp_path / "mine")
    assert f"--corpus {tmp_path / 'mine'}/scifact " in dry_run(f"DATA={tmp_path / 'mine'}").stdout
    (tmp_path / "mine" / "vaswani" / "corpus.jsonl").unlink()
    partial = dry_run(f"DATA={tmp_path / 'mine'}")
    assert partial.returncode != 0 and f"no collection {tmp_path / 'mine'}/vaswani" in partial.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_without_labels_reads_no_training_judgment(tmp_path: Path) -> None:
    """`make demo LABELS=none` (issue 28): the same chain with the teacher's top document as each group's positive;
    no stage is given the training queries' judgments (only the evaluation reads the test qrels), and its outputs go
    to their own folder, so the judged demo's are kept. A dry run in a fresh folder with empty collections."""
    clone = tmp_path / "clone"
    for name in ("scifact", "cranfield", "vaswani"):
        (clone / "data" / name).mkdir(parents=True)
        (clone / "data" / name / "corpus.jsonl").write_text("")

    def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-n", "demo", *args],
                              cwd=clone, capture_output=True, text=True, timeout=60)

    judged, free = dry_run(), dry_run("LABELS=none")
    assert judged.returncode == 0 and free.returncode == 0, free.stderr
    assert "--qrels data/scifact --split train" in judged.stdout
    commands = free.stdout.replace("\\\n", " ").splitlines()
    samples = [c for c in commands if " sample " in c]
    assert samples and all("--positives teacher:1" in c for c in samples)
    for command in commands:
        assert not re.search(r"--qrels \S+ --split train", command), command
        assert "out/demo/" not in command, command
    assert "out/demo-nolabels/" in free.stdout
    # The test judgments are still read, by the evaluation (the report) only.
    assert any(" report " in c and "scifact=data/scifact:test" in c for c in commands)
    bad = dry_run("LABELS=some")
    assert bad.returncode != 0 and "expected judged or none" in bad.stderr
