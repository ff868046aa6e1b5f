"""`rdistill sample` through the real CLI on cranfield's train split (BM25 run from `rdistill retrieve`)."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import DATA

CRAN = DATA / "cranfield"
Q = ["--qrels", str(CRAN), "--split", "train"]


def _teacher(qid: str, doc: str) -> float:
    """A stand-in teacher: a fixed pseudo-random score per pair (a different ranking from BM25's)."""
    return int(hashlib.sha1(f"{qid}/{doc}".encode()).hexdigest()[:8], 16) / 2**32


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from rdistill.cli import app
    from rdistill.data import load_qrels
    from rdistill.io import iter_run_queries, write_run

    folder = tmp_path_factory.mktemp("sample")
    result = CliRunner().invoke(app, ["retrieve", "--corpus", str(CRAN), "--queries", str(CRAN), "--split", "train",
                                      "--k", "60", "--index", str(folder / "idx"), "-o", str(folder / "bm25.trec")])
    assert result.exit_code == 0, result.output
    qrels = load_qrels(str(CRAN), "train")
    # As score-teacher --qrels would: the teacher scores {positives} + the BM25 candidates; positives score high.
    with open(folder / "teacher.trec", "w") as out:
        write_run(out, ((q, {d: _teacher(q, d) + (2.0 if qrels.get(q, {}).get(d, 0) > 0 else 0.0)
                             for d in set(docs) | {d for d, r in qrels.get(q, {}).items() if r > 0}})
                        for q, docs in iter_run_queries(folder / "bm25.trec")), tag="teacher")
    return {"dir": folder, "bm25": folder / "bm25.trec", "teacher": folder / "teacher.trec"}


def groups(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines()]


def run_map(path: Path) -> dict[str, dict[str, float]]:
    from rdistill.io import read_run

    return read_run(path)


def top(run: dict[str, float], a: int, b: int) -> set[str]:
    from rdistill.io import sort_query

    return {d for d, _ in sort_query(run)[a - 1:b]}


def positives() -> dict[str, set[str]]:
    from rdistill.data import load_qrels

    return {q: {d for d, r in docs.items() if r > 0} for q, docs in load_qrels(str(CRAN), "train").items()}


def test_contract_window_over_scored_run(cli, files):
    scored = files["teacher"].read_text()
    result = cli("sample", "--strategy", "window", "--window", "1:100", *Q, "--group-size", "8", "--seed", "1",
                 input=scored)
    assert result.exit_code == 0, result
    out = groups(result.stdout)
    teacher, pos = run_map(files["teacher"]), positives()
    assert out and "groups from" in result.stderr
    keys = [(g["query_id"], g["doc_ids"][0]) for g in out]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for g in out:
        q, docs = g["query_id"], g["doc_ids"]
        assert len(docs) == 8 == len(set(docs)) == len(g["labels"]) == len(g["scores"])
        assert docs[0] in pos[q] and g["labels"][0] > 0
        assert not set(docs[1:]) & pos[q]  # labelled positives are not negatives by default
        assert set(docs[1:]) <= top(teacher[q], 1, 100)
        assert g["scores"] == [teacher[q][d] for d in docs]  # the run's own scores when no --scores
        assert g["meta"] == {"strategy": "window", "seed": 1, "window": "1:100"}


def test_window_follows_the_ranking_and_scores_come_from_scores(cli, files):
    """--scores must not move the window: negatives from BM25's ranks 1..10, scores from the teacher file."""
    bm25, teacher = run_map(files["bm25"]), run_map(files["teacher"])
    result = cli("sample", "--window", "1:10", "--scores", files["teacher"], *Q, "-G", "4",
                 input=files["bm25"].read_text())
    assert result.exit_code == 0, result
    mixed_up = 0
    for g in groups(result.stdout):
        q, docs = g["query_id"], g["doc_ids"]
        assert set(docs[1:]) <= top(bm25[q], 1, 10)
        assert g["scores"] == [teacher[q][d] for d in docs]
        mixed_up += not set(docs[1:]) <= top(teacher[q], 1, 10)
    assert mixed_up > 0  # the two windows differ, so this test would catch a swap
    result = cli("sample", "--strategy", "teacher", "--window", "1:10", *Q, "-G", "4",
                 input=files["teacher"].read_text())
    assert result.exit_code == 0, result
    for g in groups(result.stdout):
        assert set(g["doc_ids"][1:]) <= top(teacher[g["query_id"]], 1, 10)
        assert g["meta"]["strategy"] == "teacher"


def _ok(result: Any) -> str:
    """The output of a run that must have succeeded (checked first, so a failure shows its stderr)."""
    assert result.exit_code == 0, result
    return str(result.stdout)


def _shuffled_run(path: Path, seed: int) -> str:
    """The same run with its queries and each query's lines in another order."""
    blocks: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        blocks.setdefault(line.split()[0], []).append(line)
    rng = random.Random(seed)
    keys = list(blocks)
    rng.shuffle(keys)
    out = []
    for k in keys:
        rows = blocks[k][:]
        rng.shuffle(rows)
        out.extend(rows)
    return "\n".join(out) + "\n"


def test_deterministic_whatever_the_input_order(cli, files, tmp_path):
    args = ["sample", "--window", "1:50", *Q, "-G", "8", "--seed", "7", "--scores"]
    first = cli(*args, files["teacher"], input=files["bm25"].read_text())
    shuffled_scores = tmp_path / "teacher.shuffled.trec"
    shuffled_scores.write_text(_shuffled_run(files["teacher"], 1))
    second = cli(*args, shuffled_scores, input=_shuffled_run(files["bm25"], 2))
    assert first.exit_code == second.exit_code == 0, (first, second)
    assert first.stdout == second.stdout
    other_seed = cli(*args[:-2], "9", "--scores", files["teacher"], input=files["bm25"].read_text())
    assert other_seed.exit_code == 0, other_seed
    assert other_seed.stdout != first.stdout


def test_random_two_passes_through_emit_candidates(cli, files, tmp_path):
    base = ["sample", "--strategy", "random", "--corpus", CRAN, *Q, "-G", "4", "--seed", "3"]
    emitted = cli(*base, "--emit-candidates", "--no-scores")
    assert emitted.exit_code == 0, emitted
    from rdistill.io import iter_run_queries, write_run

    scored = tmp_path / "random.teacher.trec"
    with open(scored, "w") as out:
        write_run(out, ((q, {d: _teacher(q, d) for d in docs}) for q, docs in
                        iter_run_queries(_write(tmp_path, emitted.stdout))))
    result = cli(*base, "--scores", scored)
    assert result.exit_code == 0, result
    out, pos = groups(result.stdout), positives()
    by_query: dict[str, list[list[str]]] = {}
    for g in out:
        assert not set(g["doc_ids"][1:]) & pos[g["query_id"]]
        assert g["scores"] == [_teacher(g["query_id"], d) for d in g["doc_ids"]]
        by_query.setdefault(g["query_id"], []).append(g["doc_ids"][1:])
    # Fixed per query: every group of a query has the same random negatives.
    assert any(len(v) > 1 for v in by_query.values())
    assert all(all(n == v[0] for n in v) for v in by_query.values())
    # Without the random documents' scores: a located error that says what to do.
    missing = cli(*base, "--scores", files["teacher"])
    assert missing.exit_code == 2
    assert "no teacher score for query" in missing.stderr and "score-teacher --qrels" in missing.stderr
    skipped = cli(*base, "--scores", files["teacher"], "--skip-missing")
    assert skipped.exit_code == 0 and "groups skipped" in skipped.stderr and skipped.stdout == ""


def _write(folder: Path, text: str) -> Path:
    path = folder / "emitted.trec"
    path.write_text(text)
    return path


def test_ensemble_filter_and_padding(cli, files, tmp_path):
    from rdistill.io import iter_run_queries, write_run

    base = ["sample", "--strategy", "ensemble", "--corpus", CRAN, *Q, "-G", "8", "--per-system", "5",
            files["bm25"], files["teacher"]]
    emitted = cli(*base, "--emit-candidates")
    assert emitted.exit_code == 0, emitted
    pos = positives()
    scored = tmp_path / "ens.trec"
    with open(scored, "w") as out:
        write_run(out, ((q, {d: _teacher(q, d) + (2.0 if d in pos[q] else 0.0) for d in docs})
                        for q, docs in iter_run_queries(_write(tmp_path, emitted.stdout))))
    teacher = run_map(scored)
    filtered = cli(*base, "--scores", scored, "--margin", "1.5")
    unfiltered = cli(*base, "--scores", scored, "--no-filter")
    assert filtered.exit_code == unfiltered.exit_code == 0, (filtered, unfiltered)
    assert "dropped by the filter" in filtered.stderr
    dropped = 0
    for g in groups(filtered.stdout):
        q = g["query_id"]
        threshold = min(teacher[q][p] for p in pos[q]) - 1.5
        kept = g["doc_ids"][1:len(g["doc_ids"]) - g["meta"]["padded"]]
        assert all(teacher[q][d] <= threshold for d in kept)
        dropped += g["meta"]["filtered"]
    assert dropped > 0
    assert any(g["meta"]["padded"] > 0 for g in groups(filtered.stdout))
    assert filtered.stdout != unfiltered.stdout
    assert cli(*base).exit_code == 2  # the filter needs teacher scores


def test_filter_margin_follows_the_teacher_scale(cli, files, tmp_path):
    """The margin is in scaled teacher units: margin 1.5 at --teacher-scale 3 on scores x (1/3) drops exactly what
    margin 1.5 drops on the unscaled scores, and what margin 0.5 drops at scale 1 on those shrunk scores."""
    from rdistill.io import iter_run_queries, write_run

    base = ["sample", "--strategy", "ensemble", "--corpus", CRAN, *Q, "-G", "8", "--per-system", "5",
            files["bm25"], files["teacher"]]
    emitted = _write(tmp_path, cli(*base, "--emit-candidates").stdout)
    pos = positives()
    full, shrunk = tmp_path / "full.trec", tmp_path / "shrunk.trec"
    for path, factor in ((full, 1.0), (shrunk, 1 / 3)):
        with open(path, "w") as out:
            write_run(out, ((q, {d: (_teacher(q, d) + (2.0 if d in pos[q] else 0.0)) * factor for d in docs})
                            for q, docs in iter_run_queries(emitted)))

    def kept(result):
        assert result.exit_code == 0, result
        return [(g["query_id"], g["doc_ids"], g["meta"]["filtered"]) for g in groups(result.stdout)]

    reference = kept(cli(*base, "--scores", full, "--margin", "1.5"))
    scaled = cli(*base, "--scores", shrunk, "--margin", "1.5", "--teacher-scale", "3")
    assert kept(scaled) == reference
    assert all(g["meta"]["teacher_scale"] == 3.0 and g["meta"]["margin"] == 1.5 for g in groups(scaled.stdout))
    # Without the scale, the same margin on the shrunk scores is three times too wide and drops more.
    unscaled = kept(cli(*base, "--scores", shrunk, "--margin", "1.5"))
    assert sum(f for _, _, f in unscaled) > sum(f for _, _, f in reference)
    bad = cli(*base, "--scores", shrunk, "--teacher-scale", "0")
    assert bad.exit_code == 2 and "--teacher-scale must be a positive finite number" in bad.stderr


def test_too_few_labelled_positives_and_one_per_query(cli, files):
    few = cli("sample", "--window", "1:3", *Q, "-G", "8", input=files["teacher"].read_text())
    assert few.exit_code == 0 and few.stdout == "" and "too few candidates" in few.stderr
    pos = positives()
    default = groups(_ok(cli("sample", "--window", "1:20", *Q, "-G", "16", input=files["teacher"].read_text())))
    authors = groups(_ok(cli("sample", "--window", "1:20", *Q, "-G", "16", "--include-labelled-positives",
                             input=files["teacher"].read_text())))
    assert not any(set(g["doc_ids"][1:]) & pos[g["query_id"]] for g in default)
    assert any(set(g["doc_ids"][1:]) & pos[g["query_id"]] for g in authors)
    assert all(g["doc_ids"][0] not in g["doc_ids"][1:] for g in authors)
    one = groups(_ok(cli("sample", "--one-per-query", *Q, input=files["teacher"].read_text())))
    assert len(one) == len({g["query_id"] for g in one}) < len(default)


def test_missing_positive_score_is_located(cli, files):
    # BM25's own scores lack the positives BM25 did not retrieve.
    result = cli("sample", *Q, input=files["bm25"].read_text())
    assert result.exit_code == 2
    assert "no teacher score for query" in result.stderr and "document" in result.stderr


def test_external_sort_matches_in_memory():
    from rdistill.sampling import write_sorted

    rng = random.Random(0)
    items = [((f"q{rng.randrange(50)}", f"d{i}"), orjson.dumps({"i": i, "t": "x\ty"}).decode() + "\n")
             for i in range(500)]
    small, big = io.StringIO(), io.StringIO()
    assert write_sorted(small, items, chunk_bytes=2000) == write_sorted(big, items) == 500
    assert small.getvalue() == big.getvalue()
    assert big.getvalue() == "".join(text for _, text in sorted(items))


def test_ensemble_runs_in_any_query_order(cli, files, tmp_path):
    """The second run and the scores are read in lockstep; another query order only costs memory, not output."""
    base = ["sample", "--strategy", "ensemble", "--no-filter", "--no-scores", "--corpus", CRAN, *Q, "-G", "8"]
    shuffled = tmp_path / "teacher.shuffled.trec"
    shuffled.write_text(_shuffled_run(files["teacher"], 5))
    one = cli(*base, files["bm25"], files["teacher"])
    two = cli(*base, files["bm25"], shuffled)
    assert one.exit_code == two.exit_code == 0, (one, two)
    assert one.stdout == two.stdout and one.stdout
    assert all(g["scores"] is None for g in groups(one.stdout))


def test_random_reads_no_ranking(cli, files):
    """The contract's `--strategy random --corpus DIR < scored.trec`: stdin is no ranking for random; without
    --scores the groups are labels-only, and stderr says how to attach teacher scores."""
    result = cli("sample", "--strategy", "random", "--corpus", CRAN, *Q, "--group-size", "8", "--seed", "1",
                 input=files["teacher"].read_text())
    assert result.exit_code == 0, result
    out = groups(result.stdout)
    assert out and all(g["scores"] is None and len(g["doc_ids"]) == 8 for g in out)
    assert "--emit-candidates" in result.stderr


def test_window_and_random_on_sample_data(cli):
    """The self-contained core (no ../shared): both sources on sample_data's hand-written run, qrels and corpus."""
    from rdistill.io import read_qrels, read_run
    from tests.conftest import SAMPLE

    qrels, run = read_qrels(SAMPLE / "qrels.txt"), read_run(SAMPLE / "run.trec")
    args = ["--qrels", SAMPLE / "qrels.txt", "--group-size", "3", "--seed", "1"]
    window = cli("sample", "--strategy", "window", "--window", "1:10", *args, input=(SAMPLE / "run.trec").read_text())
    assert window.exit_code == 0, window
    got = groups(window.stdout)
    # One group per judged positive; q3 has 3 run documents of which 2 are positive: too few negatives, skipped.
    assert sorted((g["query_id"], g["doc_ids"][0]) for g in got) == [("q1", "d1"), ("q1", "d7"), ("q2", "d2"),
                                                                       ("q2", "d4")]
    assert "too few candidates (q3)" in window.stderr
    for g in got:
        pos = {d for d, r in qrels[g["query_id"]].items() if r > 0}
        assert len(g["doc_ids"]) == 3 and g["labels"][0] == qrels[g["query_id"]][g["doc_ids"][0]]
        assert not pos & set(g["doc_ids"][1:]) and set(g["doc_ids"]) <= set(run[g["query_id"]])
        assert g["scores"] == [run[g["query_id"]][d] for d in g["doc_ids"]]
    again = cli("sample", "--strategy", "window", "--window", "1:10", *args, input=(SAMPLE / "run.trec").read_text())
    assert again.stdout == window.stdout
    rand = cli("sample", "--strategy", "random", "--corpus", SAMPLE / "corpus.jsonl", "--no-scores",
               "--qrels", SAMPLE / "qrels.txt", "--group-size", "4", "--seed", "1")
    assert rand.exit_code == 0, rand
    got = groups(rand.stdout)
    assert len(got) == 8 and {g["query_id"] for g in got} == {"q1", "q2", "q3", "q4"}  # random reads no run
    for g in got:
        pos = {d for d, r in qrels[g["query_id"]].items() if r > 0}
        assert g["scores"] is None and len(set(g["doc_ids"])) == 4 and not pos & set(g["doc_ids"][1:])
