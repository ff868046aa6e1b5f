"""Score fusion of TREC runs, query by query: weighted sum, CombMNZ and reciprocal rank fusion.

Each query's scores are first normalised per run (``minmax``: (s - min) / (max - min); ``zscore``: (s - mean) /
std, the population std; ``none``), with ranx's guard of 1e-9 on a zero denominator, so a query whose documents all
share one score normalises to 0 (minmax) as in ranx. Then, over the union of the documents the runs hold:

- ``wsum``: sum over runs of weight x normalised score;
- ``combmnz``: that sum times the number of runs that hold the document (Fox and Shaw's CombMNZ);
- ``rrf``: sum over runs of weight / (k + rank), rank 1-based in trec_eval's order (score descending, docno
  descending on ties); ``norm`` does not apply.

The missing-document rule: a document that a run does not hold for a query gets that run's *normalised minimum*
for the query (0 under minmax, the lowest z-score under zscore, the lowest raw score under none), i.e. it counts
as no better than the run's last document; under rrf it contributes nothing (as if ranked at infinity). With
minmax this is ranx's rule (a missing score is 0), so ``wsum``/``combmnz`` give ranx.fuse's numbers; with
zscore or none ranx counts a missing document as 0 instead. ``require_all`` turns a missing document into an
error.

A query that some runs do not list at all is fused from the runs that list it (each keeps its weight; there is no
minimum to give, since that run ranked nothing for the query); it is never dropped, and the count of such
queries is returned (the CLI prints it). ``require_all`` makes this an error too.

Memory: the first run drives the loop and is streamed one query at a time; the others are read in lockstep
(:class:`rdistill.sampling.LockstepRun`). Runs that list queries in the same order (every rdistill stage keeps
its input's order) hold one query each; a query a run lists ahead of the first run waits in memory until asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rdistill.errors import UsageError
from rdistill.io import Source, iter_run_queries, sort_query, source_name

METHODS = ("wsum", "rrf", "combmnz")
NORMS = ("minmax", "zscore", "none")
GUARD = 1e-9  # ranx's floor on a normalisation denominator


@dataclass(frozen=True)
class FuseConfig:
    method: str = "wsum"
    norm: str = "minmax"
    weights: tuple[float, ...] | None = None  # None: equal weights of 1 / number of runs
    rrf_k: float = 60.0
    require_all: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.norm not in NORMS:
            raise UsageError(f"--norm {self.norm!r}: expected one of {', '.join(NORMS)}")
        if self.rrf_k < 0:
            raise UsageError(f"--rrf-k {self.rrf_k}: expected a number >= 0")


@dataclass
class FuseStats:
    queries: int = 0
    partial_queries: int = 0  # queries some run does not list
    filled_documents: int = 0  # (query, run, document) slots given the run's normalised minimum


def normalise(docs: dict[str, float], norm: str) -> dict[str, float]:
    """One run's scores for one query, normalised as ranx does (same guard on a zero denominator)."""
    if norm == "none" or not docs:
        return dict(docs)
    values = np.fromiter(docs.values(), dtype=np.float64, count=len(docs))
    if norm == "minmax":
        low = float(values.min())
        scale = max(float(values.max()) - low, GUARD)
    else:
        low = float(values.mean())
        scale = max(float(values.std()), GUARD)
    return {doc: (score - low) / scale for doc, score in docs.items()}


def fuse_query(parts: list[dict[str, float] | None], config: FuseConfig, weights: list[float],
               names: list[str], qid: str, stats: FuseStats) -> dict[str, float]:
    """Fuse one query's documents from each run (None: the run does not list the query)."""
    present = [i for i, docs in enumerate(parts) if docs is not None]
    union: dict[str, None] = {}
    for i in present:
        union.update(dict.fromkeys(parts[i]))  # type: ignore[arg-type]
    if config.require_all:
        for i in present:
            for doc in union:
                if doc not in parts[i]:  # type: ignore[operator]
                    raise UsageError(f"{names[i]}: query {qid!r} has no score for document {doc!r} "
                                     "(--require-all)")
    fused = dict.fromkeys(union, 0.0)
    if config.method == "rrf":
        for i in present:
            for rank, (doc, _) in enumerate(sort_query(parts[i]), 1):  # type: ignore[arg-type]
                fused[doc] += weights[i] / (config.rrf_k + rank)
        return fused
    held = dict.fromkeys(union, 0)
    for i in present:
        normed = normalise(parts[i], config.norm)  # type: ignore[arg-type]
        floor = min(normed.values()) if normed else 0.0
        for doc in union:
            score = normed.get(doc)
            if score is None:
                score = floor
                stats.filled_documents += 1
            else:
                held[doc] += 1
            fused[doc] += weights[i] * score
    if config.method == "combmnz":
        fused = {doc: score * held[doc] for doc, score in fused.items()}
    return fused


def fuse(sources: Sequence[Source], config: FuseConfig = FuseConfig(),
         stats: FuseStats | None = None) -> Iterator[tuple[str, dict[str, float]]]:
    """Yield ``(query id, fused scores)`` for every query any run lists: the first run's queries in its order,
    then the queries only other runs list, by id; ``stats`` (when given) counts what was filled in."""
    from rdistill.sampling import LockstepRun

    if len(sources) < 2:
        raise UsageError("fuse needs at least two runs")
    if sum(str(s) == "-" for s in sources) > 1:
        raise UsageError("only one of the runs can be - (stdin)")
    weights = list(config.weights) if config.weights is not None else [1.0 / len(sources)] * len(sources)
    if len(weights) != len(sources):
        raise UsageError(f"--weights gives {len(weights)} weight(s) for {len(sources)} runs")
    names = [source_name(s) for s in sources]
    stats = stats if stats is not None else FuseStats()
    others = [LockstepRun(str(s), None) for s in sources[1:]]

    def emit(qid: str, parts: list[dict[str, float] | None]) -> tuple[str, dict[str, float]]:
        missing = [names[i] for i, docs in enumerate(parts) if docs is None]
        if missing:
            if config.require_all:
                raise UsageError(f"{missing[0]}: has no query {qid!r} (--require-all)")
            stats.partial_queries += 1
        stats.queries += 1
        return qid, fuse_query(parts, config, weights, names, qid, stats)

    for qid, docs in iter_run_queries(sources[0]):
        yield emit(qid, [docs, *(o.get(qid) for o in others)])
    # Queries the first run does not list: gathered from the others (only these are held), fused by id.
    rest: dict[str, list[dict[str, float] | None]] = {}
    for n, other in enumerate(others, 1):
        for qid, docs in other.rest():
            rest.setdefault(qid, [None] * len(sources))[n] = docs
    for qid in sorted(rest):
        yield emit(qid, rest[qid])


def parse_weights(text: str | None, count: int) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise UsageError(f"--weights {text!r}: expected numbers separated by commas, e.g. 0.5,0.5") from None
    if len(weights) != count:
        raise UsageError(f"--weights {text!r} gives {len(weights)} weight(s) for {count} runs")
    if not all(np.isfinite(weights)):
        raise UsageError(f"--weights {text!r}: expected finite numbers")
    return weights
