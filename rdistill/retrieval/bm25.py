"""BM25 over a corpus, indexed once on disk and searched memory-mapped.

Variants (``variant``):

- ``okapi`` (default): rank_bm25's ``BM25Okapi``, the reference the tests hold us to, score for score.
  idf = ln(N - df + 0.5) - ln(df + 0.5); a negative idf is replaced by ``epsilon * mean idf`` (epsilon 0.25,
  the mean taken over every term before the floor); term weight idf * tf (k1 + 1) / (tf + k1 (1 - b + b dl/avgdl)).
  bm25s's "robertson" differs (no floor, and no (k1 + 1) factor), so idf and weights are computed here.
- ``lucene``: the BM25 of Lucene >= 8 that pyserini uses: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), weight
  idf * tf / (tf + k1 (1 - b + b dl/avgdl)), with exact document lengths (Lucene stores them in one lossy byte).

Each (term, document) weight is precomputed in float64 into a term-major sparse matrix saved in bm25s's format;
bm25s loads it memory-mapped and sums a query's columns. The arithmetic follows rank_bm25's expression in the
same order, so the scores are bit-identical to BM25Okapi's for the same tokens. The build streams the corpus into
sorted segments on disk and merges them (:mod:`rdistill.retrieval.segments`), so its memory is set by a budget,
not by the corpus; only the vocabulary and one int32 length per document stay in memory throughout.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rdistill.errors import InputError, UsageError
from rdistill.retrieval.segments import DEFAULT_MEMORY, SegmentWriter, merge, parse_memory
from rdistill.retrieval.store import (
    DocIds,
    DocIdWriter,
    begin_build,
    check_reuse,
    corpus_fingerprint,
    finish_build,
    ranked,
)
from rdistill.retrieval.tokenize import Tokenizer, TokenizerSettings

VARIANTS = ("okapi", "lucene")
CHUNK = 1 << 20  # values buffered in a Python list before they go into a numpy array


@dataclass(frozen=True)
class BM25Params:
    variant: str = "okapi"
    k1: float = 1.2
    b: float = 0.75
    epsilon: float = 0.25  # okapi's idf floor factor (rank_bm25's default)
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise UsageError(f"--bm25-variant {self.variant!r}: expected one of {', '.join(VARIANTS)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Growing:
    """An append-only numpy array filled from a Python buffer in chunks (amortised, no per-item objects kept)."""

    def __init__(self, dtype: type) -> None:
        self.dtype = dtype
        self.parts: list[np.ndarray] = []
        self.buffer: list[int] = []

    def extend(self, values: Any) -> None:
        self.buffer.extend(values)
        if len(self.buffer) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.parts.append(np.array(self.buffer, dtype=self.dtype))
            self.buffer = []

    def array(self) -> np.ndarray:
        self.flush()
        out = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=self.dtype)
        self.parts = []
        return out


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float) -> np.ndarray:
    """rank_bm25's BM25Okapi idf, term by term with math.log and a running sum in first-seen order, as it does."""
    idf = np.empty(len(df), dtype=np.float64)
    total = 0.0
    for t, freq in enumerate(df.tolist()):
        value = math.log(n_docs - freq + 0.5) - math.log(freq + 0.5)
        idf[t] = value
        total += value
    if len(df):
        idf[idf < 0] = epsilon * (total / len(df))
    return idf


def idf_lucene(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def weights(params: BM25Params, idf: np.ndarray, tf: np.ndarray, dl: np.ndarray, avgdl: float) -> np.ndarray:
    """Each posting's term weight. okapi is rank_bm25's expression operation for operation, so the float64
    results are the same bits as BM25Okapi's."""
    k1, b = params.k1, params.b
    if params.variant == "okapi":
        return idf * (tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)))
    return idf * (tf / (tf + k1 * (1 - b + b * dl / avgdl)))


def build_bm25(corpus: str, folder: Path, params: BM25Params, show_progress: bool = True,
               memory: int | str = DEFAULT_MEMORY, segment_postings: int | None = None) -> None:
    """Tokenise ``corpus`` once and write the index to ``folder`` (replacing it atomically), in about ``memory``
    bytes of resident memory (``1G``, ``512M``) whatever the corpus's size: see :mod:`rdistill.retrieval.segments`.
    ``segment_postings`` fixes the segment and merge-block size instead (the index is the same either way).
    """
    from rdistill.data import check_unique_ids, is_irds, iter_corpus
    from rdistill.docstore import id_hash
    from rdistill.progress import progress

    budget = parse_memory(memory) if isinstance(memory, str) else memory
    tokenize = Tokenizer(params.tokenizer)
    tmp = begin_build(folder)
    ids = DocIdWriter(tmp)
    vocab: dict[str, int] = {}
    spill = SegmentWriter(tmp / "segments", budget, segment_postings)
    lengths = _Growing(np.int32)
    # The corpus is streamed, so the bar counts documents without a total.
    bar = progress(None, "indexing (bm25)", "doc") if show_progress else None
    id_hashes = _Growing(np.uint64)
    for n, doc in enumerate(iter_corpus(corpus)):
        ids.add(doc.doc_id)
        id_hashes.extend((id_hash(doc.doc_id),))
        tokens = tokenize(doc.full_text)
        counts = Counter(tokens)  # first-seen order, which fixes term ids in the order rank_bm25 meets terms
        try:
            term_ids = list(map(vocab.__getitem__, counts))  # in C; most documents bring no new term
        except KeyError:
            term_ids = [vocab.setdefault(token, len(vocab)) for token in counts]
        spill.add(n, term_ids, list(counts.values()))
        lengths.extend((len(tokens),))
        spill.maybe_flush(len(vocab))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    ids.close()
    n_docs = ids.count
    if n_docs == 0:
        raise InputError(corpus, None, "empty corpus: no documents")
    if not is_irds(corpus):
        check_unique_ids(corpus, id_hashes.array())  # a run would list the document twice per query
    spill.flush(len(vocab))
    df = np.zeros(len(vocab), dtype=np.int64)
    for segment in spill.segments:
        df += segment.counts(0, len(vocab))
    dl = lengths.array()
    avgdl = int(dl.sum(dtype=np.int64)) / n_docs
    idf = idf_okapi(df, n_docs, params.epsilon) if params.variant == "okapi" else idf_lucene(df, n_docs)

    def weigh(term: np.ndarray, tf: np.ndarray, doc: np.ndarray) -> np.ndarray:
        return weights(params, idf[term], tf, dl[doc], avgdl)

    out = tmp / "bm25s"
    out.mkdir()
    merge(spill.segments, df, out / "data.csc.index.npy", out / "indices.csc.index.npy", weigh, budget,
          segment_postings)
    shutil.rmtree(spill.folder)
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    np.save(out / "indptr.csc.index.npy", indptr)
    write_bm25s_meta(out, params, vocab, n_docs)
    meta = {"kind": "bm25", "build": build_key(corpus, params),
            "stats": {"documents": n_docs, "terms": len(vocab), "postings": spill.n_postings, "avgdl": avgdl,
                      "segments": len(spill.segments)}}
    finish_build(tmp, folder, meta)


def write_bm25s_meta(out: Path, params: BM25Params, vocab: dict[str, int], n_docs: int) -> None:
    """bm25s's vocabulary and parameter files, as ``bm25s.BM25.save`` writes them, so ``BM25.load`` reads the
    folder (the three arrays are written by :func:`rdistill.retrieval.segments.merge` and the build)."""
    import bm25s
    import orjson

    engine = bm25s.BM25(k1=params.k1, b=params.b, method="lucene" if params.variant == "lucene" else "robertson",
                        dtype="float64", int_dtype="int32")
    (out / "vocab.index.json").write_bytes(orjson.dumps(vocab))
    settings = {"k1": engine.k1, "b": engine.b, "delta": engine.delta, "method": engine.method,
                "idf_method": engine.idf_method, "dtype": engine.dtype, "int_dtype": engine.int_dtype,
                "num_docs": n_docs, "version": bm25s.__version__, "backend": engine.backend}
    (out / "params.index.json").write_text(json.dumps(settings, indent=4))


def build_key(corpus: str, params: BM25Params) -> dict[str, Any]:
    return {**corpus_fingerprint(corpus), **params.as_dict()}


class BM25Index:
    """A built index, memory-mapped: ``scores(tokens)`` for every document, ``search(text, k)`` for a ranking."""

    def __init__(self, folder: Path, params: BM25Params) -> None:
        self.folder = folder
        self.params = params
        self.tokenize = Tokenizer(params.tokenizer)
        # bm25s's files, read directly rather than through bm25s.BM25.load: importing bm25s imports numba and
        # scipy.sparse (~0.2 s, a fifth of a small retrieve's wall time) for the three arrays and the vocabulary.
        files = folder / "bm25s"
        file = files / "vocab.index.json"
        try:
            self.vocab: dict[str, int] = orjson.loads(file.read_bytes())
            # Plain ndarray views of the memory-mapped arrays: np.memmap's Python-level indexing costs microseconds.
            arrays = []
            for name in ("indptr", "indices", "data"):
                file = files / f"{name}.csc.index.npy"
                arrays.append(np.asarray(np.load(file, mmap_mode="r", allow_pickle=False)))
        except ValueError as exc:  # orjson's JSONDecodeError, or numpy on a file that is not an .npy array
            raise InputError(file, None, f"not a readable BM25 index file ({exc}); rebuild it with --rebuild") from None
        self.indptr, self.indices, self.data = arrays
        self.ids = DocIds(folder)

    @classmethod
    def open(cls, corpus: str, folder: Path, params: BM25Params, rebuild: bool = False,
             show_progress: bool = True, memory: int | str = DEFAULT_MEMORY) -> BM25Index:
        """Reuse the index in ``folder`` when it was built from this corpus with these settings; else build it
        (in about ``memory`` bytes: the budget changes how the build spills to disk, never the index)."""
        if rebuild or not check_reuse(folder, build_key(corpus, params), "BM25"):
            build_bm25(corpus, folder, params, show_progress, memory)
        return cls(folder, params)

    def token_ids(self, text: str) -> np.ndarray:
        """Query term ids, repeats kept (rank_bm25 counts a repeated query term each time); unknown terms dropped."""
        vocab = self.vocab
        return np.array([vocab[t] for t in self.tokenize(text) if t in vocab], dtype=np.int32)

    def scores(self, token_ids: np.ndarray) -> np.ndarray:
        """Every document's score (float64), 0 where no query term occurs: as bm25s's get_scores_from_ids."""
        out = np.zeros(len(self.ids), dtype=np.float64)
        if len(token_ids):
            docs, values = self.hits(token_ids)
            out[docs] = values
        return out

    def hits(self, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The documents holding at least one query term (a run lists only those, as Lucene does), ascending, and
        their scores: bit-identical to ``scores(token_ids)[docs]``, summed term by term in query order as bm25s
        and rank_bm25 sum them, in a fixed handful of numpy calls whatever the number of query terms."""
        indptr, indices, data = self.indptr, self.indices, self.data
        spans = list(zip(indptr[token_ids].tolist(), indptr[token_ids + 1].tolist(), strict=True))
        postings = np.concatenate([indices[a:b] for a, b in spans])
        # bincount adds each weight to its document in input order, i.e. term by term, from 0.0 as bm25s does.
        weights = np.concatenate([data[a:b] for a, b in spans])
        n_docs = len(self.ids)
        if len(postings) > n_docs // 8:  # many postings: two passes over a full-length array beat a sort
            found = np.flatnonzero(np.bincount(postings, minlength=n_docs))
            return found, np.bincount(postings, weights=weights, minlength=n_docs)[found]
        found, slot = np.unique(postings, return_inverse=True)
        return found, np.bincount(slot, weights=weights, minlength=len(found))

    def best(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` matching documents (indices) and their scores, with the documents tied at the k-th score,
        unordered: what bm25s's retrieve returns, before document ids are looked up."""
        from rdistill.retrieval.store import best

        token_ids = self.token_ids(text)
        if len(token_ids) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return best(*self.hits(token_ids), k)

    def ranking(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` as two arrays, docnos and scores, in trec_eval's order: bm25s's output with ids, ranked
        as a run is (see :func:`rdistill.retrieval.store.ranked_arrays`)."""
        from rdistill.retrieval.store import ranked_arrays

        return ranked_arrays(*self.best(text, k), self.ids, k)

    def search(self, text: str, k: int) -> dict[str, float]:
        """The top ``k`` as docno -> score, in trec_eval's order (see :func:`rdistill.retrieval.store.ranked`)."""
        return ranked(*self.best(text, k), self.ids, k)
