"""`rdistill report` on a study folder laid out as the Makefile writes it."""

from __future__ import annotations

import shutil
from pathlib import Path

from rdistill.io import format_run_query, read_run
from rdistill.report import parse_collection_arg, parse_student
from tests.conftest import SAMPLE, run_from_text


def write_run(path: Path, run: dict[str, dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(format_run_query(q, docs, "t") for q, docs in run.items()))


def make_study(root: Path) -> None:
    base = read_run(SAMPLE / "run.trec")
    reversed_run = {q: {d: -s for d, s in docs.items()} for q, docs in base.items()}
    for collection in ("sample", "other"):
        write_run(root / "runs" / collection / "bm25.marginmse.s1.trec", base)
        write_run(root / "runs" / collection / "bm25.marginmse.s2.trec", base)
        write_run(root / "runs" / collection / "teacher.marginmse.s1.trec", reversed_run)
        write_run(root / "runs" / collection / "bm25~below-median.lce.s1.trec", base)
        write_run(root / "runs" / collection / "bm25.lce.s1.trec", reversed_run)
        write_run(root / "baselines" / collection / "bm25.trec", base)


def test_student_names_parse() -> None:
    assert parse_student("bm25.marginmse.s42")[0].label == "bm25.marginmse"
    system, seed = parse_student("bm25~inner.kl.s3")
    assert (system.source, system.cut, system.loss, seed) == ("bm25", "inner", "kl", 3)
    assert parse_student("teacher") is None
    assert parse_collection_arg("scifact=../d/scifact:test") == ("scifact", "../d/scifact", "test")
    assert parse_collection_arg("x=qrels.txt") == ("x", "qrels.txt", None)


def test_report_tables_and_plot(cli, tmp_path: Path) -> None:
    make_study(tmp_path)
    entropy = tmp_path / "entropy.jsonl"
    entropy.write_text("".join(f'{{"query_id": "{q}", "entropy": {i / 2}, "n": 4, "definition": "softmax", '
                               f'"temperature": 1.0}}\n' for i, q in enumerate(["q1", "q2", "q3"])))
    shutil.copy(SAMPLE / "qrels.txt", tmp_path / "qrels.txt")
    result = cli("report", "--runs", tmp_path / "runs", "--baselines", tmp_path / "baselines",
                 "--qrels", f"sample={tmp_path / 'qrels.txt'}", "--qrels", f"other={tmp_path / 'qrels.txt'}",
                 "--entropy", entropy, "--plot", tmp_path / "plot.png", "-o", tmp_path / "report.md")
    assert result.exit_code == 0, result
    report = (tmp_path / "report.md").read_text()
    assert "### Sampling source x loss" in report and "### Entropy cuts" in report
    assert "| loss | sampling | seeds | sample nDCG@10 | sample AP | other nDCG@10 |" in report
    row = next(line for line in report.splitlines() if line.startswith("| marginmse | bm25 |"))
    # Rows say how many seeds they average: bm25.marginmse has two runs, the others one.
    assert row.startswith("| marginmse | bm25 | 2 |")
    assert "| marginmse | teacher | 1 |" in report and "| (baseline) | bm25 | - |" in report
    assert "**" in row  # the BM25-ordered student beats its reversed twin, so it is the best of each column
    assert "| (baseline) | bm25 |" in report
    # The cut table reads each cut against the same source and loss trained on all queries.
    cuts = report.split("### Entropy cuts")[1]
    assert "| lce | bm25 (below-median) | 1 | **" in cuts and "| lce | bm25 (all queries) |" in cuts
    assert "marginmse" not in cuts.split("| (baseline)")[0]
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_runs_is_a_clear_error(cli, tmp_path: Path) -> None:
    result = cli("report", "--runs", tmp_path, "--qrels", f"s={SAMPLE / 'qrels.txt'}")
    assert result.exit_code == 2
    assert "no student runs found" in result.stderr


def test_report_costs_each_source_from_real_sidecars(cli, tmp_path: Path) -> None:
    """Real stages with -o (retrieve, BM25 as a teacher, fuse, sample) leave sidecars; report --groups follows
    them back from each source's groups and adds their wall seconds and counts."""
    import json

    from tests.conftest import DATA

    cran = DATA / "cranfield"
    data = ["--queries", cran, "--corpus", cran]
    bm25, teacher, fused = tmp_path / "bm25.train.trec", tmp_path / "t.bm25.trec", tmp_path / "teacher.trec"
    groups = tmp_path / "groups"
    steps = [
        ("retrieve", *data, "--split", "train", "--k", "20", "--index", tmp_path / "idx", "-o", bm25),
        ("score-teacher", "--model", "bm25", "--index", tmp_path / "idx", *data, "--qrels", cran, "--split",
         "train", "-o", teacher, bm25),
        ("fuse", "-o", fused, teacher, teacher),
        ("sample", "--strategy", "window", "--window", "1:20", "--scores", fused, "--qrels", cran, "--split",
         "train", "-o", groups / "bm25.jsonl", bm25),
        ("sample", "--strategy", "teacher", "--window", "1:20", "--qrels", cran, "--split", "train",
         "-o", groups / "teacher.jsonl", fused),
    ]
    for step in steps:
        result = cli(*step)
        assert result.exit_code == 0, (step, result)
    test_run = cli("retrieve", *data, "--split", "test", "--k", "20", "--index", tmp_path / "idx").stdout
    for source in ("bm25", "teacher"):
        write_run(tmp_path / "runs" / "cran" / f"{source}.lce.s1.trec", run_from_text(test_run))
    result = cli("report", "--runs", tmp_path / "runs", "--groups", groups, "--qrels", f"cran={cran}:test")
    assert result.exit_code == 0, result
    meta = {p: json.loads(p.with_name(p.name + ".meta.json").read_text()) for p in (bm25, teacher, fused)}
    sample_meta = {s: json.loads((groups / f"{s}.jsonl.meta.json").read_text()) for s in ("bm25", "teacher")}
    assert all(m["wall_seconds"] > 0 for m in [*meta.values(), *sample_meta.values()])
    shared = sum(m["wall_seconds"] for m in meta.values())
    cost = result.stdout.split("### What each sampling source's groups cost")[1]
    for source in ("bm25", "teacher"):
        row = next(line for line in cost.splitlines() if line.startswith(f"| {source} |")).split(" | ")
        assert row[1] == str(sample_meta[source]["stats"]["groups"])
        assert row[2] == "1 (bm25.train.trec)"
        assert row[3] == "0" and row[4] == f"{meta[teacher]['pairs']:,}"
        assert row[5].rstrip(" |") == f"{shared + sample_meta[source]['wall_seconds']:.0f}"
    assert "Not counted" not in cost
    # A study started from a copy of another (`cp -a out/demo out/grid`, as docs/study.md does): the copied
    # sidecars still name the first folder's files, the new groups name the copy's; each stage is charged once.
    grid = tmp_path / "grid"
    grid.mkdir()
    for path in (bm25, teacher, fused):
        for name in (path.name, path.name + ".meta.json"):
            shutil.copy2(path.with_name(name), grid / name)
    regrouped = cli("sample", "--strategy", "window", "--window", "1:20", "--scores", grid / fused.name, "--qrels",
                    cran, "--split", "train", "-o", grid / "groups" / "bm25.jsonl", grid / bm25.name)
    assert regrouped.exit_code == 0, regrouped
    again = cli("report", "--runs", tmp_path / "runs", "--groups", grid / "groups", "--qrels", f"cran={cran}:test")
    assert again.exit_code == 0, again
    row = next(line for line in again.stdout.split("groups cost")[1].splitlines() if line.startswith("| bm25 |"))
    assert row.split(" | ")[2] == "1 (bm25.train.trec)" and row.split(" | ")[4] == f"{meta[teacher]['pairs']:,}"
