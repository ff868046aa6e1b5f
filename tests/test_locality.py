"""`rdistill locality`: diameters against a numpy re-computation, a real encoder on cranfield, and coverage."""

from __future__ import annotations

import itertools

import numpy as np
import orjson

from tests.conftest import DATA

CRAN = DATA / "cranfield"
GROUPS = [
    {"query_id": "1", "doc_ids": ["184", "29", "31", "12"], "labels": [1, 0, 0, 0], "scores": None, "meta": {}},
    {"query_id": "1", "doc_ids": ["185", "29", "51"], "labels": [1, 0, 0], "scores": None, "meta": {}},
    {"query_id": "2", "doc_ids": ["12", "13", "14"], "labels": [1, 0, 0], "scores": None, "meta": {}},
    {"query_id": "3", "doc_ids": ["5", "6"], "labels": [1, 0], "scores": None, "meta": {}},
]


def write_groups(path, groups=GROUPS):
    path.write_text("".join(orjson.dumps(g).decode() + "\n" for g in groups))
    return path


def test_diameters_match_numpy(cli, tmp_path):
    groups = write_groups(tmp_path / "g.jsonl")
    ids = sorted({d for g in GROUPS for d in g["doc_ids"]})
    vectors = np.random.default_rng(0).normal(size=(len(ids), 6)).astype(np.float32)
    np.savez(tmp_path / "emb.npz", ids=np.array(ids), vectors=vectors)
    result = cli("locality", "--embeddings", tmp_path / "emb.npz", "--alpha", "0.9", "--summary",
                 tmp_path / "s.jsonl", groups)
    assert result.exit_code == 0, result
    rows = [orjson.loads(x) for x in result.stdout.splitlines()]
    by_id = dict(zip(ids, vectors.astype(np.float64), strict=True))
    expected = {}
    for qid, docs in (("1", ["12", "184", "185", "29", "31", "51"]), ("2", ["12", "13", "14"]), ("3", ["5", "6"])):
        dist = [1 - (by_id[a] @ by_id[b]) / np.linalg.norm(by_id[a]) / np.linalg.norm(by_id[b])
                for a, b in itertools.combinations(docs, 2)]
        expected[qid] = float(np.quantile(dist, 0.9))
    assert [r["query_id"] for r in rows] == ["1", "2", "3"] and [r["n"] for r in rows] == [6, 3, 2]
    for r in rows:
        assert abs(r["diameter"] - expected[r["query_id"]]) < 1e-9 and r["alpha"] == 0.9
    summary = orjson.loads((tmp_path / "s.jsonl").read_bytes())
    assert summary["queries"] == 3
    assert abs(summary["delta"] - float(np.quantile(list(expected.values()), 0.99))) < 1e-9


def test_real_encoder_on_a_run_top_k(cli, tmp_path, tiny_bi):
    run = tmp_path / "run.trec"
    run.write_text("".join(f"{q} Q0 {d} {r} {10 - r} x\n" for q in ("1", "2") for r, d in
                           enumerate(["184", "29", "31", "12", "13", "14"], 1)))
    result = cli("locality", "--model", tiny_bi, "--corpus", CRAN, "--k", "4", "--device", "cpu", run)
    assert result.exit_code == 0, result
    rows = [orjson.loads(x) for x in result.stdout.splitlines()]
    assert [r["n"] for r in rows] == [4, 4]
    assert rows[0]["diameter"] == rows[1]["diameter"] > 0  # the same four documents for both queries
    assert '"delta"' in result.stderr


def test_coverage_against_a_test_run(cli, tmp_path):
    groups = write_groups(tmp_path / "g.jsonl")
    test = tmp_path / "test.trec"
    test.write_text("9 Q0 12 1 3.0 x\n9 Q0 13 2 2.0 x\n9 Q0 700 3 1.0 x\n9 Q0 701 4 0.5 x\n")
    result = cli("locality", "--corpus", CRAN, "--coverage-against", test, "--test-k", "4", groups)
    assert result.exit_code == 0, result
    cov = orjson.loads(result.stderr.splitlines()[-1])["coverage"]
    # S = 10 documents, R = {12, 13, 700, 701}: S n R = {12, 13}; a random pool of 10 of 1400 expects 10/1400.
    assert (cov["train_docs"], cov["test_docs"], cov["overlap"]) == (10, 4, 2)
    assert cov["coverage"] == 0.5 and abs(cov["normalised"] - 0.5 / (10 / 1400)) < 1e-9
    assert 0 <= cov["random_coverage"] <= 1


def test_errors(cli, tmp_path):
    groups = write_groups(tmp_path / "g.jsonl")
    assert cli("locality", groups).exit_code == 2  # nothing to measure
    # Coverage alone has no rows: -o is refused rather than left as an empty file that looks like a result.
    refused = cli("locality", "--corpus", tmp_path, "--coverage-against", groups, "-o", tmp_path / "d.jsonl", groups)
    assert refused.exit_code == 2 and "coverage alone writes no per-query rows" in refused.stderr
    assert not (tmp_path / "d.jsonl").exists()
    np.savez(tmp_path / "few.npz", ids=np.array(["184"]), vectors=np.ones((1, 3), dtype=np.float32))
    result = cli("locality", "--embeddings", tmp_path / "few.npz", groups)
    assert result.exit_code == 2 and "no vector" in result.stderr
