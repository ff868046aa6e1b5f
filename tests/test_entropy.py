"""rdistill entropy through the CLI: hand-computed values for each definition, run and group inputs, cuts, plot."""

from __future__ import annotations

import json
import math

import pytest

H_QUARTER = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # entropy of (1/4, 3/4) in nats: 0.5623...
LN3 = math.log(3)


def run_text(queries: dict[str, list[float]]) -> str:
    lines = []
    for qid, scores in queries.items():
        for rank, score in enumerate(sorted(scores, reverse=True), 1):
            lines.append(f"{qid} Q0 {qid}-d{rank} {rank} {score!r} t")
    return "\n".join(lines) + "\n"


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def entropies(cli, text: str, *args: str) -> dict[str, float]:
    result = cli("entropy", *args, input=text)
    assert result.exit_code == 0, result
    return {r["query_id"]: r["entropy"] for r in records(result.stdout)}


def test_contract_fields_and_softmax_by_hand(cli) -> None:
    text = run_text({"a": [0.0, LN3], "b": [2.0, 2.0, 2.0, 2.0], "c": [5.0]})
    result = cli("entropy", input=text)
    assert result.exit_code == 0, result
    out = records(result.stdout)
    assert [r["query_id"] for r in out] == ["a", "b", "c"]
    assert set(out[0]) == {"query_id", "entropy", "n", "definition", "temperature"}
    assert out[0]["definition"] == "softmax" and out[0]["temperature"] == 1.0
    assert [r["n"] for r in out] == [2, 4, 1]
    assert out[0]["entropy"] == pytest.approx(H_QUARTER, abs=1e-12)
    assert out[1]["entropy"] == pytest.approx(math.log(4), abs=1e-12)
    assert out[2]["entropy"] == 0.0
    assert "median" in result.stderr and "Q1" in result.stderr


def test_softmax_temperature_bits_and_top_k(cli) -> None:
    text = run_text({"a": [0.0, 2 * LN3], "b": [0.0, LN3, -1000.0]})
    got = entropies(cli, text, "--temperature", "2")
    assert got["a"] == pytest.approx(H_QUARTER, abs=1e-12)
    got = entropies(cli, text, "--bits", "--k", "2")
    assert got["b"] == pytest.approx(H_QUARTER / math.log(2), abs=1e-12)  # 0.8113 bits: the -1000 is cut by k
    assert got["b"] == pytest.approx(0.8112781244591328, abs=1e-12)


def test_pairwise_by_hand(cli) -> None:
    # sigmoid(ln 3) = 3/4, whose binary entropy is 0.8113 bits; equal scores give 1 bit.
    text = run_text({"a": [0.0, 0.0], "b": [0.0, LN3], "c": [0.0, LN3, LN3], "d": [0.0, 2 * LN3], "e": [1e6, 0.0]})
    got = entropies(cli, text, "--definition", "pairwise")
    assert got["a"] == pytest.approx(1.0, abs=1e-12)
    assert got["b"] == pytest.approx(0.8112781244591328, abs=1e-12)
    assert got["c"] == pytest.approx((2 * 0.8112781244591328 + 1.0) / 3, abs=1e-12)
    assert got["e"] == pytest.approx(0.0, abs=1e-12)  # no overflow for a huge gap
    assert entropies(cli, text, "--definition", "pairwise", "-T", "2")["d"] == pytest.approx(0.8112781244591328)


def test_sumnorm_by_hand_and_mixed_signs_refused(cli) -> None:
    text = run_text({"a": [-1.0, -3.0], "b": [-2.0, -2.0, -2.0]})
    got = entropies(cli, text, "--definition", "sumnorm")
    assert got["a"] == pytest.approx(H_QUARTER, abs=1e-12)
    assert got["b"] == pytest.approx(math.log(3), abs=1e-12)
    bad = cli("entropy", "--definition", "sumnorm", input=run_text({"a": [-1.0, -3.0], "q7": [-1.0, 2.0]}))
    assert bad.exit_code == 2
    assert "q7" in bad.stderr and "one sign" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_groups_input(cli) -> None:
    groups = [{"query_id": "a", "doc_ids": ["x", "y"], "labels": [1, 0], "scores": [0.0, LN3], "meta": {}},
              {"query_id": "b", "doc_ids": ["x", "y"], "labels": [1, 0], "scores": [1.0, 1.0], "meta": {}}]
    text = "".join(json.dumps(g) + "\n" for g in groups)
    got = entropies(cli, text)
    assert got == pytest.approx({"a": H_QUARTER, "b": math.log(2)})
    unscored = cli("entropy", input=json.dumps({**groups[0], "scores": None}) + "\n")
    assert unscored.exit_code == 2 and ":1:" in unscored.stderr and "scores" in unscored.stderr


# Query i has scores (0, i): entropy falls strictly with i, so each cut's kept set is known by hand.
EIGHT = {f"q{i}": [0.0, float(i)] for i in range(8)}


@pytest.mark.parametrize(("keep", "expect"), [
    ("below-median", {"q4", "q5", "q6", "q7"}),
    ("above-median", {"q0", "q1", "q2", "q3"}),
    ("below-q3", {"q2", "q3", "q4", "q5", "q6", "q7"}),
    ("above-q1", {"q0", "q1", "q2", "q3", "q4", "q5"}),
    ("percentile:0:100", set(EIGHT)),
])
def test_cuts_keep_what_they_name_and_emit_the_run(cli, keep: str, expect: set[str]) -> None:
    text = run_text(EIGHT)
    result = cli("entropy", "--keep", keep, input=text)
    assert result.exit_code == 0, result
    kept_lines = result.stdout.splitlines()
    assert {line.split()[0] for line in kept_lines} == expect
    assert kept_lines == [line for line in text.splitlines() if line.split()[0] in expect]  # input lines unchanged


def test_inner_outer_and_entropy_out(cli, tmp_path) -> None:
    # Seven queries near ln 2 and one far below it: the outlier is the only one outside the IQR fences.
    queries = {f"q{i}": [0.0, 0.01 * i] for i in range(7)} | {"low": [0.0, 30.0]}
    text = run_text(queries)
    side = tmp_path / "h.jsonl"
    inner = cli("entropy", "--keep", "inner", "--entropy-out", str(side), input=text)
    outer = cli("entropy", "--keep", "outer", input=text)
    assert {line.split()[0] for line in inner.stdout.splitlines()} == set(queries) - {"low"}
    assert {line.split()[0] for line in outer.stdout.splitlines()} == {"low"}
    assert [r["query_id"] for r in records(side.read_text())] == list(queries)


def test_group_cut_pipes_groups_on(cli) -> None:
    groups = [{"query_id": f"q{i}", "doc_ids": ["x", "y"], "labels": [1, 0], "scores": [0.0, float(i)], "meta": {}}
              for i in range(4)]
    text = "".join(json.dumps(g) + "\n" for g in groups)
    result = cli("entropy", "--keep", "above-median", input=text)
    assert result.exit_code == 0, result
    assert result.stdout == "".join(json.dumps(g) + "\n" for g in groups[:2])


def test_plot_and_usage_errors(cli, tmp_path) -> None:
    png = tmp_path / "h.png"
    result = cli("entropy", "--keep", "below-q3", "--plot", str(png), input=run_text(EIGHT))
    assert result.exit_code == 0, result
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for args in (["--keep", "middle"], ["--keep", "percentile:50:10"], ["--definition", "renyi"],
                 ["--entropy-out", "x.jsonl"]):
        bad = cli("entropy", *args, input=run_text(EIGHT))
        assert bad.exit_code == 2 and bad.stderr.startswith("rdistill: error:"), args
