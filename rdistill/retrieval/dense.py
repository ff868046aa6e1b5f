"""Dense retrieval with any Hugging Face bi-encoder: document embeddings computed once, searched with faiss.

The index folder keeps the embeddings as a float32 ``embeddings.npy`` (loaded memory-mapped) and, with
``approx``, a faiss HNSW graph (``hnsw.faiss``). Exact search is faiss ``IndexFlatIP`` over the embeddings in
blocks of ``BLOCK`` rows, so memory stays bounded however large the corpus; HNSW is for corpora where a scan per
query is too slow. Scores are inner products (cosine when the model normalises, as all-MiniLM-L6-v2 does).
Documents are encoded as BEIR does: title + " " + text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.errors import InputError
from rdistill.retrieval.store import (
    DocIds,
    DocIdWriter,
    IdRows,
    begin_build,
    check_reuse,
    corpus_fingerprint,
    finish_build,
)

BLOCK = 1 << 20  # rows per exact-search block: 1M x 384 float32 = 1.5 GB at most in faiss at once
ENCODE_CHUNK = 8192  # documents read from the corpus per encoding call
HNSW_M = 32


def build_key(corpus: str, encoder: Any, approx: bool) -> dict[str, Any]:
    # The graph is optional and added on demand, so `approx` is not part of what must match for reuse.
    del approx
    return {**corpus_fingerprint(corpus), **encoder.settings()}


def build_dense(corpus: str, folder: Path, encoder: Any, approx: bool, batch_size: int,
                show_progress: bool = True) -> None:
    from rdistill.data import check_unique_ids, is_irds, iter_corpus
    from rdistill.docstore import id_hash
    from rdistill.progress import progress

    # First pass counts documents so the embeddings can go straight into a memory-mapped .npy of the right shape,
    # and refuses an id listed twice (as BM25's build does) before any is encoded: a run would list it twice.
    hashes = np.fromiter((id_hash(doc.doc_id) for doc in iter_corpus(corpus)), dtype=np.uint64)
    n_docs = len(hashes)
    if n_docs == 0:
        raise InputError(corpus, None, "empty corpus: no documents")
    if not is_irds(corpus):
        check_unique_ids(corpus, hashes)
    del hashes
    tmp = begin_build(folder)
    ids = DocIdWriter(tmp)
    dim = int(encoder.model.config.hidden_size)
    emb = np.lib.format.open_memmap(tmp / "embeddings.npy", mode="w+", dtype=np.float32, shape=(n_docs, dim))
    bar = progress(n_docs, "encoding documents", "doc") if show_progress else None
    texts: list[str] = []
    done = 0

    def flush() -> None:
        nonlocal done
        emb[done:done + len(texts)] = encoder.encode(texts, batch_size=batch_size)
        done += len(texts)
        if bar is not None:
            bar.update(len(texts))
        texts.clear()

    for doc in iter_corpus(corpus):
        ids.add(doc.doc_id)
        texts.append(doc.full_text)
        if len(texts) >= ENCODE_CHUNK:
            flush()
    if texts:
        flush()
    if bar is not None:
        bar.close()
    ids.close()
    emb.flush()
    if approx:
        build_hnsw(tmp)
    meta = {"kind": "dense", "build": build_key(corpus, encoder, approx), "stats": {"documents": n_docs, "dim": dim}}
    finish_build(tmp, folder, meta)


def build_hnsw(folder: Path) -> None:
    import faiss

    emb = np.load(folder / "embeddings.npy", mmap_mode="r")
    index = faiss.IndexHNSWFlat(emb.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    for start in range(0, len(emb), BLOCK):
        index.add(np.ascontiguousarray(emb[start:start + BLOCK]))
    # Written beside and renamed: it may be added to a finished index later, which must never hold half a file.
    tmp = folder / f".hnsw.faiss.tmp{os.getpid()}"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, folder / "hnsw.faiss")


class DenseIndex:
    """Embeddings (and optionally an HNSW graph) in ``folder``, searched with the encoder's query embeddings."""

    def __init__(self, folder: Path, encoder: Any, approx: bool = False, ef_search: int = 256) -> None:
        self.folder = folder
        self.encoder = encoder
        self.ids = DocIds(folder)
        self.embeddings = np.load(folder / "embeddings.npy", mmap_mode="r")
        self.hnsw: Any = None
        if approx:
            import faiss

            if not (folder / "hnsw.faiss").exists():
                build_hnsw(folder)
            self.hnsw = faiss.read_index(str(folder / "hnsw.faiss"))
            self.hnsw.hnsw.efSearch = ef_search

    @classmethod
    def open(cls, corpus: str, folder: Path, encoder: Any, approx: bool = False, rebuild: bool = False,
             batch_size: int = 64, show_progress: bool = True, ef_search: int = 256) -> DenseIndex:
        if rebuild or not check_reuse(folder, build_key(corpus, encoder, approx), "dense"):
            build_dense(corpus, folder, encoder, approx, batch_size, show_progress)
        return cls(folder, encoder, approx, ef_search)

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, indices), each (n_queries, k'), best first; index -1 marks a missing hit."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self.embeddings))
        if self.hnsw is not None:
            self.hnsw.hnsw.efSearch = max(self.hnsw.hnsw.efSearch, k)
            return self.hnsw.search(queries, k)
        best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        best_i = np.zeros((len(queries), 0), dtype=np.int64)
        for start in range(0, len(self.embeddings), BLOCK):
            block = np.ascontiguousarray(self.embeddings[start:start + BLOCK])
            flat = faiss.IndexFlatIP(block.shape[1])
            flat.add(block)
            s, i = flat.search(queries, min(k, len(block)))
            best_s = np.concatenate([best_s, s], axis=1)
            best_i = np.concatenate([best_i, i + start], axis=1)
            if best_s.shape[1] > k:  # merge blocks: keep each query's k best so far
                keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
                best_s = np.take_along_axis(best_s, keep, 1)
                best_i = np.take_along_axis(best_i, keep, 1)
        return best_s, best_i

    def search(self, texts: list[str], k: int, batch_size: int = 64) -> list[dict[str, float]]:
        vectors = self.encoder.encode(texts, batch_size=batch_size)
        scores, indices = self.search_vectors(vectors, k)
        return [{self.ids[int(i)]: float(s) for s, i in zip(row_s, row_i, strict=True) if i >= 0}
                for row_s, row_i in zip(scores, indices, strict=True)]


def corpus_embeddings(corpus: str, encoder: Any, folder: str | None = None,
                      batch_size: int = 64) -> tuple[DenseIndex, IdRows]:
    """Every document of ``corpus`` embedded by ``encoder``, once: the dense index in ``folder`` (refused in one
    line when it was built by another model or settings), or in the cache under a key of the corpus and the
    encoder's settings, which a bi-encoder teacher and an asymmetric student of the same model share."""
    from rdistill.cache import cache_dir, short_hash
    from rdistill.errors import UsageError
    from rdistill.io import dumps

    if folder:
        index = DenseIndex.open(corpus, Path(folder), encoder, batch_size=batch_size)
        return index, IdRows(Path(folder), index.ids)
    # The cache entry is named by the corpus's path and size and the encoder's settings, not by its mtime: a corpus
    # copied or re-synced with the same bytes keeps its embeddings (check_reuse compares the recorded digest), and
    # one whose bytes changed at the same size is embedded again in place, as a cache should, never refused.
    wanted = build_key(corpus, encoder, False)
    path = cache_dir("teacher-embeddings", short_hash(dumps({k: v for k, v in wanted.items() if k != "mtime_ns"})))
    try:
        reusable = check_reuse(path, wanted, "dense")
    except UsageError:  # built from other bytes of the same file
        reusable = False
    if not reusable:
        build_dense(corpus, path, encoder, False, batch_size)
    index = DenseIndex(path, encoder)
    return index, IdRows(path, index.ids)
