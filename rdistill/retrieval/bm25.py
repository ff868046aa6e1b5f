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
same order, so the scores are bit-identical to BM25Okapi's for the same tokens. The build streams the corpus and
keeps postings in flat numpy arrays (grown in chunks), never a Python object per document.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.errors import InputError, UsageError
from rdistill.retrieval.store import (
    DocIds,
    DocIdWriter,
    begin_build,
    check_reuse,
    corpus_fingerprint,
    finish_build,
)
from rdistill.retrieval.tokenize import Tokenizer, TokenizerSettings

VARIANTS = ("okapi", "lucene")
CHUNK = 1 << 20  # postings buffered in Python lists before they go into numpy arrays


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


def build_bm25(corpus: str, folder: Path, params: BM25Params, show_progress: bool = True) -> None:
    """Tokenise ``corpus`` once and write the index to ``folder`` (replacing it atomically)."""
    import bm25s

    from rdistill.data import iter_corpus
    from rdistill.progress import progress

    tokenize = Tokenizer(params.tokenizer)
    tmp = begin_build(folder)
    ids = DocIdWriter(tmp)
    vocab: dict[str, int] = {}
    terms, docs, tfs, lengths = _Growing(np.int32), _Growing(np.int32), _Growing(np.int32), _Growing(np.int64)
    # The corpus is streamed, so the bar counts documents without a total.
    bar = progress(None, "indexing (bm25)", "doc") if show_progress else None
    for n, doc in enumerate(iter_corpus(corpus)):
        ids.add(doc.doc_id)
        tokens = tokenize(doc.full_text)
        counts = Counter(tokens)  # first-seen order, which fixes term ids in the order rank_bm25 meets terms
        terms.extend(vocab.setdefault(token, len(vocab)) for token in counts)
        tfs.extend(counts.values())
        docs.extend([n] * len(counts))
        lengths.extend((len(tokens),))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    ids.close()
    n_docs = ids.count
    if n_docs == 0:
        raise InputError(corpus, None, "empty corpus: no documents")
    term, doc, tf, dl = terms.array(), docs.array(), tfs.array(), lengths.array()  # type: ignore[assignment]
    n_postings = len(term)
    df = np.bincount(term, minlength=len(vocab))
    avgdl = int(dl.sum()) / n_docs
    idf = idf_okapi(df, n_docs, params.epsilon) if params.variant == "okapi" else idf_lucene(df, n_docs)
    order = np.argsort(term, kind="stable")  # term-major; documents stay in corpus order within a term
    indices = doc[order]
    data = np.empty(n_postings, dtype=np.float64)
    # Weights are computed in sorted order, a block at a time, so the build's peak memory stays near the
    # postings themselves (~30 bytes each) instead of a dozen full-size temporaries.
    for start in range(0, n_postings, CHUNK):
        o = order[start:start + CHUNK]
        data[start:start + CHUNK] = weights(params, idf[term[o]], tf[o], dl[doc[o]], avgdl)
    del term, doc, tf, order
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    engine = bm25s.BM25(k1=params.k1, b=params.b, method="lucene" if params.variant == "lucene" else "robertson",
                        dtype="float64", int_dtype="int32")
    engine.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
    engine.vocab_dict = vocab
    engine.nonoccurrence_array = None  # only BM25L and BM25+ use it
    engine.save(tmp / "bm25s", show_progress=False)
    meta = {"kind": "bm25", "build": build_key(corpus, params),
            "stats": {"documents": n_docs, "terms": len(vocab), "postings": n_postings, "avgdl": avgdl}}
    finish_build(tmp, folder, meta)


def build_key(corpus: str, params: BM25Params) -> dict[str, Any]:
    return {**corpus_fingerprint(corpus), **params.as_dict()}


class BM25Index:
    """A built index, memory-mapped: ``scores(tokens)`` for every document, ``search(text, k)`` for a ranking."""

    def __init__(self, folder: Path, params: BM25Params) -> None:
        import bm25s

        self.folder = folder
        self.params = params
        self.tokenize = Tokenizer(params.tokenizer)
        self.engine = bm25s.BM25.load(folder / "bm25s", mmap=True, show_progress=False)
        self.ids = DocIds(folder)

    @classmethod
    def open(cls, corpus: str, folder: Path, params: BM25Params, rebuild: bool = False,
             show_progress: bool = True) -> BM25Index:
        """Reuse the index in ``folder`` when it was built from this corpus with these settings; else build it."""
        if rebuild or not check_reuse(folder, build_key(corpus, params), "BM25"):
            build_bm25(corpus, folder, params, show_progress)
        return cls(folder, params)

    def token_ids(self, text: str) -> np.ndarray:
        """Query term ids, repeats kept (rank_bm25 counts a repeated query term each time); unknown terms dropped."""
        vocab = self.engine.vocab_dict
        return np.array([vocab[t] for t in self.tokenize(text) if t in vocab], dtype=np.int32)

    def scores(self, token_ids: np.ndarray) -> np.ndarray:
        """Every document's score (float64), 0 where no query term occurs."""
        return self.engine.get_scores_from_ids(token_ids)

    def matching(self, token_ids: np.ndarray) -> np.ndarray:
        """Indices of the documents holding at least one query term (a run lists only those, as Lucene does)."""
        indptr, indices = self.engine.scores["indptr"], self.engine.scores["indices"]
        hit = np.zeros(len(self.ids), dtype=bool)  # a mask, not a sort: linear in documents plus postings
        for t in np.unique(token_ids):
            hit[indices[indptr[t]:indptr[t + 1]]] = True
        return np.flatnonzero(hit)

    def search(self, text: str, k: int) -> dict[str, float]:
        from rdistill.retrieval.store import top_k

        token_ids = self.token_ids(text)
        if len(token_ids) == 0:
            return {}
        return top_k(self.scores(token_ids), self.matching(token_ids), self.ids, k)
