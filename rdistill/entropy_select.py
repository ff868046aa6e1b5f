"""Per query, the size-c sub-ranking of a teacher's pool chosen by its entropy (``rdistill entropy --select``).

The authors explored training on sub-rankings whose teacher entropy is low or high rather than cutting whole
queries. Two selections, both deterministic (the pool is put in trec_eval's order first: score descending, ties
by doc id descending):

- ``greedy``: start from the teacher's top c, then repeatedly make the single swap (one selected document out,
  one other document of the pool in) that lowers (``objective="min"``) or raises (``"max"``) the entropy most,
  until no swap improves it by more than 1e-12 (a local optimum; ties go to the first swap in pool order). Every
  candidate swap of a round is scored in one numpy call.
- ``max-variance``: the c scores of largest variance, with no entropy evaluated. For sorted values that set is
  always some top i together with the bottom c - i, so the c + 1 splits are compared exactly. Spread-out scores
  make a peaked softmax: a closed-form stand-in for the lowest-entropy sub-ranking.

The result is written as positive-free training groups (``"positives": "none"``, every label 0, the teacher's
scores) that ``rdistill train`` reads; the documents keep the teacher's order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rdistill.entropy import DEFINITIONS
from rdistill.errors import InputError, UsageError
from rdistill.io import Source, iter_run_queries, sort_query, source_name
from rdistill.schema import Group

SELECTIONS = ("greedy", "max-variance")
OBJECTIVES = ("min", "max")


def entropies(rows: np.ndarray, definition: str, temperature: float, bits: bool) -> np.ndarray:
    """The entropy of each row of scores, as :func:`rdistill.entropy.entropy` computes it for one."""
    if definition == "softmax":
        t = rows / temperature
        t = t - t.max(axis=1, keepdims=True)
        logp = t - np.log(np.exp(t).sum(axis=1, keepdims=True))
        h = np.maximum(-(np.exp(logp) * logp).sum(axis=1), 0.0)
        return h / math.log(2) if bits else h
    if definition == "pairwise":
        i, j = np.triu_indices(rows.shape[1], k=1)
        a = np.abs(rows[:, i] - rows[:, j]) / temperature
        e = np.exp(-a)
        return (np.logaddexp(0.0, -a) + a * e / (1.0 + e)).mean(axis=1) / math.log(2)
    if definition == "sumnorm":
        p = rows / rows.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        h = np.maximum(-terms.sum(axis=1), 0.0)
        return h / math.log(2) if bits else h
    raise UsageError(f"--definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")


def greedy(scores: np.ndarray, size: int, objective: str, definition: str, temperature: float, bits: bool
           ) -> list[int]:
    """Indices (into ``scores``, in pool order) of the sub-ranking greedy swaps reach from the top ``size``."""
    n = len(scores)
    chosen = list(range(size))
    sign = 1.0 if objective == "min" else -1.0
    current = sign * float(entropies(scores[None, chosen], definition, temperature, bits)[0])
    for _ in range(size * n):  # each swap improves strictly, so this bound is never what stops it in practice
        taken = set(chosen)
        rest = [k for k in range(n) if k not in taken]
        if not rest:
            break
        # Row (a, b): the selection with its a-th document replaced by rest[b].
        base = np.tile(np.asarray(chosen), (size * len(rest), 1))
        out_pos = np.repeat(np.arange(size), len(rest))
        base[np.arange(len(base)), out_pos] = np.tile(np.asarray(rest), size)
        values = sign * entropies(scores[base], definition, temperature, bits)
        best = int(np.argmin(values))
        if not values[best] < current - 1e-12:
            break
        current = float(values[best])
        chosen = sorted(base[best].tolist())
    return chosen


def max_variance(scores: np.ndarray, size: int) -> list[int]:
    """Indices of the ``size`` scores of largest variance: the best of the top-i + bottom-(size - i) splits."""
    n = len(scores)  # scores are in descending order
    splits = [list(range(i)) + list(range(n - (size - i), n)) for i in range(size + 1)]
    variances = [float(np.var(scores[s])) for s in splits]
    return splits[int(np.argmax(variances))]


@dataclass
class SelectStats:
    queries: int = 0
    written: int = 0
    too_small: list[str] = field(default_factory=list)


def select(source: Source, selection: str, size: int, objective: str = "min", definition: str = "softmax",
           temperature: float = 1.0, k: int | None = None, bits: bool = False,
           stats: SelectStats | None = None) -> Iterator[Group]:
    """Each query's selected sub-ranking of its top ``k`` (all when None) as a positive-free group, in the run's
    query order. A query with fewer than ``size`` documents is skipped and named in ``stats.too_small``."""
    if selection not in SELECTIONS:
        raise UsageError(f"--select {selection!r}: expected one of {', '.join(SELECTIONS)}")
    if objective not in OBJECTIVES:
        raise UsageError(f"--objective {objective!r}: expected min or max")
    if selection == "max-variance" and objective != "min":
        raise UsageError("--objective max goes with --select greedy (max-variance is a stand-in for low entropy)")
    if size < 2:
        raise UsageError("--size must be at least 2 (a group lists at least 2 documents)")
    stats = stats if stats is not None else SelectStats()
    name = source_name(source)
    for qid, docs in iter_run_queries(source):
        stats.queries += 1
        ranked = sort_query(docs)[:k] if k is not None else sort_query(docs)
        if len(ranked) < size:
            stats.too_small.append(qid)
            continue
        ids = [d for d, _ in ranked]
        values = np.array([s for _, s in ranked], dtype=np.float64)
        if definition == "sumnorm" and (values > 0).any() and (values < 0).any():
            raise InputError(name, None, f"query {qid!r}: sumnorm entropy needs scores of one sign; use "
                             "--definition softmax or pairwise")
        if selection == "greedy":
            picked = greedy(values, size, objective, definition, temperature, bits)
        else:
            picked = max_variance(values, size)
        h = float(entropies(values[None, picked], definition, temperature, bits)[0])
        meta = {"select": selection, "size": size, "definition": definition, "temperature": temperature,
                "entropy": h + 0.0, "pool": len(ranked)}
        if selection == "greedy":
            meta["objective"] = objective
        stats.written += 1
        yield Group(qid, [ids[i] for i in picked], [0] * size, [float(values[i]) for i in picked], meta, "none")
