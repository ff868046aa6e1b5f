"""rdistill fuse through the CLI: the same numbers as ranx.fuse, a case computed by hand, missing documents and
queries as documented, stdin, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.conftest import run_from_text as parse


def write(path: Path, run: dict[str, dict[str, float]], tag: str = "x") -> Path:
    from rdistill.io import write_run

    with open(path, "w") as out:
        write_run(out, run, tag)
    return path


def random_runs(seed: int, overlap: bool) -> tuple[dict, dict, dict]:
    """Three runs over 20 queries, distinct scores (no ties, so ranx's rank order is trec_eval's); with
    overlap=False each run misses some of the others' documents."""
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(30)]
    runs: list[dict] = [{}, {}, {}]
    for q in range(20):
        qid = f"q{q}"
        for r, run in enumerate(runs):
            pool = docs if overlap else rng.sample(docs, 12 + r)
            run[qid] = {d: rng.uniform(-5, 20) * (r + 1) for d in pool}
    return runs[0], runs[1], runs[2]


def ranx_fuse(runs: list[dict], method: str, norm: str | None, params: dict) -> dict[str, dict[str, float]]:
    from ranx import Run, fuse

    fused = fuse([Run(r) for r in runs], norm=norm, method=method, params=params)
    return {q: dict(d) for q, d in fused.to_dict().items()}


def assert_same(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for qid in ours:
        assert ours[qid].keys() == theirs[qid].keys(), qid
        for doc, score in ours[qid].items():
            assert score == pytest.approx(theirs[qid][doc], rel=1e-12, abs=1e-12), (qid, doc)


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("method,ranx_method,norm,ranx_norm", [
    ("wsum", "wsum", "minmax", "min-max"),
    ("combmnz", "mnz", "minmax", "min-max"),
    ("rrf", "rrf", "minmax", None),
])
def test_same_numbers_as_ranx_fuse(cli, tmp_path: Path, overlap: bool, method: str, ranx_method: str, norm: str,
                                   ranx_norm: str | None) -> None:
    runs = random_runs(7, overlap)
    files = [write(tmp_path / f"r{i}.trec", r) for i, r in enumerate(runs)]
    args = ["fuse", "--method", method, "--norm", norm, *files]
    params: dict = {}
    if method == "wsum":
        args[1:1] = ["--weights", "0.5,0.3,0.2"]
        params = {"weights": [0.5, 0.3, 0.2]}
    if method == "combmnz":  # ranx's CombMNZ is unweighted: ours with weights 1,1,1
        args[1:1] = ["--weights", "1,1,1"]
    if method == "rrf":
        # ranx's rrf is unweighted: 1 / (k + rank); ours with weights 1,1,1 is the same sum.
        args[1:1] = ["--weights", "1,1,1", "--rrf-k", "10"]
        params = {"k": 10}
    result = cli(*args)
    assert result.exit_code == 0, result
    assert_same(parse(result.stdout), ranx_fuse(list(runs), ranx_method, ranx_norm, params))


@pytest.mark.parametrize("norm,ranx_norm", [("zscore", "zmuv"), ("none", None)])
def test_zscore_and_none_match_ranx_when_every_run_holds_every_document(cli, tmp_path: Path, norm: str,
                                                                          ranx_norm: str | None) -> None:
    # ranx scores a missing document 0, we give it the run's normalised minimum: with full pools they agree.
    runs = random_runs(3, overlap=True)
    files = [write(tmp_path / f"r{i}.trec", r) for i, r in enumerate(runs)]
    result = cli("fuse", "--norm", norm, "--weights", "1,2,3", *files)
    assert result.exit_code == 0, result
    assert_same(parse(result.stdout), ranx_fuse(list(runs), "wsum", ranx_norm, {"weights": [1, 2, 3]}))


def test_hand_computed_case_and_missing_documents(cli, tmp_path: Path) -> None:
    a = write(tmp_path / "a.trec", {"q1": {"d1": 10.0, "d2": 6.0, "d3": 2.0}})
    b = write(tmp_path / "b.trec", {"q1": {"d1": 0.5, "d4": 0.9, "d2": 0.1}})
    # minmax: a = {d1: 1, d2: 0.5, d3: 0}, b = {d1: 0.5, d4: 1, d2: 0}; d3 missing from b gets b's minimum 0,
    # d4 missing from a gets a's minimum 0. Equal weights 0.5.
    result = cli("fuse", a, b)
    assert result.exit_code == 0, result
    assert result.stdout == ("q1 Q0 d1 1 0.75 fused\nq1 Q0 d4 2 0.5 fused\nq1 Q0 d2 3 0.25 fused\n"
                             "q1 Q0 d3 4 0.0 fused\n")
    # none: the missing document gets the run's raw minimum (a: 2.0 for d4; b: 0.1 for d3).
    got = parse(cli("fuse", "--norm", "none", "--weights", "1,1", a, b).stdout)["q1"]
    assert got == pytest.approx({"d1": 10.5, "d2": 6.1, "d3": 2.1, "d4": 2.9})
    # combmnz: the sum times how many runs hold the document: d1 (1 + 0.5) x 2, d4 1 x 1, d2 0.5 x 2, d3 0 x 1.
    got = parse(cli("fuse", "--method", "combmnz", "--weights", "1,1", a, b).stdout)["q1"]
    assert got == pytest.approx({"d1": 3.0, "d4": 1.0, "d2": 1.0, "d3": 0.0})
    # rrf, k = 60: d1 ranks 1 in a and 2 in b; d2 2 and 3; d3 only in a (3); d4 only in b (1).
    got = parse(cli("fuse", "--method", "rrf", "--weights", "1,1", a, b).stdout)["q1"]
    assert got == pytest.approx({"d1": 1 / 61 + 1 / 62, "d2": 1 / 62 + 1 / 63, "d3": 1 / 63, "d4": 1 / 61})
    bad = cli("fuse", "--require-all", a, b)
    assert bad.exit_code == 2
    assert "a.trec: query 'q1' has no score for document 'd4' (--require-all)" in bad.stderr


def test_missing_queries_are_kept_and_counted_and_stdin_works(cli, tmp_path: Path) -> None:
    a = write(tmp_path / "a.trec", {"q1": {"d1": 1.0, "d2": 0.0}, "q2": {"d1": 3.0, "d2": 1.0}})
    b = write(tmp_path / "b.trec", {"q2": {"d1": 0.0, "d2": 1.0}, "q3": {"d5": 2.0, "d6": 1.0}})
    result = cli("fuse", "-o", tmp_path / "f.trec", "-", b, input=a.read_text())
    assert result.exit_code == 0, result
    assert "2 of 3 queries are missing from some run" in result.stderr
    out = (tmp_path / "f.trec").read_text()
    assert [line.split()[0] for line in out.splitlines()] == ["q1", "q1", "q2", "q2", "q3", "q3"]
    fused = parse(out)
    assert fused["q1"] == {"d1": 0.5, "d2": 0.0}  # only a lists q1: its half of the weight
    assert fused["q2"] == {"d1": 0.5, "d2": 0.5}
    meta = json.loads((tmp_path / "f.trec.meta.json").read_text())
    assert meta["queries"] == 3 and meta["partial_queries"] == 2 and meta["pairs"] == 6
    assert "wall_seconds" in meta
    bad = cli("fuse", "--require-all", a, b)
    assert bad.exit_code == 2 and "b.trec: has no query 'q1' (--require-all)" in bad.stderr


def test_runs_in_different_query_orders(cli, tmp_path: Path) -> None:
    runs = random_runs(11, overlap=False)
    files = [write(tmp_path / "r0.trec", runs[0])]
    files.append(write(tmp_path / "r1.trec", dict(reversed(list(runs[1].items())))))
    result = cli("fuse", *files)
    same = cli("fuse", files[0], write(tmp_path / "r1s.trec", runs[1]))
    assert result.exit_code == 0, result
    assert result.stdout == same.stdout


def test_bad_input(cli, tmp_path: Path) -> None:
    a = write(tmp_path / "a.trec", {"q1": {"d1": 1.0}})
    broken = tmp_path / "broken.trec"
    broken.write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 oops x\n")
    cases = [
        (["fuse", a], "at least two runs"),
        (["fuse", "-", "-"], "only one of the runs can be -"),
        (["fuse", "--method", "max", a, a], "--method 'max'"),
        (["fuse", "--norm", "l2", a, a], "--norm 'l2'"),
        (["fuse", "--weights", "1,x", a, a], "--weights '1,x'"),
        (["fuse", "--weights", "1,1,1", a, a], "gives 3 weight(s) for 2 runs"),
        (["fuse", a, broken], f"{broken}:2: expected a numeric score, got 'oops'"),
        (["fuse", a, tmp_path / "nope.trec"], "no such file"),
    ]
    for args, message in cases:
        result = cli(*args, input="")
        assert result.exit_code == 2, (args, result)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_fused_bm25_and_bm25_is_bm25(cli, tmp_path: Path) -> None:
    # A real run fused with itself ranks as the run does (minmax is monotone per query).
    scifact = DATA / "scifact"
    run = cli("retrieve", "--corpus", scifact, "--queries", scifact, "--split", "test", "--k", "20").stdout
    path = tmp_path / "bm25.trec"
    path.write_text(run)
    fused = cli("fuse", path, path).stdout
    order = [(line.split()[0], line.split()[2]) for line in run.splitlines()]
    assert [(line.split()[0], line.split()[2]) for line in fused.splitlines()] == order
