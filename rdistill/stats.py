"""Significance and equivalence between runs, over per-query scores.

- Difference: a two-sided paired t-test (scipy.stats.ttest_rel) of each run against a baseline, per measure, with the
  p-values of one measure corrected together for the number of runs compared (Holm by default, Bonferroni or none).
- Equivalence, as the paper groups systems: per measure, every run is tested against the best run (highest mean) with
  two one-sided paired t-tests (TOST) and a margin ``delta`` on the measure's own scale: H0 says the mean difference is
  at most -delta or at least +delta; both one-sided tests rejecting at ``alpha`` (0.10 in the paper) makes the run
  equivalent to the best. The TOST p-value is the larger of the two one-sided p-values; the same correction applies.

Pairs are formed over the queries both runs were evaluated on (all judged queries with trec_eval -c semantics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

CORRECTIONS = ("holm", "bonferroni", "none")
DEFAULT_MARGIN = 0.01
DEFAULT_ALPHA = 0.05
DEFAULT_TOST_ALPHA = 0.10


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (monotone, capped at 1), in the input's order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def bonferroni(pvalues: Sequence[float]) -> list[float]:
    return [min(1.0, len(pvalues) * p) for p in pvalues]


def adjust(pvalues: Sequence[float], method: str) -> list[float]:
    if method == "holm":
        return holm(pvalues)
    if method == "bonferroni":
        return bonferroni(pvalues)
    if method == "none":
        return list(pvalues)
    raise ValueError(f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}")


def paired_t(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of mean(x - y) != 0. Constant differences have no variance: t = 0, p = 1 when all are 0."""
    from scipy import stats

    diffs = [a - b for a, b in zip(x, y, strict=True)]
    if len(diffs) < 2:
        return math.nan, 1.0  # nothing to test
    if max(diffs) == min(diffs):
        if diffs[0] != 0:
            return math.copysign(math.inf, diffs[0]), 0.0
        return 0.0, 1.0
    result = stats.ttest_rel(x, y)
    return float(result.statistic), float(result.pvalue)


def tost(x: Sequence[float], y: Sequence[float], margin: float) -> tuple[float, float]:
    """Two one-sided paired t-tests of -margin < mean(x - y) < margin: (p of the lower test, p of the upper test)."""
    from scipy import stats

    diffs = [a - b for a, b in zip(x, y, strict=True)]
    if len(diffs) < 2:
        return 1.0, 1.0  # nothing to test: never claim equivalence
    if max(diffs) == min(diffs):  # no variance: the one difference either lies inside the margin or not
        d = diffs[0]
        return (0.0 if d > -margin else 1.0), (0.0 if d < margin else 1.0)
    lower = stats.ttest_1samp(diffs, -margin, alternative="greater")
    upper = stats.ttest_1samp(diffs, margin, alternative="less")
    return float(lower.pvalue), float(upper.pvalue)


class PairedTest(NamedTuple):
    """A run against the baseline on one measure."""

    measure: str
    run: str
    baseline: str
    n: int
    mean: float
    baseline_mean: float
    t: float
    p: float
    p_adjusted: float
    significant: bool


class EquivalenceTest(NamedTuple):
    """A run against the best run of one measure (TOST)."""

    measure: str
    run: str
    best: str
    n: int
    difference: float
    margin: float
    p_lower: float
    p_upper: float
    p: float
    p_adjusted: float
    equivalent: bool


class Comparison(NamedTuple):
    test: str
    correction: str
    alpha: float
    tost_alpha: float
    margin: float
    baseline: str
    paired: list[PairedTest]
    equivalence: list[EquivalenceTest]

    def groups(self) -> dict[str, list[str]]:
        """Per measure: the best run first, then every run equivalent to it."""
        out: dict[str, list[str]] = {}
        for e in self.equivalence:
            members = out.setdefault(e.measure, [e.best])
            if e.equivalent and e.run != e.best:
                members.append(e.run)
        return out


def _paired_scores(a: dict[str, float], b: dict[str, float]) -> tuple[list[float], list[float]]:
    common = [q for q in a if q in b]
    return [a[q] for q in common], [b[q] for q in common]


def compare(per_query: dict[str, dict[str, dict[str, float]]], measures: Sequence[str], baseline: str, *,
            correction: str = "holm", alpha: float = DEFAULT_ALPHA, tost_alpha: float = DEFAULT_TOST_ALPHA,
            margin: float = DEFAULT_MARGIN) -> Comparison:
    """Compare runs given as ``per_query[run][measure][query_id]``; runs keep their insertion order."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; expected one of {', '.join(CORRECTIONS)}")
    runs = list(per_query)
    paired: list[PairedTest] = []
    equivalence: list[EquivalenceTest] = []
    for measure in measures:
        rows = []
        for run in runs:
            if run == baseline:
                continue
            x, y = _paired_scores(per_query[run][measure], per_query[baseline][measure])
            t, p = paired_t(x, y)
            rows.append((run, len(x), _mean(x), _mean(y), t, p))
        for (run, n, mean, base_mean, t, p), p_adj in zip(rows, adjust([r[5] for r in rows], correction),
                                                          strict=True):
            paired.append(PairedTest(measure, run, baseline, n, mean, base_mean, t, p, p_adj, p_adj < alpha))

        means = {run: _mean(list(per_query[run][measure].values())) for run in runs}
        best = max(runs, key=lambda r: means[r])  # first of equal means wins: runs keep the user's order
        rows_e = []
        for run in runs:
            if run == best:
                continue
            x, y = _paired_scores(per_query[run][measure], per_query[best][measure])
            p_lower, p_upper = tost(x, y, margin)
            rows_e.append((run, len(x), _mean(x) - _mean(y), p_lower, p_upper, max(p_lower, p_upper)))
        for (run, n, diff, p_lower, p_upper, p), p_adj in zip(rows_e, adjust([r[5] for r in rows_e], correction),
                                                              strict=True):
            equivalence.append(EquivalenceTest(measure, run, best, n, diff, margin, p_lower, p_upper, p, p_adj,
                                               p_adj < tost_alpha))
    return Comparison("paired t-test (two-sided); TOST (two one-sided paired t-tests)", correction, alpha, tost_alpha,
                      margin, baseline, paired, equivalence)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
