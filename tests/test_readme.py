"""The README's commands run as written, so the README cannot drift from the code.

The tour's ```sh blocks (between ``<!-- tour -->`` and ``<!-- /tour -->``) run with bash, in order, in a temporary
folder, through the real CLI (the venv's ``rdistill`` on PATH, this checkout's code first on PYTHONPATH) and the real
all-MiniLM-L6-v2, on a small BEIR collection this test writes: the tour's ``D=...`` line is pointed at it and its
training steps cut to a few. A block that still names ../shared after that skips, with its reason, where ../shared
is absent. The install and test commands at the top must be the ones .ci/run runs.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdistill.io import read_run
from tests.conftest import ROOT, SHARED

README = ROOT / "README.md"
TOUR = re.compile(r"<!-- tour -->(.*?)<!-- /tour -->", re.S)
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
# Each stage of the pipeline the tour must show (a block deleted by mistake fails here, not silently).
TOUR_STAGES = ("retrieve", "score-teacher", "fuse", "entropy", "sample", "train", "eval")

# Six topics with their own words: BM25 and MiniLM both find structure in them, and every query has a positive.
TOPICS = {
    "protein": "protein folding structure enzyme binding amino acid chain residue",
    "climate": "climate warming carbon emission temperature ocean ice sea",
    "vaccine": "vaccine immune antibody infection virus dose trial response",
    "neuron": "neuron brain synapse cortex signal memory learning plasticity",
    "cancer": "cancer tumour cell growth mutation therapy chemotherapy metastasis",
    "diet": "diet obesity sugar insulin metabolism weight fat glucose",
}
DOCS_PER_TOPIC = 8
QUERIES_PER_TOPIC = 4  # the last of each topic is a test query


def write_collection(folder: Path) -> tuple[int, int]:
    """A BEIR folder of 48 documents and 24 queries (18 train, 6 test); returns (train, test) query counts."""
    rng = random.Random(0)
    every_word = " ".join(TOPICS.values()).split()
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for topic, vocabulary in TOPICS.items():
            words = vocabulary.split()
            for i in range(DOCS_PER_TOPIC):
                text = " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(every_word) for _ in range(30))
                f.write(json.dumps({"_id": f"{topic}{i}", "title": f"{topic} study {i}", "text": text}) + "\n")
    qrels: dict[str, list[str]] = {"train": [], "test": []}
    with open(folder / "queries.jsonl", "w") as f:
        for topic, vocabulary in TOPICS.items():
            for j in range(QUERIES_PER_TOPIC):
                qid = f"{topic}-q{j}"
                f.write(json.dumps({"_id": qid, "text": " ".join(rng.sample(vocabulary.split(), 3))}) + "\n")
                split = "test" if j == QUERIES_PER_TOPIC - 1 else "train"
                qrels[split].append(f"{qid}\t{topic}{j}\t1")
    for split, rows in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return len(qrels["train"]), len(qrels["test"])


def tour_blocks() -> list[str]:
    found = TOUR.search(README.read_text(encoding="utf-8"))
    assert found, "README.md has no <!-- tour --> ... <!-- /tour --> section"
    blocks = SH_BLOCK.findall(found.group(1))
    assert blocks, "the README's tour has no ```sh blocks"
    return blocks


def tour_script(blocks: list[str], collection: Path, steps: int) -> str:
    """The blocks as one bash script: D pointed at the collection, training cut to a few steps."""
    script = "\n".join(blocks)
    script, n = re.subn(r"^D=\S+", f"D={collection}", script, count=1, flags=re.M)
    assert n == 1, "the tour must set the collection once, as a line D=FOLDER, so that it can be pointed elsewhere"
    script = re.sub(r"--max-steps \d+", f"--max-steps {steps}", script)
    return "set -euo pipefail\n" + script


def test_readme_tour_runs_as_written(tmp_path: Path, minilm_path: Path) -> None:
    blocks = tour_blocks()
    commands = " ".join(blocks)
    for stage in TOUR_STAGES:
        assert f"rdistill {stage} " in commands, f"the README's tour lost its `rdistill {stage}` step"
    collection = tmp_path / "collection"
    n_train, n_test = write_collection(collection)
    script = tour_script(blocks, collection, steps=2)
    if "../shared" in script:
        if not (SHARED / "data").is_dir():
            pytest.skip(f"a README tour block reads ../shared, which is absent ({SHARED})")
        script = script.replace("../shared", str(SHARED))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    # About 40 s of CPU (ten processes, MiniLM loaded four times); the generous limit is for a shared, loaded machine.
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"the README's tour failed:\n{proc.stderr[-4000:]}"
    if (work / "tour").is_dir():  # the tour works in a folder of its own
        work = work / "tour"

    # What the tour says each stage writes, and that the pieces fit together.
    train_run = read_run(work / "bm25.train.trec")
    assert len(train_run) == n_train
    teacher = read_run(work / "teacher.train.trec")
    assert set(teacher) == set(train_run)
    assert all(0.0 <= s <= 2.0 for docs in teacher.values() for s in docs.values())  # fused min-max scores
    entropies = [json.loads(line) for line in (work / "entropy.train.jsonl").read_text().splitlines()]
    assert len(entropies) == n_train
    groups = [json.loads(line) for line in (work / "groups.jsonl").read_text().splitlines()]
    assert len(groups) == n_train
    assert all(len(g["doc_ids"]) == 8 and g["scores"] is not None for g in groups)
    assert (work / "student" / "config.json").is_file()
    assert (work / "student" / "rdistill_documents.json").is_file()  # the frozen document tower it was trained with
    assert len(read_run(work / "student.test.trec")) == n_test
    assert "student.test.trec" in proc.stdout and "ndcg@10" in proc.stdout  # eval's table on stdout


def test_readme_test_commands_are_what_ci_runs() -> None:
    """The README's install and test commands are .ci/run's, and every make target it names exists."""
    readme = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    ci_targets = re.findall(r"^make (\S+)$", ci, flags=re.M)
    assert ci_targets, ".ci/run runs no make target"
    readme_targets = re.findall(r"^    make (\S+)", readme, flags=re.M)
    for target in ci_targets:
        assert target in readme_targets, f".ci/run runs `make {target}`, which the README's commands do not show"
    for target in readme_targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"README names `make {target}`: no such target"


def test_readme_is_short_and_docs_read_as_reports() -> None:
    """The README stays a few screens; the docs name machines and dates, never a working session."""
    assert README.stat().st_size <= 16 * 1024, "README.md is over 16 KB: move the detail to docs/"
    diary = re.compile(r"this session|earlier session|the session before|last session", re.I)
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not diary.search(line), f"{path.name}:{number}: say which machine and when, not which session"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_doc_links_resolve() -> None:
    """Every relative link in the README, docs/ and bench/README.md names a file that exists, and a heading in it."""
    pages = [README, ROOT / "DEVELOPING.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name} links to {target}: no such file"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{page.name} links to {target}: no such heading"
