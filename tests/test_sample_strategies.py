"""`rdistill sample`'s stratified and top strategies, the relative margin, and sampling without judgments
(--positives teacher:K / none), through the real CLI on small runs this file writes (no shared data needed)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import orjson
import pytest

from rdistill.io import iter_groups, read_run, sort_query

QUERIES = [f"q{i}" for i in range(6)]
DOCS = [f"d{j:03d}" for j in range(40)]


def _unit(*parts: str) -> float:
    return int(hashlib.sha1("/".join(parts).encode()).hexdigest()[:8], 16) / 2**32


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """A BM25-like run (40 documents a query), a fused-like teacher over the same pairs (scores in [0, 2],
    judged positives high) and qrels with two positives for each query but the last."""
    qrels = {q: {DOCS[i], DOCS[i + 7]} for i, q in enumerate(QUERIES[:-1])}
    bm25 = [f"{q} Q0 {d} 0 {10 * _unit('bm25', q, d)!r} bm25" for q in QUERIES for d in DOCS]
    teacher = [f"{q} Q0 {d} 0 {_unit('t', q, d) + (1.0 if d in qrels.get(q, ()) else 0.0)!r} t"
               for q in QUERIES for d in DOCS]
    out = {"bm25": tmp_path / "bm25.trec", "teacher": tmp_path / "teacher.trec", "qrels": tmp_path / "qrels.txt"}
    out["bm25"].write_text("\n".join(bm25) + "\n")
    out["teacher"].write_text("\n".join(teacher) + "\n")
    out["qrels"].write_text("".join(f"{q} 0 {d} 1\n" for q, docs in qrels.items() for d in sorted(docs)))
    return out


def _groups(result) -> list[dict]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def _shuffled(path: Path) -> str:
    """The run with its queries and each query's lines in another order (a query's lines stay together, as the
    run reader requires)."""
    rng = random.Random(3)
    blocks: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        blocks.setdefault(line.split()[0], []).append(line)
    order = list(blocks)
    rng.shuffle(order)
    for q in order:
        rng.shuffle(blocks[q])
    return "".join(line + "\n" for q in order for line in blocks[q])


def test_stratified_one_negative_from_each_stratum(cli, runs):
    args = ["sample", "--strategy", "stratified", "--window", "1:30", "-G", "6", "--scores", str(runs["teacher"]),
            "--qrels", str(runs["qrels"])]
    first = cli(*args, str(runs["bm25"]))
    found = _groups(first)
    bm25, teacher = read_run(runs["bm25"]), read_run(runs["teacher"])
    qrels = {g["query_id"]: set() for g in found}
    for line in runs["qrels"].read_text().splitlines():
        q, _, d, _ = line.split()
        qrels[q].add(d)
    assert len(found) == 10  # two positives for each of five judged queries
    for g in found:
        qid, (_positive, *negatives) = g["query_id"], g["doc_ids"]
        window = [d for d, _ in sort_query(bm25[qid])[:30] if d not in qrels[qid]]
        ranked = [d for d, _ in sort_query({d: teacher[qid][d] for d in window})]
        n = len(ranked)
        # Negative i comes from stratum i: positions [i n / 5, (i + 1) n / 5) of the window in teacher order.
        assert all(i * n // 5 <= ranked.index(d) < (i + 1) * n // 5 for i, d in enumerate(negatives))
        assert g["scores"] == [teacher[qid][d] for d in g["doc_ids"]]
        assert g["meta"] == {"strategy": "stratified", "seed": 42, "window": "1:30"}
    # Seeded and order-free: a shuffled run on stdin gives the same bytes; another seed other draws.
    assert cli(*args, input=_shuffled(runs["bm25"])).stdout == first.stdout
    assert cli(*args, "--seed", "7", str(runs["bm25"])).stdout != first.stdout


def test_top_takes_the_teachers_best_of_the_window(cli, runs):
    found = _groups(cli("sample", "--strategy", "top", "--window", "1:20", "-G", "4", "--scores",
                        str(runs["teacher"]), "--qrels", str(runs["qrels"]), str(runs["bm25"])))
    bm25, teacher = read_run(runs["bm25"]), read_run(runs["teacher"])
    judged = {(line.split()[0], line.split()[2]) for line in runs["qrels"].read_text().splitlines()}
    assert len(found) == 10
    for g in found:
        qid = g["query_id"]
        window = {d: teacher[qid][d] for d, _ in sort_query(bm25[qid])[:20] if (qid, d) not in judged}
        assert g["doc_ids"][1:] == [d for d, _ in sort_query(window)[:3]]


def test_relative_margin_keeps_negatives_below_the_positive(cli, runs):
    base = ["sample", "--strategy", "window", "--window", "1:40", "-G", "4", "--qrels", str(runs["qrels"]),
            "--scores", str(runs["teacher"]), str(runs["bm25"])]
    teacher = read_run(runs["teacher"])
    judged: dict[str, list[str]] = {}
    for line in runs["qrels"].read_text().splitlines():
        judged.setdefault(line.split()[0], []).append(line.split()[2])
    for r in (0.05, 0.5):
        result = cli(*base, "--relative-margin", str(r))
        found = _groups(result)
        dropped = 0
        for g in found:
            qid = g["query_id"]
            p = min(teacher[qid][d] for d in judged[qid])
            assert all(teacher[qid][d] <= p * (1 - r) for d in g["doc_ids"][1:])
            assert g["meta"]["relative_margin"] == r
            assert g["meta"]["relative_filtered"] == sum(teacher[qid][d] > p * (1 - r) for d in DOCS
                                                if d not in judged[qid])
            dropped += g["meta"]["relative_filtered"]
        assert found and dropped and f"{dropped} negatives dropped by the relative margin" in result.stderr
    # Scores below zero (log-probabilities): the relative margin is undefined there, one line and exit 2.
    negative = runs["teacher"].with_name("logprob.trec")
    negative.write_text("".join(f"{q} Q0 {d} 0 {s - 3.0!r} t\n"
                                for q, docs in teacher.items() for d, s in docs.items()))
    refused = cli(*base[:-3], "--scores", str(negative), str(runs["bm25"]), "--relative-margin", "0.05")
    assert refused.exit_code == 2 and "scores" in refused.stderr and "< 0" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("strategy", ["window", "teacher", "stratified", "top"])
def test_teacher_k_picks_exactly_the_teachers_top_k(cli, runs, strategy):
    args = ["sample", "--strategy", strategy, "--positives", "teacher:3", "-G", "8", "--window", "1:30"]
    args += [] if strategy == "teacher" else ["--scores", str(runs["teacher"])]
    source = runs["teacher"] if strategy == "teacher" else runs["bm25"]
    first = cli(*args, input=source.read_text())
    found = _groups(first)
    teacher = read_run(runs["teacher"])
    assert [g["query_id"] for g in found] == QUERIES  # every query of the run, one group each
    for g in found:
        top3 = [d for d, _ in sort_query(teacher[g["query_id"]])[:3]]
        assert g["doc_ids"][:3] == top3 and not set(g["doc_ids"][3:]) & set(top3)
        assert g["labels"] == [1, 1, 1, 0, 0, 0, 0, 0] and g["positives"] == "pseudo"
        assert g["meta"]["positives"] == "teacher:3"
    assert cli(*args, input=_shuffled(source)).stdout == first.stdout
    # What sample writes, the groups reader takes back.
    path = runs["bm25"].with_name("pseudo.jsonl")
    path.write_text(first.stdout)
    assert [g.positives for _, g in iter_groups(path)] == ["pseudo"] * len(QUERIES)


def test_positive_free_lists_and_ties(cli, runs, tmp_path):
    found = _groups(cli("sample", "--strategy", "top", "--positives", "none", "-G", "5",
                        input=runs["teacher"].read_text()))
    teacher = read_run(runs["teacher"])
    for g in found:
        assert g["labels"] == [0] * 5 and g["positives"] == "none"
        assert g["doc_ids"] == [d for d, _ in sort_query(teacher[g["query_id"]])[:5]]
    # Every score tied: trec_eval's order (doc id descending) decides, so the pseudo-positive is the same each time.
    tied = tmp_path / "tied.trec"
    tied.write_text("".join(f"q Q0 {d} 0 1.0 t\n" for d in DOCS[:10]))
    one = _groups(cli("sample", "--strategy", "window", "--positives", "teacher:1", "-G", "3", str(tied)))
    assert one[0]["doc_ids"][0] == DOCS[9] and one[0]["labels"] == [1, 0, 0]


def test_label_free_refusals(cli, runs, tmp_path):
    def refused(*args: str, text: str) -> None:
        result = cli("sample", *args)
        assert result.exit_code == 2, result.stdout
        assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr

    run = str(runs["bm25"])
    refused("--strategy", "window", run, text="needs --qrels")
    refused("--strategy", "window", "--positives", "teacher:2", "--qrels", str(runs["qrels"]), run,
            text="drop --qrels")
    refused("--strategy", "window", "--positives", "teacher:8", "-G", "8", run, text="K must be below G")
    refused("--strategy", "window", "--positives", "teacher:0", run, text="expected judged")
    refused("--strategy", "window", "--positives", "teacher:1", "--no-scores", run, text="--no-scores")
    refused("--strategy", "random", "--positives", "none", "--corpus", run, text="give a run")
    refused("--strategy", "ensemble", "--positives", "none", "--scores", str(runs["teacher"]), "--corpus", run, run,
            text="--no-filter")
    refused("--strategy", "window", "--positives", "none", "--relative-margin", "0.1", run,
            text="does not apply to --positives none")
    refused("--strategy", "stratified", "-G", "12", "--window", "1:10", "--qrels", str(runs["qrels"]), run,
            text="holds 10 ranks")
    refused("--strategy", "random", "--relative-margin", "0.1", "--corpus", run, "--qrels", str(runs["qrels"]),
            text="--relative-margin filters")
    for r in ("0", "1", "-0.1"):
        refused("--strategy", "window", "--relative-margin", r, "--qrels", str(runs["qrels"]), run,
                text="expected 0 < R < 1")
    # K larger than a query's pool: that query is skipped and counted, the others are sampled.
    short = tmp_path / "short.trec"
    short.write_text(runs["teacher"].read_text() + "".join(f"tiny Q0 {d} 0 0.5 t\n" for d in DOCS[:2]))
    result = cli("sample", "--strategy", "window", "--positives", "teacher:3", "-G", "5", str(short))
    assert [g["query_id"] for g in _groups(result)] == QUERIES
    assert "1 queries skipped: too few candidates (tiny)" in result.stderr


def test_random_pseudo_positives_in_two_passes(cli, runs, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(orjson.dumps({"_id": d, "text": d}).decode() + "\n" for d in DOCS))
    listed = cli("sample", "--strategy", "random", "--positives", "teacher:1", "-G", "4", "--corpus", str(corpus),
                 "--emit-candidates", "--no-scores", str(runs["teacher"]))
    assert listed.exit_code == 0, listed.stderr
    found = _groups(cli("sample", "--strategy", "random", "--positives", "teacher:1", "-G", "4", "--corpus",
                        str(corpus), "--scores", str(runs["teacher"])))
    listed_docs = read_run(io_text(tmp_path / "listed.trec", listed.stdout))
    teacher = read_run(runs["teacher"])
    for g in found:
        assert g["doc_ids"][0] == sort_query(teacher[g["query_id"]])[0][0]
        assert set(g["doc_ids"][1:]) <= set(listed_docs[g["query_id"]])


def io_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_ensemble_pseudo_positives_and_its_filter(cli, runs, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(orjson.dumps({"_id": d, "text": d}).decode() + "\n" for d in DOCS))
    found = _groups(cli("sample", "--strategy", "ensemble", "--positives", "teacher:2", "-G", "6", "--margin", "0.1",
                        "--scores", str(runs["teacher"]), "--corpus", str(corpus), str(runs["bm25"]),
                        str(runs["teacher"])))
    teacher = read_run(runs["teacher"])
    assert [g["query_id"] for g in found] == QUERIES
    for g in found:
        ranked = sort_query(teacher[g["query_id"]])
        assert g["doc_ids"][:2] == [d for d, _ in ranked[:2]] and g["labels"][:2] == [1, 1]
        # The filter compares with the lower pseudo-positive, as with the lowest judged one.
        assert all(teacher[g["query_id"]][d] <= ranked[1][1] - 0.1 for d in g["doc_ids"][2:])
