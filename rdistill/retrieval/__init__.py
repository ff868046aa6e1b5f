"""First-stage retrieval: BM25 (bm25.py) and dense bi-encoder search (dense.py) over on-disk indexes.

:func:`retrieve` is the loop a Python user calls: queries in, ``(query id, {doc id: score})`` out, in query order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from rdistill.progress import progress

if TYPE_CHECKING:
    from rdistill.retrieval.bm25 import BM25Index
    from rdistill.retrieval.dense import DenseIndex

# Dense queries are embedded and searched this many at a time: one faiss call per chunk, bounded memory.
DENSE_CHUNK = 1024


def retrieve(queries: Mapping[str, str], index: BM25Index | DenseIndex, k: int,
             batch_size: int = 64) -> Iterator[tuple[str, dict[str, float]]]:
    """The top ``k`` documents of ``index`` for each query (id -> text), as ``(query id, {doc id: score})``.

    A BM25 index answers query by query; a dense one embeds and searches chunks of :data:`DENSE_CHUNK` queries
    (``batch_size`` texts per forward pass). A progress bar goes to stderr on a terminal.
    """
    from rdistill.retrieval.dense import DenseIndex

    ids = list(queries)
    if isinstance(index, DenseIndex):
        bar = progress(len(ids), "retrieving (dense)", "query")
        for start in range(0, len(ids), DENSE_CHUNK):
            chunk = ids[start:start + DENSE_CHUNK]
            yield from zip(chunk, index.search([queries[q] for q in chunk], k, batch_size), strict=True)
            bar.update(len(chunk))
        bar.close()
        return
    bar = progress(len(ids), "retrieving (bm25)", "query")
    for qid in ids:
        yield qid, index.search(queries[qid], k)
        bar.update(1)
    bar.close()
