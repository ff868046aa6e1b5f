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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rdistill.errors import InputError, UsageError
from rdistill.io import iter_groups, iter_lines, iter_run_queries, sort_query, source_name

if TYPE_CHECKING:
    from rdistill.docstore import DocStore

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
    for qid, ranking in iter_run_queries(source):
        yield qid, [d for d, _ in sort_query(ranking)[:k]]


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


# ------------------------------------------------------------------------------------------------------ measure


def embed_missing(vectors: Embeddings, doc_ids: Iterable[str], model: str | None, corpus: str | DocStore | None,
                  device: str = "auto", batch_size: int = 64) -> None:
    """Embed, with the bi-encoder ``model``, the documents of ``doc_ids`` that ``vectors`` lacks (texts from
    ``corpus``), each once."""
    need = vectors.missing(doc_ids)
    if not need:
        return
    if model is None or corpus is None:
        raise UsageError(f"{len(need)} documents (e.g. {need[0]!r}) have no vector in --embeddings: give "
                         "--model and --corpus to embed them")
    from rdistill.docstore import DocStore
    from rdistill.models import BiEncoder

    store = corpus if isinstance(corpus, DocStore) else DocStore(corpus)
    texts = [store.text(d) for d in need]
    vectors.add(need, BiEncoder(model, device=device).encode(texts, batch_size, desc="embedding"))


class Locality(NamedTuple):
    """What :func:`measure` found: one row per query and input (diameters), one summary per input."""

    rows: list[dict[str, Any]]
    summaries: list[dict[str, Any]]


def measure(inputs: list[str], *, k: int = 100, alpha: float = DEFAULT_ALPHA, embeddings: str | None = None,
            model: str | None = None, corpus: str | None = None, coverage_against: str | None = None,
            test_k: int = 100, seed: int = 42, batch_size: int = 64, device: str = "auto") -> Locality:
    """Per-query robust diameters of each input's document pools (when ``embeddings``, an .npz of precomputed
    vectors, or ``model`` is given; documents the .npz lacks are embedded with ``model``), each input's Δ, and, with ``coverage_against`` (a test run),
    the coverage of each input's whole pool against that run's top ``test_k`` and a seeded random pool's."""
    diameters_wanted = model is not None or embeddings is not None
    if not diameters_wanted and coverage_against is None:
        raise UsageError("nothing to measure: give --model (or --embeddings) for diameters, or --coverage-against")
    if coverage_against is not None and corpus is None:
        raise UsageError("--coverage-against needs --corpus (the random pool is drawn from it)")
    pools = {name: list(query_pools(name, k)) for name in inputs}
    vectors = Embeddings(embeddings)
    from rdistill.docstore import DocStore

    store: DocStore | None = None  # one handle for the texts to embed and the random pool, opened when needed
    if diameters_wanted:
        need = vectors.missing(d for pool in pools.values() for _, docs in pool for d in docs)
        if need and model is not None and corpus is not None:
            store = DocStore(corpus)
        embed_missing(vectors, need, model, store if store is not None else corpus, device, batch_size)
    test_pool: set[str] = set()
    if coverage_against is not None:
        store = store if store is not None else DocStore(corpus)  # type: ignore[arg-type]
        test_pool = {d for _, docs in query_pools(coverage_against, test_k) for d in docs}

    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for name in inputs:
        record: dict[str, Any] = {"input": name} if len(inputs) > 1 else {}
        diameters: list[float] = []
        if diameters_wanted:
            for qid, docs in pools[name]:
                if len(docs) < 2:
                    continue
                value = robust_diameter(vectors.get(docs), alpha)
                diameters.append(value)
                rows.append({**record, "query_id": qid, "diameter": value, "n": len(docs), "alpha": alpha})
        info: dict[str, Any] = {"input": name, "queries": len(pools[name])}
        if diameters:
            info.update(alpha=alpha, delta=dataset_delta(diameters), delta_quantile=DATASET_QUANTILE,
                        mean_diameter=float(np.mean(diameters)), median_diameter=float(np.median(diameters)))
        if coverage_against is not None:
            train = {d for _, docs in pools[name] for d in docs}
            assert store is not None
            rand = random_pool(len(train), len(store), store.id_at, seed)
            info["coverage"] = coverage(train, test_pool, len(store), rand).to_json()
        summaries.append(info)
    return Locality(rows, summaries)
