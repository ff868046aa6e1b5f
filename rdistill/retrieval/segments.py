"""A term-major index built in bounded memory: postings spill to sorted segments on disk, then merge block by block.

While the corpus streams by, postings (term id, document, tf) fill a segment held as int32 arrays; when the
segment reaches its capacity it is sorted by term (stably, so documents stay in corpus order) and written to disk
as (document, tf) records plus each term's count. The capacity follows the ``--memory`` budget, recomputed at each
flush from what the process holds then (the vocabulary and document lengths grow with the corpus), so peak memory
is set by the budget, not by the corpus.

The merge walks the vocabulary in blocks of terms whose postings fit the budget: for each block it reads, from
every segment in corpus order, the contiguous run of records for those terms, scatters them to their final places
(segment after segment within a term, hence corpus order), asks for their weights and appends them to the output
arrays with plain file writes (a memory-mapped output would count its pages as resident). The result is the same
term-major matrix an in-memory stable sort of all postings gives, posting for posting.
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rdistill.errors import UsageError

DEFAULT_MEMORY = "1G"
BUFFER = 1 << 18  # postings gathered in Python lists before they become int32 arrays
FILL_BYTES = 32  # per posting at a flush: term, doc, tf (12), the int64 sort order (8), sort scratch and one record
MERGE_BYTES = 48  # per posting of a merge block: doc and tf (8), destinations (16), term ids (8), weights (8), slack
MIN_POSTINGS = 1 << 20  # a floor, so a budget set too close to the process's size still makes progress
RECORD = np.dtype([("doc", "<i4"), ("tf", "<i4")])
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


def parse_memory(text: str) -> int:
    """``1G``, ``1.5GB``, ``512M``, ``800MiB`` or plain bytes -> bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise UsageError(f"--memory {text!r}: expected a size such as 1G, 1.5G or 512M")
    value = float(match.group(1)) * 1024 ** "BKMGT".index((match.group(2) or "B").upper())
    if value < 64 * 2**20:
        raise UsageError(f"--memory {text!r}: at least 64M")
    return int(value)


def resident_bytes() -> int:
    """The process's resident memory now (Linux /proc), else its peak so far."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def capacity(budget: int, per_posting: int) -> int:
    """Postings that fit in what the budget leaves, with a margin for the allocator and the interpreter."""
    free = budget - resident_bytes()
    return max(MIN_POSTINGS, int(0.6 * free) // per_posting)


class Segment:
    """One sorted segment on disk: ``NAME.postings`` (RECORD, term-major) and ``NAME.counts`` (int32 per term)."""

    def __init__(self, folder: Path, number: int, n_terms: int) -> None:
        self.postings = folder / f"segment{number:05d}.postings"
        self.counts_path = folder / f"segment{number:05d}.counts"
        self.n_terms = n_terms  # the vocabulary's size when it was written; later terms have no postings here

    def counts(self, start: int, stop: int) -> np.ndarray:
        """Postings per term for terms [start, stop), as int64."""
        out = np.zeros(stop - start, dtype=np.int64)
        stop_here = min(stop, self.n_terms)
        if start < stop_here:
            part = np.fromfile(self.counts_path, dtype="<i4", count=stop_here - start, offset=4 * start)
            out[: len(part)] = part
        return out


class SegmentWriter:
    """Collects postings document by document and spills them to sorted segments under ``folder``."""

    def __init__(self, folder: Path, budget: int, postings: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.budget = budget
        self.fixed = postings  # a set segment size instead of the budget's (tests use it to force many segments)
        self.capacity = postings or capacity(budget, FILL_BYTES)
        self.segments: list[Segment] = []
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.held = 0
        self.terms: list[int] = []
        self.docs: list[int] = []
        self.tfs: list[int] = []
        self.n_postings = 0

    def add(self, doc: int, term_ids: list[int], tfs: list[int]) -> None:
        self.terms.extend(term_ids)
        self.tfs.extend(tfs)
        self.docs.extend([doc] * len(term_ids))
        if len(self.terms) >= BUFFER:
            self._pack()

    def _pack(self) -> None:
        if self.terms:
            self.parts.append((np.array(self.terms, dtype=np.int32), np.array(self.docs, dtype=np.int32),
                               np.array(self.tfs, dtype=np.int32)))
            self.held += len(self.terms)
            self.terms, self.docs, self.tfs = [], [], []

    def maybe_flush(self, n_terms: int) -> None:
        """Spill the segment when it is full; called between documents."""
        if self.held + len(self.terms) >= self.capacity:
            self.flush(n_terms)

    def flush(self, n_terms: int) -> None:
        self._pack()
        if not self.parts:
            return
        term = np.concatenate([p[0] for p in self.parts])
        doc = np.concatenate([p[1] for p in self.parts])
        tf = np.concatenate([p[2] for p in self.parts])
        self.parts, self.held = [], 0
        segment = Segment(self.folder, len(self.segments), n_terms)
        np.bincount(term, minlength=n_terms).astype("<i4").tofile(segment.counts_path)
        order = np.argsort(term, kind="stable")  # term-major, documents in corpus order within a term
        del term
        records = np.empty(len(order), dtype=RECORD)
        records["doc"] = doc[order]
        del doc
        records["tf"] = tf[order]
        del tf, order
        records.tofile(segment.postings)
        self.n_postings += len(records)
        del records
        self.segments.append(segment)
        self.capacity = self.fixed or capacity(self.budget, FILL_BYTES)  # the vocabulary and lengths grew


def write_npy_header(fh: BinaryIO, dtype: str, length: int) -> None:
    """The .npy header of a 1-d array, so its data can follow in pieces (np.load reads it, memory-mapped too)."""
    np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": (length,)})


WeightFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (term ids, tf, doc) -> float64 weights


def merge(segments: list[Segment], df: np.ndarray, data_path: Path, indices_path: Path, weigh: WeightFn,
          budget: int, block: int | None = None) -> None:
    """Write the term-major weights (float64) and document indices (int32) of all segments as two .npy files,
    ``block`` postings at a time (default: what the budget leaves)."""
    n_terms = len(df)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    total = int(indptr[-1])
    block = block or capacity(budget, MERGE_BYTES)
    readers = [open(s.postings, "rb") for s in segments]  # noqa: SIM115 - closed below
    try:
        with open(data_path, "wb") as data_fh, open(indices_path, "wb") as indices_fh:
            write_npy_header(data_fh, "<f8", total)
            write_npy_header(indices_fh, "<i4", total)
            start = 0
            while start < n_terms:
                # The longest run of terms whose postings fit the block (always at least one term).
                stop = int(np.searchsorted(indptr, indptr[start] + block, side="right")) - 1
                stop = min(max(stop, start + 1), n_terms)
                base = int(indptr[start])
                size = int(indptr[stop]) - base
                docs = np.empty(size, dtype=np.int32)
                tfs = np.empty(size, dtype=np.int32)
                fill = indptr[start:stop] - base  # each term's next free slot in the block
                for segment, reader in zip(segments, readers, strict=True):
                    counts = segment.counts(start, stop)
                    m = int(counts.sum())
                    if m == 0:
                        continue
                    records = np.fromfile(reader, dtype=RECORD, count=m)
                    dest = np.repeat(fill - (np.cumsum(counts) - counts), counts)
                    dest += np.arange(m)
                    docs[dest] = records["doc"]
                    tfs[dest] = records["tf"]
                    fill += counts
                    del records, dest
                term = np.repeat(np.arange(start, stop), df[start:stop])
                for lo in range(0, size, BUFFER):
                    hi = lo + BUFFER
                    data_fh.write(weigh(term[lo:hi], tfs[lo:hi], docs[lo:hi]).astype("<f8", copy=False).tobytes())
                indices_fh.write(docs.astype("<i4", copy=False).tobytes())
                del docs, tfs, term
                start = stop
    finally:
        for reader in readers:
            reader.close()
