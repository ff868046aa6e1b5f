"""`rdistill eval` against trec_eval: its own conformance files, and pytrec_eval (trec_eval compiled) on real BM25
runs of cranfield, scifact and vaswani, including score ties, queries missing from the run and a graded --rel-level.
Then the CLI's layouts and errors, and the comparison statistics against scipy and hand-computed values."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from rdistill.stats import adjust, bonferroni, compare, holm, paired_t, tost
from tests.conftest import CONFORMANCE, DATA, SAMPLE

# Our name -> trec_eval's, for every measure checked against the oracle.
TREC_NAMES = {
    "map": "map", "map@10": "map_cut_10", "mrr": "recip_rank", "precision@5": "P_5", "precision@10": "P_10",
    "recall@10": "recall_10", "recall@100": "recall_100", "ndcg@5": "ndcg_cut_5", "ndcg@10": "ndcg_cut_10",
    "ndcg": "ndcg",
}
MEASURES = ",".join(TREC_NAMES)


def per_query_json(cli, *args: str) -> dict[str, dict[str, float]]:
    """Run `rdistill eval -q --json` and return {query: {measure: value}}."""
    result = cli("eval", "-q", "--json", *args)
    assert result.exit_code == 0, result
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    return {r.pop("query_id"): r for r in rows}


def mean_json(cli, *args: str) -> dict[str, float]:
    result = cli("eval", "--json", *args)
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    return orjson.loads(lines[0])


# ------------------------------------------------------------------------------------ trec_eval's own test files


def oracle_file(name: str) -> dict[tuple[str, str], float]:
    wanted = {v: k for k, v in TREC_NAMES.items()}
    out = {}
    for line in (CONFORMANCE / name).read_text().splitlines():
        measure, qid, value = line.split()
        if measure in wanted:
            out[(wanted[measure], qid)] = float(value)
    return out


@pytest.mark.parametrize(("expected", "run", "flags"), [
    ("out.test", "results.test", []),
    ("out.test.aq", "results.test", []),
    ("out.test.aqc", "results.trunc", ["-c"]),
])
def test_equals_trec_eval_conformance_files(cli, tmp_path: Path, expected: str, run: str, flags: list[str]) -> None:
    run_path = CONFORMANCE / run
    if run == "results.trunc":
        # results.trunc carries junk after the sixth field ("reserved for future expansion"), which trec_eval skips
        # and our strict reader refuses; the first six fields are the run.
        run_path = tmp_path / run
        run_path.write_text("".join(" ".join(line.split()[:6]) + "\n"
                                    for line in (CONFORMANCE / run).read_text().splitlines()))
    result = cli("eval", "--qrels", CONFORMANCE / "qrels.test", "-m", MEASURES, "-q", "--digits", "8", *flags,
                 run_path)
    assert result.exit_code == 0, result
    ours = {}
    for line in result.stdout.splitlines():
        measure, qid, value = line.split("\t")
        ours[(measure, qid)] = float(value)
    want = oracle_file(expected)
    assert len(want) >= 4
    for key, value in want.items():
        assert ours[key] == pytest.approx(value, abs=5e-5), key
    if expected == "out.test.aqc":  # query 302 is missing from the truncated run: it counts, as zero
        assert ours[("map", "302")] == 0.0 and ours[("num_q", "all")] == 3


# --------------------------------------------------------------------------------- pytrec_eval on real BM25 runs


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bm25_run(collection: str, max_queries: int | None = None, depth: int = 100) -> dict[str, dict[str, float]]:
    """A real BM25 run from rank_bm25 (Okapi, k1 1.2, b 0.75) over a collection's test queries."""
    from rank_bm25 import BM25Okapi

    from rdistill.data import iter_corpus, load_queries

    docs = list(iter_corpus(str(DATA / collection)))
    bm25 = BM25Okapi([tokens(d.full_text) for d in docs], k1=1.2, b=0.75)
    queries = list(load_queries(str(DATA / collection), "test").items())[:max_queries]
    run = {}
    for qid, text in queries:
        scores = bm25.get_scores(tokens(text))
        top = np.argsort(-scores, kind="stable")[:depth]
        run[qid] = {docs[i].doc_id: float(scores[i]) for i in top}
    return run


def write_run(path: Path, run: dict[str, dict[str, float]], shuffle: bool = False) -> Path:
    lines = [f"{q} Q0 {d} 0 {s!r} t" for q, docs in run.items() for d, s in docs.items()]
    if shuffle:  # file order and rank column must not matter
        lines = lines[::-1]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runs")
    runs = {
        "cranfield": bm25_run("cranfield"),
        "scifact": bm25_run("scifact", max_queries=100),
        "vaswani": bm25_run("vaswani"),
    }
    out = {name: write_run(folder / f"{name}.trec", run) for name, run in runs.items()}
    # Deliberate ties: BM25 scores rounded to whole numbers leave many equal scores per query, so the order
    # within a tie (docno descending in trec_eval) decides the values.
    ties = {q: {d: float(round(s)) for d, s in docs.items()} for q, docs in runs["scifact"].items()}
    out["scifact-ties"] = write_run(folder / "scifact-ties.trec", ties, shuffle=True)
    # Missing queries (every third judged query dropped) and a query that has no judgments at all.
    gappy = {q: docs for i, (q, docs) in enumerate(runs["cranfield"].items()) if i % 3}
    gappy["no-such-query"] = {"1": 1.0, "2": 0.5}
    out["cranfield-gaps"] = write_run(folder / "cranfield-gaps.trec", gappy)
    return out


def pytrec(qrels: dict, run: dict, rel_level: int = 1) -> dict[str, dict[str, float]]:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_NAMES.values()), relevance_level=rel_level)
    return evaluator.evaluate(run)


@pytest.mark.parametrize(("name", "collection", "rel_level"), [
    ("cranfield", "cranfield", 1),
    ("cranfield", "cranfield", 3),  # graded qrels (1..4): binary measures count levels >= 3, nDCG keeps gains
    ("scifact", "scifact", 1),
    ("vaswani", "vaswani", 1),
    ("scifact-ties", "scifact", 1),
    ("cranfield-gaps", "cranfield", 1),
])
def test_equals_pytrec_eval_on_real_runs(cli, real_runs: dict[str, Path], name: str, collection: str,
                                         rel_level: int) -> None:
    from rdistill.data import load_qrels
    from rdistill.io import read_run

    qrels = load_qrels(str(DATA / collection), "test")
    run = read_run(real_runs[name])
    oracle = pytrec(qrels, run, rel_level)
    args = ["--qrels", str(DATA / collection), "--split", "test", "-m", MEASURES, "--rel-level", str(rel_level),
            str(real_runs[name])]
    ours = per_query_json(cli, *args)
    assert set(ours) == set(oracle)  # exactly the queries with both judgments and results
    assert len(ours) >= 50
    for qid, values in oracle.items():
        for measure, trec_name in TREC_NAMES.items():
            assert ours[qid][measure] == pytest.approx(values[trec_name], abs=1e-9), (qid, measure)
    means = mean_json(cli, *args)
    for measure, trec_name in TREC_NAMES.items():
        assert means[measure] == pytest.approx(np.mean([v[trec_name] for v in oracle.values()]), abs=1e-9)
    # trec_eval -c: every judged query counts, a missing one as 0.
    complete = mean_json(cli, "-c", *args)
    for measure, trec_name in TREC_NAMES.items():
        total = sum(v[trec_name] for v in oracle.values())
        assert complete[measure] == pytest.approx(total / len(qrels), abs=1e-9)
    if name == "cranfield-gaps":
        assert len(oracle) < len(qrels) and complete["map"] < means["map"]


def test_rel_level_on_trec_eval_graded_qrels(cli) -> None:
    """qrels.rel_level has levels -1..4: -l2 against pytrec_eval's relevance_level=2, and the ranx suffix form."""
    from rdistill.io import read_qrels, read_run

    qrels, run = read_qrels(CONFORMANCE / "qrels.rel_level"), read_run(CONFORMANCE / "results.test")
    oracle = pytrec(qrels, run, rel_level=2)
    ours = per_query_json(cli, "--qrels", CONFORMANCE / "qrels.rel_level", "-m", MEASURES, "-l", "2",
                             CONFORMANCE / "results.test")
    for qid, values in oracle.items():
        for measure, trec_name in TREC_NAMES.items():
            assert ours[qid][measure] == pytest.approx(values[trec_name], abs=1e-9), (qid, measure)
    suffixed = mean_json(cli, "--qrels", CONFORMANCE / "qrels.rel_level", "-m", "map-l2,mrr-l2",
                         CONFORMANCE / "results.test")
    assert suffixed["map-l2"] == pytest.approx(np.mean([v["map"] for v in oracle.values()]), abs=1e-9)
    assert suffixed["mrr-l2"] == pytest.approx(np.mean([v["recip_rank"] for v in oracle.values()]), abs=1e-9)


# ------------------------------------------------------------------------------------------------------ the CLI


def test_contract_one_json_object(cli, real_runs: dict[str, Path]) -> None:
    result = cli("eval", "--qrels", DATA / "cranfield", "--split", "test", "--metrics",
                 "ndcg@10,map,mrr,precision@10,recall@100", "--json", real_runs["cranfield"])
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    obj = orjson.loads(lines[0])
    assert list(obj) == ["ndcg@10", "map", "mrr", "precision@10", "recall@100"]
    assert all(0 < v <= 1 for v in obj.values())


def test_several_runs_json_lines_and_table(cli, real_runs: dict[str, Path]) -> None:
    a, b = real_runs["cranfield"], real_runs["cranfield-gaps"]
    result = cli("eval", "--qrels", DATA / "cranfield", "--split", "test", "-m", "ndcg@10,map", "--json", a, b)
    assert result.exit_code == 0, result
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["run"] for r in rows] == [str(a), str(b)]
    assert set(rows[0]) == {"run", "ndcg@10", "map"}

    table = cli("eval", "--qrels", DATA / "cranfield", "--split", "test", "-m", "ndcg@10,map", a, b)
    assert table.exit_code == 0, table
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["run", "ndcg@10", "map", "queries"]
    assert lines[1].split()[0] == str(a) and lines[1].split()[1] == f"{rows[0]['ndcg@10']:.4f}"
    assert lines[2].split()[-1] == "50"  # two thirds of cranfield's 75 judged test queries
    assert "Paired t-test" in table.stdout and "TOST" in table.stdout and "Equivalence groups" in table.stdout


def test_sample_data_table_per_query_stdin_and_ties(cli) -> None:
    run = (SAMPLE / "run.trec").read_text()
    result = cli("eval", "--qrels", SAMPLE / "qrels.txt", "-q", "-m", "map,precision@2", input=run)
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    # q2's d5 and d2 tie at 3.5: trec_eval puts d5 (docno descending) first, so relevant d2 is third.
    assert "map\tq2\t0.8333" in lines and "precision@2\tq2\t0.5000" in lines
    assert lines[-3:] == ["num_q\tall\t3", "map\tall\t0.8889", "precision@2\tall\t0.6667"]
    # -c: q4 is judged but missing from the run, so it scores 0 and the mean is over 4 queries.
    complete = cli("eval", "--qrels", SAMPLE / "qrels.txt", "-c", "-q", "-m", "map", SAMPLE / "run.trec")
    assert "map\tq4\t0.0000" in complete.stdout and "num_q\tall\t4" in complete.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "ndcg@10,bleu"], "unknown measure 'bleu'; valid: ndcg@K, map"),
    (["-m", "ndcg@0"], "the cutoff after @ must be at least 1"),
    (["--baseline", "other.trec"], "--baseline 'other.trec' is not one of the runs given"),
    (["--correction", "sidak"], "--correction 'sidak': expected one of holm, bonferroni, none"),
])
def test_usage_errors_are_one_line(cli, args: list[str], message: str) -> None:
    result = cli("eval", "--qrels", SAMPLE / "qrels.txt", *args, SAMPLE / "run.trec")
    assert result.exit_code == 2
    assert result.stderr.startswith("rdistill: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_input_errors_name_file_and_line(cli, tmp_path: Path) -> None:
    bad_qrels = tmp_path / "qrels.txt"
    bad_qrels.write_text("q1 0 d1 1\nq1 0 d2 high\n")
    result = cli("eval", "--qrels", bad_qrels, SAMPLE / "run.trec")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"rdistill: error: {bad_qrels}:2: expected an integer relevance level, got 'high'"
    # No query in common: the wrong split or the wrong qrels, said plainly.
    result = cli("eval", "--qrels", DATA / "scifact", "--split", "test", SAMPLE / "run.trec")
    assert result.exit_code == 2 and "no query of the run appears in the qrels" in result.stderr


# ------------------------------------------------------------------------------------------------ the statistics


def test_holm_and_bonferroni_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust([0.5, 0.9], "holm") == [1.0, 1.0] and adjust(p, "none") == p


def test_paired_t_and_tost_against_scipy() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.uniform(size=60)
    y = x + rng.normal(0.002, 0.01, size=60)
    t, p = paired_t(y, x)
    ref = stats.ttest_rel(y, x)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    p_lower, p_upper = tost(y, x, 0.01)
    d = y - x
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert p_lower == pytest.approx(stats.t.sf((d.mean() + 0.01) / se, len(d) - 1))
    assert p_upper == pytest.approx(stats.t.cdf((d.mean() - 0.01) / se, len(d) - 1))
    assert max(p_lower, p_upper) < 0.10  # within +-0.01: equivalent
    assert max(tost(x + 0.05, x + rng.normal(0, 0.01, size=60), 0.01)) > 0.10  # 0.05 apart: not


def test_compare_groups_equivalent_runs_with_the_best() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.8, size=80)
    runs = {"a": base, "b": base + rng.normal(0.0, 0.005, size=80), "c": base - 0.1 + rng.normal(0, 0.01, size=80)}
    per_query = {name: {"ndcg@10": {str(i): float(v) for i, v in enumerate(vals)}} for name, vals in runs.items()}
    result = compare(per_query, ["ndcg@10"], "c", margin=0.01)
    assert {t.run for t in result.paired} == {"a", "b"}
    assert all(t.significant and t.p_adjusted >= t.p for t in result.paired)
    best = result.equivalence[0].best
    assert best in ("a", "b")
    assert result.groups()["ndcg@10"] == [best, "b" if best == "a" else "a"]
    assert not [e for e in result.equivalence if e.run == "c"][0].equivalent


@pytest.mark.parametrize(("content", "line"), [
    (b"q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 1.5\n", 2),  # 5 fields
    (b"q1 Q0 d1 1 2.5 t\n\nq1 Q0 d2 2 nan t\n", 3),  # not finite
    (b"q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 high t\n", 2),  # not a number
    (b"q1 Q0 d1 1 2.5 t\nq2 Q0 d1 1 2.5 t\nq1 Q0 d1 2 1.5 t\n", 3),  # a document twice for a query
    (b"q1 Q0 d1 1 2.5 t\nq1 Q0 d\xff 2 1.5 t\n", 2),  # not UTF-8
    (b"\n \n", None),  # empty
])
def test_run_table_errors_equal_the_line_reader(cli, tmp_path: Path, content: bytes, line: int | None) -> None:
    """`eval` reads runs in blocks (io.read_run_table); on bad input it says what read_run says, file and line."""
    from rdistill.errors import InputError
    from rdistill.io import read_run

    path = tmp_path / "run.trec"
    path.write_bytes(content)
    with pytest.raises(InputError) as expected:
        read_run(path)
    assert expected.value.line == line
    result = cli("eval", "--qrels", SAMPLE / "qrels.txt", path)
    assert result.exit_code == 2 and result.stderr == f"rdistill: error: {expected.value}\n"


def test_run_table_equals_read_run(tmp_path: Path) -> None:
    """Blank lines, tabs, CRLF, gzip, and a query split across the file read as read_run reads them."""
    import gzip

    from rdistill.io import read_run, read_run_table
    from rdistill.schema import RunTable

    text = "q2 Q0 d1 1 3 a\r\n\nq1\tQ0\td1\t1\t2.5\tb\n  q2 Q0 d9 2 -1e-3 a\nq1 Q0 d0 x 2.5 b"
    for path in (tmp_path / "run.trec", tmp_path / "run.trec.gz"):
        path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
        got, want = read_run_table(path), RunTable.from_run(read_run(path))

        def rows(t: RunTable) -> set[tuple[str, str, float]]:
            return {(t.queries[q], d, s) for q, d, s in zip(t.query_index.tolist(), t.docs, t.scores.tolist(),
                                                            strict=True)}

        assert got.queries == want.queries == ["q2", "q1"] and rows(got) == rows(want)
        assert got.scores.tolist() == [3.0, 2.5, -0.001, 2.5]  # file order
