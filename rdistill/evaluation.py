"""Effectiveness measures with trec_eval's semantics, computed with numpy over the whole run at once.

The measures are ranx's kernels (nDCG, AP, RR, P and R, whose numbers the tests hold equal to trec_eval's)
restated on flat arrays: every query's ranking is laid end to end, and each measure is a handful of vectorised
operations plus per-query sums in rank order (``np.bincount`` with weights adds in input order, as the kernels'
loops do). Importing ranx costs seconds (pandas, scipy.stats, matplotlib) and its numba kernels a compile or a
cache load; on a 1 M-line run that was most of ``rdistill eval``'s time.

- Order. trec_eval ranks a query's documents by score descending, ties broken by docno descending, and ignores the
  rank column. Each query is sorted so (a lexsort on score, then docno), whatever the order of the file.
- Ids. Each ranked document's judged level is looked up in the qrels (-inf when unjudged, which no level reaches),
  so ids are compared as strings, never hashed.
- Queries. trec_eval evaluates the queries that have both judgments and results: a run's query missing from the
  qrels is ignored, a judged query with no relevant document counts (as 0), and the mean is over those queries.
  With ``complete`` (trec_eval -c), every judged query counts and one missing from the run scores 0 on every measure.
- Relevance level. Binary measures (map, mrr, precision, recall) count a document relevant when its level is at least
  ``rel_level`` (trec_eval -l, default 1); nDCG uses the graded levels as gains (levels <= 0 gain nothing), which
  trec_eval's -l does not change. A ranx suffix ``-lN`` on one measure (``map-l2``) sets its level explicitly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

from rdistill.errors import UsageError
from rdistill.schema import Qrels, Run, RunTable

# ranx name -> what it measures and its trec_eval counterpart (for help texts and error messages).
MEASURES: dict[str, str] = {
    "ndcg": "nDCG, graded gains (trec_eval ndcg / ndcg_cut_k)",
    "map": "average precision (trec_eval map / map_cut_k)",
    "mrr": "reciprocal rank of the first relevant document (trec_eval recip_rank)",
    "precision": "precision (trec_eval P_k; without @k, set_P)",
    "recall": "recall (trec_eval recall_k; without @k, set_recall)",
}
BINARY = frozenset({"map", "mrr", "precision", "recall"})
DEFAULT_METRICS = ("ndcg@10", "map", "mrr", "precision@10", "recall@100")
_NAME = re.compile(r"^(?P<base>[a-z_]+)(?:@(?P<k>\d+))?(?:-l(?P<level>-?\d+))?$")


@dataclass(frozen=True)
class Measure:
    """A parsed measure name in ranx's syntax: ``BASE[@K][-lLEVEL]``."""

    name: str  # as the user wrote it; the key in every output
    base: str  # ndcg, map, mrr, precision, recall
    k: int  # 0: the whole ranking
    level: int | None  # an explicit -lN suffix, else None (then --rel-level applies to binary measures)

    def rel_level(self, default: int) -> int:
        if self.level is not None:
            return self.level
        # trec_eval's -l only changes which documents binary measures count; nDCG keeps every positive gain.
        return default if self.base in BINARY else 1


def valid_names() -> str:
    return "ndcg@K, map, map@K, mrr, mrr@K, precision@K, recall@K (optionally with a ranx level suffix, e.g. map-l2)"


def parse_measure(name: str) -> Measure:
    text = name.strip()
    match = _NAME.match(text)
    if match is None or match["base"] not in MEASURES:
        raise UsageError(f"unknown measure {name!r}; valid: {valid_names()}")
    k = int(match["k"]) if match["k"] is not None else 0
    if match["k"] is not None and k < 1:
        raise UsageError(f"measure {name!r}: the cutoff after @ must be at least 1")
    level = int(match["level"]) if match["level"] is not None else None
    return Measure(text, match["base"], k, level)


def parse_measures(spec: str | Iterable[str]) -> list[Measure]:
    """A comma-separated list (or a sequence) of ranx names; duplicates are dropped, order kept."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: dict[str, Measure] = {}
    for name in names:
        if name.strip():
            measure = parse_measure(name)
            out.setdefault(measure.name, measure)
    if not out:
        raise UsageError(f"no measures given; valid: {valid_names()}")
    return list(out.values())


@dataclass
class Evaluation:
    """One run's scores: ``per_query[measure][query_id]`` and the ``mean`` over the evaluated ``queries``."""

    name: str
    queries: list[str]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    missing: int = 0  # judged queries the run lacks (scored 0 with complete=True, else left out)

    def to_json(self) -> dict[str, Any]:
        return dict(self.mean)


class _Ranked:
    """The common queries' rankings in trec_eval's order, flattened: per line its query (0..n-1), its rank
    (0-based) and the judged level of its document (-inf when unjudged, which no --rel-level reaches)."""

    def __init__(self, qrels: Qrels, table: RunTable, common: list[str]) -> None:
        import numpy as np

        slot = np.full(len(table.queries), -1, dtype=np.int64)  # table query -> position in `common`, or -1
        positions = table.positions
        slot[[positions[q] for q in common]] = np.arange(len(common))
        query = slot[table.query_index]
        lines = np.flatnonzero(query >= 0)
        # By query, then score descending (a stable sort: the file order among equal scores, fixed below).
        order = lines[np.lexsort((-table.scores[lines], query[lines]))]
        query = query[order]
        scores = table.scores[order]
        docs = table.docs
        tied = np.flatnonzero((scores[1:] == scores[:-1]) & (query[1:] == query[:-1]))
        if len(tied):
            # trec_eval breaks ties by docno descending: sort each run of equal scores by its ids (in Python:
            # tie runs are short in real runs, and a whole query of equal scores is one plain sort).
            starts = tied[np.r_[True, np.diff(tied) > 1]]
            ends = tied[np.r_[np.diff(tied) > 1, True]] + 2
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                order[a:b] = sorted(order[a:b].tolist(), key=docs.__getitem__, reverse=True)
        self.sizes = np.bincount(query, minlength=len(common))
        self.query = query
        begins = np.zeros(len(common), dtype=np.int64)
        np.cumsum(self.sizes[:-1], out=begins[1:])
        self.rank = np.arange(len(query), dtype=np.int64) - begins[query]
        ranked_docs = list(map(docs.__getitem__, order.tolist()))
        bounds = np.r_[begins, len(query)].tolist()
        self.level = np.fromiter(
            chain.from_iterable(map(qrels[q].get, ranked_docs[bounds[i]:bounds[i + 1]], repeat(-math.inf))
                                for i, q in enumerate(common)), dtype=np.float64, count=len(query))
        self.judged = [sorted(qrels[q].values(), reverse=True) for q in common]
        self.judged_level = np.array([v for levels in self.judged for v in levels], dtype=np.float64)
        self.judged_query = np.repeat(np.arange(len(common)), [len(levels) for levels in self.judged])


def _score(measure: Measure, ranked: _Ranked, level: int) -> Any:
    """One measure for every common query, as ranx's kernels compute it on trec_eval's ranking (sums run in rank
    order, one query at a time, as theirs do: ``np.bincount`` adds its weights in input order)."""
    import numpy as np

    n_q = len(ranked.sizes)
    k = measure.k
    cut = np.minimum(ranked.sizes, k) if k else ranked.sizes  # ranx's fix_k: at most the ranking's length
    top = ranked.rank < cut[ranked.query]
    relevant = ranked.level >= level
    hit = top & relevant
    n_rel = np.bincount(ranked.judged_query[ranked.judged_level >= level], minlength=n_q).astype(np.float64)
    hits = np.bincount(ranked.query[hit], minlength=n_q).astype(np.float64)
    base = measure.base
    if base == "precision":
        return hits / (k if k else ranked.sizes)
    out = np.zeros(n_q, dtype=np.float64)
    has = n_rel > 0
    if base == "recall":
        out[has] = hits[has] / n_rel[has]
    elif base == "mrr":
        at = np.flatnonzero(hit)
        first, index = np.unique(ranked.query[at], return_index=True)
        out[first] = 1 / (ranked.rank[at[index]] + 1)
    elif base == "map":
        at = np.flatnonzero(hit)
        # Hits so far at each hit, within its query: a running count over the flattened hits, less the count
        # before the query's first hit (integers, so exact).
        running = np.arange(1, len(at) + 1, dtype=np.int64)
        first = np.searchsorted(ranked.query[at], ranked.query[at], side="left")
        precision = (running - first) / (ranked.rank[at] + 1)
        sums = np.bincount(ranked.query[at], weights=precision, minlength=n_q)
        out[has] = sums[has] / n_rel[has]
    else:  # ndcg: gains are the levels of documents judged at least `level`, over the ideal ordering's DCG
        at = np.flatnonzero(hit)
        gains = ranked.level[at] / np.log2(ranked.rank[at].astype(np.float64) + 2)
        dcg = np.bincount(ranked.query[at], weights=gains, minlength=n_q)
        for i, judged in enumerate(ranked.judged):
            kept = [v for v in judged if v >= level]
            if not kept:
                continue
            ideal = np.array(kept[: k or len(kept)], dtype=np.float64)
            idcg = 0.0
            for g in (ideal / np.log2(np.arange(1, len(ideal) + 1) + 1)).tolist():
                idcg += g
            out[i] = dcg[i] / (idcg if idcg != 0 else 1.0)
    return out


def evaluate(qrels: Qrels, run: Run | RunTable, measures: Sequence[Measure | str] | str = DEFAULT_METRICS, *,
             name: str = "run", complete: bool = False, rel_level: int = 1) -> Evaluation:
    """Score ``run`` against ``qrels`` as trec_eval would (``complete`` = trec_eval -c, ``rel_level`` = -l)."""
    parsed = parse_measures(measures) if isinstance(measures, str) else [
        m if isinstance(m, Measure) else parse_measure(m) for m in measures]
    table = run if isinstance(run, RunTable) else RunTable.from_run(run)
    common = sorted(q for q in qrels if q in table)  # trec_eval reports queries in qid (strcmp) order
    if not common:
        raise UsageError(f"{name}: no query of the run appears in the qrels (run has e.g. "
                         f"{table.queries[0]!r}, qrels {next(iter(qrels))!r}); wrong --qrels or --split?")
    missing = sorted(q for q in qrels if q not in table)
    ranked = _Ranked(qrels, table, common)
    result = Evaluation(name, sorted(common + missing) if complete else common, missing=len(missing))
    for measure in parsed:
        scores = _score(measure, ranked, measure.rel_level(rel_level))
        values = {q: float(v) for q, v in zip(common, scores.tolist(), strict=True)}
        if complete:
            values.update({q: 0.0 for q in missing})  # an empty ranking scores 0 on every measure here
            values = {q: values[q] for q in result.queries}
        result.per_query[measure.name] = values
        result.mean[measure.name] = sum(values.values()) / len(values)
    return result


def evaluate_many(qrels: Qrels, runs: Sequence[tuple[str, Run | RunTable]],
                  measures: Sequence[Measure | str] | str = DEFAULT_METRICS, *, complete: bool = False, rel_level: int = 1) -> list[Evaluation]:
    parsed = parse_measures(measures) if isinstance(measures, str) else list(measures)
    return [evaluate(qrels, run, parsed, name=name, complete=complete, rel_level=rel_level) for name, run in runs]
