"""Locality of training documents: per-query robust diameters, the dataset's Δ, and pool coverage.

Paper (Parry et al. 2025, "Locality measures"): embed a query's documents; Δ̂_q is the α-quantile (0.99) of their
pairwise cosine distances, and the dataset's Δ is the 0.99 quantile of Δ̂_q over queries. Coverage of a training
pool S against a test pool R is |S ∩ R| / |R|, reported with the same ratio for a random pool of |S| documents.
Quantiles are numpy's default (linear interpolation), so the figures match a numpy re-computation exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from rdistill.errors import InputError, UsageError
from rdistill.io import iter_groups, iter_lines, iter_run_queries, sort_query, source_name

DEFAULT_ALPHA = 0.99
DATASET_QUANTILE = 0.99


def pairwise_cosine_distances(vectors: np.ndarray) -> np.ndarray:
    """The n(n-1)/2 distances 1 - cos(u, v) over pairs u < v (float64, so tiny distances are not lost)."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    sims = v @ v.T
    i, j = np.triu_indices(len(v), k=1)
    return np.clip(1.0 - sims[i, j], 0.0, 2.0)


def robust_diameter(vectors: np.ndarray, alpha: float = DEFAULT_ALPHA) -> float:
    """Δ̂_q: the α-quantile of the pairwise cosine distances of one query's documents (needs two or more)."""
    if len(vectors) < 2:
        raise ValueError("a diameter needs at least two documents")
    return float(np.quantile(pairwise_cosine_distances(vectors), alpha))


def dataset_delta(diameters: Iterable[float], quantile: float = DATASET_QUANTILE) -> float:
    values = np.fromiter(diameters, dtype=np.float64)
    if values.size == 0:
        raise UsageError("no query had two or more documents: no diameter to summarise")
    return float(np.quantile(values, quantile))


# -------------------------------------------------------------------------------------------------------- pools


def is_groups_file(source: str) -> bool:
    """Groups JSONL starts with '{'; anything else is read as a TREC run."""
    for _, line in iter_lines(source):
        if line.strip():
            return line.lstrip().startswith("{")
    raise InputError(source_name(source), None, "empty input: expected training groups (JSONL) or a TREC run")


def query_pools(source: str, k: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """Each query's document set, in a canonical order: a groups file's union of the query's groups (queries in
    first-seen order), or a run's top k (trec_eval order)."""
    if is_groups_file(source):
        pools: dict[str, dict[str, None]] = {}
        for _, group in iter_groups(source):
            pools.setdefault(group.query_id, {}).update(dict.fromkeys(group.doc_ids))
        for qid, docs in pools.items():
            yield qid, sorted(docs)
        return
    for qid, docs in iter_run_queries(source):
        yield qid, [d for d, _ in sort_query(docs)[:k]]


@dataclass(frozen=True)
class Coverage:
    train_docs: int
    test_docs: int
    overlap: int
    coverage: float
    random_coverage: float
    expected_random_coverage: float
    normalised: float | None

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def coverage(train: set[str], test: set[str], corpus_size: int, random_pool: set[str]) -> Coverage:
    """|S ∩ R| / |R|; ``random_pool`` is a uniform draw of |S| corpus documents (the seeded baseline). The
    normalised figure divides by the random pool's expected coverage |S| / N, which a single draw only estimates."""
    if not test:
        raise UsageError("the test pool is empty")
    overlap = len(train & test)
    cov = overlap / len(test)
    expected = min(len(train), corpus_size) / corpus_size if corpus_size else 0.0
    return Coverage(len(train), len(test), overlap, cov, len(random_pool & test) / len(test), expected,
                    cov / expected if expected else None)


def random_pool(size: int, corpus_size: int, id_at: object, seed: int) -> set[str]:
    rng = random.Random(f"{seed}|coverage")
    return {id_at(i) for i in rng.sample(range(corpus_size), min(size, corpus_size))}  # type: ignore[operator]


# --------------------------------------------------------------------------------------------------- embeddings


class Embeddings:
    """Document vectors by id: precomputed (an .npz with ``ids`` and ``vectors``), or computed once with a
    bi-encoder for every document asked for (each document is embedded once, however many queries share it)."""

    def __init__(self, path: str | None = None) -> None:
        self.index: dict[str, int] = {}
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        if path is not None:
            try:
                data = np.load(path, allow_pickle=False)
                ids, vectors = data["ids"], data["vectors"]
            except (OSError, KeyError, ValueError) as exc:
                raise InputError(path, None, f"expected an .npz with arrays 'ids' and 'vectors' ({exc})") from None
            self.index = {str(d): i for i, d in enumerate(ids)}
            self.vectors = np.asarray(vectors, dtype=np.float32)

    def missing(self, doc_ids: Iterable[str]) -> list[str]:
        return [d for d in dict.fromkeys(doc_ids) if d not in self.index]

    def add(self, doc_ids: list[str], vectors: np.ndarray) -> None:
        start = len(self.index)
        self.vectors = vectors if start == 0 else np.vstack([self.vectors, vectors])
        self.index.update({d: start + i for i, d in enumerate(doc_ids)})

    def get(self, doc_ids: list[str]) -> np.ndarray:
        return self.vectors[[self.index[d] for d in doc_ids]]
