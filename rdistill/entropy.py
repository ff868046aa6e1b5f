"""Per-query entropy of a teacher's ranking, and cuts of queries by it (the paper's entropy subsets).

Three definitions, named by what they compute (scores t over one query's candidates, temperature T):

- ``softmax``: H = -sum p log p with p = softmax(t / T); nats, or bits with ``bits=True``.
- ``pairwise``: the mean over pairs i < j of the binary entropy of sigmoid((t_i - t_j) / T), in bits (the
  authors' training-set statistic); 0 for a single candidate.
- ``sumnorm``: p_i = t_i / sum(t) (the authors' cut code), then -sum p log p; only meaningful when every score has
  the same sign (e.g. log-probabilities), so mixed signs are refused. T cancels out and is only recorded.

Cuts keep queries by where their entropy falls among all queries' (numpy percentiles, linear interpolation) and
are named by what they keep: ``below-X`` keeps H < X, ``above-X`` keeps H >= X, so each pair partitions the queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple, TextIO

import numpy as np

from rdistill.errors import InputError, UsageError
from rdistill.io import (
    Source,
    iter_groups,
    iter_lines,
    iter_run_queries,
    open_output_bytes,
    peek_line,
    source_name,
)
from rdistill.schema import EntropyRecord

DEFINITIONS = ("softmax", "pairwise", "sumnorm")
CUTS = ("below-median", "above-median", "below-q3", "above-q1", "inner", "outer", "percentile:LO:HI")


def softmax_entropy(scores: Sequence[float], temperature: float = 1.0, bits: bool = False) -> float:
    t = np.asarray(scores, dtype=np.float64) / temperature
    t -= t.max()  # log-sum-exp shift: exp never overflows
    logp = t - np.log(np.exp(t).sum())
    h = float(-(np.exp(logp) * logp).sum())
    return (max(h, 0.0) + 0.0) / (math.log(2) if bits else 1.0)  # + 0.0: never -0.0


def pairwise_entropy(scores: Sequence[float], temperature: float = 1.0) -> float:
    t = np.asarray(scores, dtype=np.float64) / temperature
    i, j = np.triu_indices(len(t), k=1)
    if len(i) == 0:
        return 0.0
    d = t[i] - t[j]
    # Binary entropy of sigmoid(d) in nats, symmetric in d; with a = |d| it is softplus(-a) + a * sigmoid(-a),
    # a form where large |d| neither overflows nor gives 0 * log 0.
    a = np.abs(d)
    e = np.exp(-a)
    h = np.logaddexp(0.0, -a) + a * e / (1.0 + e)
    return float(h.mean() / math.log(2))


def sumnorm_entropy(scores: Sequence[float], bits: bool = False) -> float:
    t = np.asarray(scores, dtype=np.float64)
    if (t > 0).any() and (t < 0).any():
        raise ValueError("sumnorm entropy needs scores of one sign (e.g. log-probabilities); these mix positive "
                         "and negative scores: use --definition softmax or pairwise")
    total = t.sum()
    if total == 0:
        raise ValueError("sumnorm entropy is undefined when the scores sum to 0")
    p = t / total
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    return (max(h, 0.0) + 0.0) / (math.log(2) if bits else 1.0)  # + 0.0: never -0.0


def entropy(scores: Sequence[float], definition: str = "softmax", temperature: float = 1.0,
            bits: bool = False) -> float:
    """The entropy of one query's candidate scores under ``definition``."""
    if len(scores) == 0:
        raise ValueError("no candidates")
    if definition == "softmax":
        return softmax_entropy(scores, temperature, bits)
    if definition == "pairwise":
        return pairwise_entropy(scores, temperature)
    if definition == "sumnorm":
        return sumnorm_entropy(scores, bits)
    raise UsageError(f"--definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")


def top_k(scores: Sequence[float], k: int | None) -> list[float]:
    """The k highest scores (the run's top k); all when k is None."""
    ranked = sorted(scores, reverse=True)
    return ranked if k is None else ranked[:k]


def cut_bounds(values: Sequence[float], keep: str) -> tuple[float, float, bool]:
    """(low, high, inside) for a cut: keep H with low <= H < high when ``inside``, else H outside [low, high].

    Returned as bounds so the caller decides per query in one pass and the summary can report them.
    """
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    inf = math.inf
    if keep == "below-median":
        return -inf, median, True
    if keep == "above-median":
        return median, inf, True
    if keep == "below-q3":
        return -inf, q3, True
    if keep == "above-q1":
        return q1, inf, True
    if keep in ("inner", "outer"):
        iqr = q3 - q1
        # inner keeps the closed fence interval; nextafter makes the half-open test below include the upper fence.
        return q1 - 1.5 * iqr, float(np.nextafter(q3 + 1.5 * iqr, inf)), keep == "inner"
    if keep.startswith("percentile:"):
        parts = keep.split(":")
        try:
            lo, hi = float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise UsageError(f"--keep {keep!r}: expected percentile:LO:HI, e.g. percentile:10:90") from None
        if len(parts) != 3 or not 0 <= lo < hi <= 100:
            raise UsageError(f"--keep {keep!r}: need 0 <= LO < HI <= 100")
        low, high = (float(x) for x in np.percentile(v, [lo, hi]))
        # HI = 100 keeps the maximum itself.
        return (-inf if lo == 0 else low), (inf if hi == 100 else high), True
    raise UsageError(f"--keep {keep!r}: expected one of {', '.join(CUTS)}")


def kept(value: float, bounds: tuple[float, float, bool]) -> bool:
    low, high, inside = bounds
    within = low <= value < high
    return within if inside else not within


def summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    return {"queries": float(len(v)), "mean": float(v.mean()), "min": float(v.min()), "q1": q1, "median": median,
            "q3": q3, "max": float(v.max())}


INPUT_FORMAT = "a scored TREC run or training groups (JSONL)"


class Measurement(NamedTuple):
    """What :func:`measure` found: one record per query (per group for groups input), and the input's kind."""

    records: list[EntropyRecord]
    groups: bool  # the input was training groups (JSONL), not a run

    @property
    def values(self) -> list[float]:
        return [r.entropy for r in self.records]


def is_groups(source: Source) -> bool:
    """Training groups (JSONL, first character '{') rather than a TREC run. Peeks at the first line, so the
    reader that follows gets the same open input (a pipe is read once)."""
    line = peek_line(source)
    if line is not None:
        return line.lstrip()[0] == "{"
    raise InputError(source_name(source), None, f"empty input: expected {INPUT_FORMAT}")


def _candidate_sets(source: Source, groups: bool) -> Iterator[tuple[str, list[float]]]:
    """(query id, scores) per query of a run, or per line of a groups file (a group is its own candidate set)."""
    if not groups:
        for qid, docs in iter_run_queries(source):
            yield qid, list(docs.values())
        return
    name = source_name(source)
    for lineno, group in iter_groups(source):
        if group.scores is None:
            raise InputError(name, lineno, "group has no teacher scores (field 'scores'): sample with --scores, "
                             "or pass a scored run instead")
        yield group.query_id, group.scores


def measure(source: Source, definition: str = "softmax", temperature: float = 1.0, k: int | None = None,
            bits: bool = False) -> Measurement:
    """The entropy of each query's top ``k`` candidates in a scored run, or of each group in a groups file.

    ``source`` is opened once: its kind is told by a peek at its first line (see :func:`rdistill.io.peek_line`).
    """
    if definition not in DEFINITIONS:
        raise UsageError(f"--definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")
    groups = is_groups(source)
    name = source_name(source)
    records: list[EntropyRecord] = []
    for qid, scores in _candidate_sets(source, groups):
        cand = top_k(scores, k)
        try:
            value = entropy(cand, definition, temperature, bits)
        except ValueError as exc:
            raise InputError(name, None, f"query {qid!r}: {exc}") from None
        records.append(EntropyRecord(qid, value, len(cand), definition, temperature))
    return Measurement(records, groups)


def cut(source: Source, measured: Measurement, bounds: tuple[float, float, bool], out: TextIO) -> int:
    """Write the lines of ``source`` whose query (group) the cut keeps, unchanged; return how many were kept.

    A groups file is cut line by line (one decision per group, in order); a run keeps every line of a kept query.
    """
    decisions = [kept(r.entropy, bounds) for r in measured.records]
    if measured.groups:
        it = iter(decisions)
        for _, line in iter_lines(source):
            if line.strip() and next(it):
                out.write(line + "\n")
    else:
        keep_ids = {r.query_id for r, keep in zip(measured.records, decisions, strict=True) if keep}
        for _, line in iter_lines(source):
            fields = line.split(None, 1)
            if fields and fields[0] in keep_ids:
                out.write(line + "\n")
    return sum(decisions)


def plot(values: Sequence[float], path: str, title: str, bounds: tuple[float, float, bool] | None = None,
         label: str = "entropy") -> None:
    """A histogram of per-query entropy, with the cut's bounds as vertical lines and the kept side shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = np.asarray(values, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.hist(v, bins=min(50, max(10, len(v) // 10)), color="#4C72B0", alpha=0.85)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    for x, name in ((q1, "Q1"), (median, "median"), (q3, "Q3")):
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.text(x, ax.get_ylim()[1] * 0.95, name, rotation=90, va="top", ha="right", fontsize=8, color="grey")
    if bounds is not None:
        low, high, inside = bounds
        lo_x, hi_x = max(low, float(v.min())), min(high, float(v.max()))
        for x in (low, high):
            if math.isfinite(x):
                ax.axvline(x, color="#C44E52", linewidth=2)
        if inside:
            ax.axvspan(lo_x, hi_x, color="#C44E52", alpha=0.12, label="kept")
        else:
            ax.axvspan(float(v.min()), lo_x, color="#C44E52", alpha=0.12, label="kept")
            ax.axvspan(hi_x, float(v.max()), color="#C44E52", alpha=0.12)
        ax.legend(loc="upper right")
    ax.set_xlabel(label)
    ax.set_ylabel("queries")
    ax.set_title(title)
    fig.tight_layout()
    # Through open_output_bytes, as every output: atomic, a folder refused (savefig would write DIR.png beside
    # it), a symlink followed, a FIFO or /dev/stdout streamed to.
    with open_output_bytes(path) as out:
        fig.savefig(out, format="png")
    plt.close(fig)
