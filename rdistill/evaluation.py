"""Effectiveness measures with trec_eval's semantics, computed by ranx.

ranx is the engine (its numba kernels for nDCG, AP, RR, P and R); this module makes its numbers equal trec_eval's:

- Order. trec_eval ranks a query's documents by score descending, ties broken by docno descending, and ignores the
  rank column. ranx would sort by score alone, so ties would land in an arbitrary order. We sort with
  :func:`rdistill.io.sort_query` (trec_eval's order) and hand ranx the ranked arrays directly, so it never sorts.
- Ids. ranx hashes doc ids into float64 (two ids can collide); we number each query's judged documents 0..m-1
  instead and give every unjudged document -1, which no judged id equals.
- Queries. trec_eval evaluates the queries that have both judgments and results: a run's query missing from the
  qrels is ignored, a judged query with no relevant document counts (as 0), and the mean is over those queries.
  With ``complete`` (trec_eval -c), every judged query counts and one missing from the run scores 0 on every measure.
- Relevance level. Binary measures (map, mrr, precision, recall) count a document relevant when its level is at least
  ``rel_level`` (trec_eval -l, default 1); nDCG uses the graded levels as gains (levels <= 0 gain nothing), which
  trec_eval's -l does not change. A ranx suffix ``-lN`` on one measure (``map-l2``) sets its level explicitly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdistill.errors import UsageError
from rdistill.io import sort_query
from rdistill.schema import Qrels, Run

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


def _query_arrays(judged: dict[str, int], docs: dict[str, float]) -> tuple[Any, Any]:
    """(qrels, run) arrays of one query in ranx's layout: rows of (doc number, value), each sorted as ranx expects."""
    import numpy as np

    # Judged documents sorted by level descending: ranx computes the ideal DCG from the qrels array as given.
    ranked_judged = sorted(judged.items(), key=lambda item: item[1], reverse=True)
    number = {doc: i for i, (doc, _) in enumerate(ranked_judged)}
    qrels = np.array([(i, level) for i, (_, level) in enumerate(ranked_judged)], dtype=np.float64).reshape(-1, 2)
    ranked = sort_query(docs)
    n = len(ranked)
    run = np.empty((n, 2), dtype=np.float64)
    run[:, 0] = np.fromiter((number.get(doc, -1) for doc, _ in ranked), dtype=np.float64, count=n)
    run[:, 1] = np.arange(n, 0, -1, dtype=np.float64)  # strictly decreasing: the order is exactly trec_eval's
    return qrels, run


def _kernel(base: str) -> Any:
    from ranx import metrics

    return {"ndcg": metrics.ndcg, "map": metrics.average_precision, "mrr": metrics.reciprocal_rank,
            "precision": metrics.precision, "recall": metrics.recall}[base]


def evaluate(qrels: Qrels, run: Run, measures: Sequence[Measure | str] | str = DEFAULT_METRICS, *,
             name: str = "run",
             complete: bool = False, rel_level: int = 1) -> Evaluation:
    """Score ``run`` against ``qrels`` as trec_eval would (``complete`` = trec_eval -c, ``rel_level`` = -l)."""
    from numba.typed import List as TypedList

    parsed = parse_measures(measures) if isinstance(measures, str) else [
        m if isinstance(m, Measure) else parse_measure(m) for m in measures]
    common = sorted(q for q in qrels if q in run)  # trec_eval reports queries in qid (strcmp) order
    if not common:
        raise UsageError(f"{name}: no query of the run appears in the qrels (run has e.g. "
                         f"{next(iter(run))!r}, qrels {next(iter(qrels))!r}); wrong --qrels or --split?")
    missing = sorted(q for q in qrels if q not in run)
    arrays = [_query_arrays(qrels[q], run[q]) for q in common]
    qrels_list = TypedList([a[0] for a in arrays])
    run_list = TypedList([a[1] for a in arrays])
    result = Evaluation(name, sorted(common + missing) if complete else common, missing=len(missing))
    for measure in parsed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's "unsafe cast uint64 to int64" on prange indexes
            scores = _kernel(measure.base)(qrels_list, run_list, measure.k, measure.rel_level(rel_level))
        values = {q: float(v) for q, v in zip(common, scores, strict=True)}
        if complete:
            values.update({q: 0.0 for q in missing})  # an empty ranking scores 0 on every measure here
            values = {q: values[q] for q in result.queries}
        result.per_query[measure.name] = values
        result.mean[measure.name] = sum(values.values()) / len(values)
    return result


def evaluate_many(qrels: Qrels, runs: Sequence[tuple[str, Run]],
                  measures: Sequence[Measure | str] | str = DEFAULT_METRICS, *, complete: bool = False, rel_level: int = 1) -> list[Evaluation]:
    parsed = parse_measures(measures) if isinstance(measures, str) else list(measures)
    return [evaluate(qrels, run, parsed, name=name, complete=complete, rel_level=rel_level) for name, run in runs]
