"""Documents by id in bounded memory: an on-disk offset index over the corpus file.

The index holds, for every document, a 64-bit hash of its id and the byte offset of its line, sorted by hash and
loaded memory-mapped (16 bytes a document: 140 MB for MS MARCO's 8.8 M passages, paged in on demand). A lookup is
a binary search, one ``pread`` and one JSON parse; the id read back is compared, so hash collisions are harmless.
It is built once per corpus file (keyed by path, size and modification time) in rdistill's cache folder, because
corpora such as ../shared/data are often read-only. A gzipped corpus is decompressed into the cache first, since
gzip cannot seek.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rdistill import cache
from rdistill.cache import cache_root as cache_root  # re-exported: its home was here
from rdistill.data import corpus_file, irds_dataset, is_irds, iter_corpus, parse_document_line
from rdistill.errors import InputError, UsageError
from rdistill.io import dumps, open_binary, write_text_atomic
from rdistill.schema import Document

INDEX_VERSION = 1


def id_hash(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")


class HashIndex:
    """Ids found by their sorted 64-bit hashes (no dict of every id; the arrays can be memory-mapped), each with a
    value: a line offset for :class:`DocStore`, an embedding row for the teacher. The one id lookup of both."""

    def __init__(self, hashes: np.ndarray, values: np.ndarray) -> None:
        self.hashes = hashes
        self.values = values

    @staticmethod
    def sorted_table(hashes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hashes, values) ordered by hash, stably, as the lookup needs them."""
        order = np.argsort(hashes, kind="stable")
        return hashes[order], values[order]

    def candidates(self, doc_id: str) -> Iterator[int]:
        """The values of every id whose hash is ``doc_id``'s (almost always one): the caller checks which is it."""
        h = np.uint64(id_hash(doc_id))
        i = int(np.searchsorted(self.hashes, h, side="left"))
        n = self.hashes.shape[0]
        while i < n and self.hashes[i] == h:
            yield int(self.values[i])
            i += 1


def file_key(path: Path) -> str:
    """Identifies one version of one file: a changed corpus gets a new index, never a stale one."""
    identity = cache.file_identity(path)
    return cache.short_hash(f"{identity.path}|{identity.size}|{identity.mtime_ns}|v{INDEX_VERSION}")


class DocStore:
    """Random access to a corpus's documents by id; iteration streams them in file order."""

    def __init__(self, spec: str, cache_dir: str | Path | None = None) -> None:
        self.spec = str(spec)
        self._irds = None
        if is_irds(self.spec):
            self._irds = irds_dataset(self.spec).docs_store()
            self._count = irds_dataset(self.spec).docs_count() or 0
            return
        source = corpus_file(self.spec)
        folder = Path(cache_dir) if cache_dir else cache.cache_dir("docstore", file_key(source))
        self._folder = folder
        if not (folder / "meta.json").exists():
            _build(source, folder)
        self.path = folder / "corpus.data" if (folder / "corpus.data").exists() else source
        self._hashes = np.load(folder / "hashes.npy", mmap_mode="r")
        self._offsets = np.load(folder / "offsets.npy", mmap_mode="r")
        self._lookup = HashIndex(self._hashes, self._offsets)
        self._count = int(self._hashes.shape[0])
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self._count

    @property
    def positional(self) -> bool:
        """Whether documents can be had by position (:meth:`id_at`): a corpus file yes, an ir_datasets id no."""
        return self._irds is None

    def __iter__(self) -> Iterator[Document]:
        return iter_corpus(self.spec)

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None  # type: ignore[assignment]

    def __del__(self) -> None:
        self.close()

    def _read_line(self, offset: int) -> bytes:
        chunk = b""
        size = 4096
        while True:
            part = os.pread(self._fd, size, offset + len(chunk))
            chunk += part
            end = chunk.find(b"\n")
            if end >= 0:
                return chunk[:end]
            if not part:
                return chunk
            size *= 2

    def find(self, doc_id: str) -> Document | None:
        if self._irds is not None:
            try:
                row = self._irds.get(doc_id)
            except KeyError:
                return None
            return Document(row.doc_id, getattr(row, "text", "") or row.default_text(), getattr(row, "title", "") or "")
        for offset in self._lookup.candidates(doc_id):
            doc = parse_document_line(self._read_line(offset), str(self.path), 0)
            if doc is not None and doc.doc_id == doc_id:
                return doc
        return None

    def id_at(self, index: int) -> str:
        """The id of the ``index``-th document in the index's own order (by id hash, so independent of the corpus
        file's order): uniform sampling from the corpus draws an index here and needs no id list in memory."""
        if self._irds is not None:
            raise UsageError(f"{self.spec}: documents by position need a corpus file, not an ir_datasets id")
        doc = parse_document_line(self._read_line(int(self._offsets[index])), str(self.path), 0)
        return doc.doc_id if doc is not None else ""

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.find(doc_id) is not None

    def get(self, doc_id: str) -> Document:
        doc = self.find(doc_id)
        if doc is None:
            raise UsageError(f"document {doc_id!r} is not in the corpus {self.spec}")
        return doc

    def text(self, doc_id: str) -> str:
        return self.get(doc_id).full_text


def _build(source: Path, folder: Path) -> None:
    """Scan the corpus once, recording each line's offset under its id's hash; refuse duplicate ids."""
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data_path = source
    # Opened once, through the one input opener: a gzipped corpus is decompressed to a file the index can seek in.
    with open_binary(source) as src:
        if isinstance(src, gzip.GzipFile):
            data_path = tmp / "corpus.data"
            try:
                with open(data_path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (EOFError, OSError) as exc:
                raise InputError(str(source), None, f"truncated or corrupt gzip data ({exc})") from None
    hashes: list[int] = []
    offsets: list[int] = []
    name = str(source)
    with open(data_path, "rb") as fh:
        offset = 0
        for lineno, line in enumerate(fh, 1):
            try:
                doc = parse_document_line(line, name, lineno)
            except UnicodeDecodeError:
                raise InputError(name, lineno, "not valid UTF-8") from None
            if doc is not None:
                hashes.append(id_hash(doc.doc_id))
                offsets.append(offset)
            offset += len(line)
    if not hashes:
        raise InputError(name, None, "empty corpus: expected one document a line")
    h = np.asarray(hashes, dtype=np.uint64)
    o = np.asarray(offsets, dtype=np.uint64)
    del hashes, offsets
    h, o = HashIndex.sorted_table(h, o)
    _check_duplicates(h, o, data_path, name)
    np.save(tmp / "hashes.npy", h)
    np.save(tmp / "offsets.npy", o)
    write_text_atomic(tmp / "meta.json", dumps({"source": str(source.resolve()), "documents": int(h.shape[0]),
                                                "version": INDEX_VERSION}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)


def _upto(path: Path, offset: int) -> Iterator[bytes]:
    """The file's bytes before ``offset``, in blocks (to count the lines before a duplicate, on the error path)."""
    with open(path, "rb") as fh:
        left = offset
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:
                return
            left -= len(block)
            yield block


def _check_duplicates(h: np.ndarray, o: np.ndarray, data_path: Path, name: str) -> None:
    same = np.flatnonzero(h[1:] == h[:-1])
    if same.size == 0:
        return
    with open(data_path, "rb") as fh:
        def doc_at(offset: int) -> str:
            fh.seek(offset)
            doc = parse_document_line(fh.readline(), name, 0)
            return doc.doc_id if doc else ""
        for i in same:
            first, second = doc_at(int(o[i])), doc_at(int(o[i + 1]))
            if first == second:
                line = int(o[i + 1]) and sum(fh_line.count(b"\n") for fh_line in _upto(data_path, int(o[i + 1]))) + 1
                raise InputError(name, line, f"document id {first!r} appears more than once in the corpus")
