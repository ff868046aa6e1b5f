"""`rdistill entropy --select`: per query, the size-c sub-ranking chosen by teacher entropy, as training groups,
checked against brute force on small pools through the real CLI."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import orjson
import pytest

from rdistill.entropy import entropy
from rdistill.io import iter_groups, read_run, sort_query

QUERIES = [f"q{i}" for i in range(5)]


def _unit(*parts: str) -> float:
    return int(hashlib.sha1("/".join(parts).encode()).hexdigest()[:8], 16) / 2**32


@pytest.fixture
def run(tmp_path: Path) -> Path:
    path = tmp_path / "teacher.trec"
    path.write_text("".join(f"{q} Q0 d{j} 0 {2 * _unit(q, str(j))!r} t\n" for q in QUERIES for j in range(9)))
    return path


def _groups(result) -> list[dict]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("definition", ["softmax", "pairwise"])
@pytest.mark.parametrize("objective", ["min", "max"])
def test_greedy_reaches_a_local_optimum(cli, run, tmp_path, definition, objective):
    found = _groups(cli("entropy", "--select", "greedy", "--size", "3", "--objective", objective, "--definition",
                        definition, "-T", "0.3", str(run)))
    teacher = read_run(run)
    sign = 1 if objective == "min" else -1
    assert [g["query_id"] for g in found] == QUERIES
    for g in found:
        pool = teacher[g["query_id"]]
        chosen = g["doc_ids"]
        h = entropy([pool[d] for d in chosen], definition, 0.3)
        assert g["meta"]["entropy"] == pytest.approx(h, abs=1e-12)
        assert g["scores"] == [pool[d] for d in chosen] and g["labels"] == [0, 0, 0] and g["positives"] == "none"
        # In the teacher's order, and no single swap improves the objective.
        assert chosen == [d for d, _ in sort_query({d: pool[d] for d in chosen})]
        for out, into in itertools.product(chosen, set(pool) - set(chosen)):
            other = [into if d == out else d for d in chosen]
            assert sign * entropy([pool[d] for d in other], definition, 0.3) >= sign * h - 1e-12
        # On a pool of 9 the greedy minimum is no worse than the best of the teacher's top 3.
        top3 = [s for _, s in sort_query(pool)[:3]]
        assert sign * h <= sign * entropy(top3, definition, 0.3) + 1e-12
    path = tmp_path / "groups.jsonl"
    path.write_text("".join(orjson.dumps(g).decode() + "\n" for g in found))
    assert len(list(iter_groups(path))) == len(QUERIES)  # train's reader takes them


def test_max_variance_is_the_largest_variance_subset(cli, run):
    found = _groups(cli("entropy", "--select", "max-variance", "--size", "4", "--k", "8", str(run)))
    teacher = read_run(run)
    for g in found:
        pool = dict(sort_query(teacher[g["query_id"]])[:8])
        best = max(np.var([pool[d] for d in c]) for c in itertools.combinations(pool, 4))
        assert np.var(g["scores"]) == pytest.approx(best, rel=1e-12)
        assert g["meta"]["pool"] == 8 and set(g["doc_ids"]) <= set(pool)


def test_select_refusals_and_small_queries(cli, run, tmp_path):
    small = tmp_path / "small.trec"
    small.write_text(run.read_text() + "tiny Q0 a 0 1.0 t\ntiny Q0 b 0 0.5 t\n")
    result = cli("entropy", "--select", "greedy", "--size", "3", str(small))
    assert [g["query_id"] for g in _groups(result)] == QUERIES
    assert "1 queries skipped: fewer than 3 documents (tiny)" in result.stderr
    groups_file = tmp_path / "g.jsonl"
    groups_file.write_text(result.stdout)
    for args, text in ((["--select", "greedy", str(groups_file)], "not training groups"),
                       (["--select", "best", str(run)], "expected one of greedy, max-variance"),
                       (["--select", "max-variance", "--objective", "max", str(run)], "goes with --select greedy"),
                       (["--select", "greedy", "--objective", "mid", str(run)], "expected min or max"),
                       (["--select", "greedy", "--size", "5", "--k", "3", str(run)], "fewer documents than"),
                       (["--select", "greedy", "--keep", "inner", str(run)], "leave out --keep")):
        refused = cli("entropy", *args)
        assert refused.exit_code == 2 and text in refused.stderr, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1
    assert cli("entropy", "--select", "greedy", "--size", "1", str(run)).exit_code == 2
