"""What BM25 and dense indexes share: the document-id store, the corpus fingerprint and the metadata check.

Document ids live in two flat files (``docids.bin``, the UTF-8 ids back to back, and ``docids.offsets.npy``),
memory-mapped on load, so a corpus of millions of documents costs no Python object per document; only the ids of
retrieved documents are ever decoded.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rdistill.errors import UsageError
from rdistill.io import sort_query

DOCIDS = "docids.bin"
OFFSETS = "docids.offsets.npy"
META = "meta.json"


class DocIdWriter:
    """Appends ids while the corpus streams by; ids and offsets both go straight to disk (nothing per document is
    kept in memory), and ``close`` turns the raw offsets into the .npy that :class:`DocIds` maps."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fh: BinaryIO = open(folder / DOCIDS, "wb")  # noqa: SIM115 - closed in close()
        self.raw: BinaryIO = open(folder / (OFFSETS + ".raw"), "wb")  # noqa: SIM115 - closed in close()
        self.pending: list[int] = [0]
        self.count = 0
        self.position = 0

    def add(self, doc_id: str) -> None:
        data = doc_id.encode("utf-8")
        self.fh.write(data)
        self.position += len(data)
        self.count += 1
        self.pending.append(self.position)
        if len(self.pending) >= 1 << 16:
            self._spill()

    def _spill(self) -> None:
        self.raw.write(np.array(self.pending, dtype="<i8").tobytes())
        self.pending = []

    def close(self) -> None:
        self.fh.close()
        self._spill()
        self.raw.close()
        raw = self.folder / (OFFSETS + ".raw")
        with open(self.folder / OFFSETS, "wb") as out, open(raw, "rb") as src:
            np.lib.format.write_array_header_1_0(out, {"descr": "<i8", "fortran_order": False,
                                                       "shape": (self.count + 1,)})
            shutil.copyfileobj(src, out, 1 << 20)
        raw.unlink()


# The fixed-width id table (see DocIds.table) is made when it takes at most this many bytes (4 per character, as
# numpy stores str): MS MARCO passage's 8.8 M ids of up to 7 characters take 246 MB; a corpus of long ids (URLs)
# keeps the gather instead.
TABLE_BYTES = 512 << 20


class DocIds:
    """Memory-mapped document ids: ``ids[i]`` decodes one id, ``ids.many(indices)`` several at once."""

    def __init__(self, folder: Path) -> None:
        # A plain ndarray view of the memory map: np.memmap's Python-level indexing costs microseconds.
        self.offsets = np.asarray(np.load(folder / OFFSETS, mmap_mode="r"))
        self.data: mmap.mmap | bytes = b""
        if (folder / DOCIDS).stat().st_size:
            with open(folder / DOCIDS, "rb") as fh:
                self.data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._table: np.ndarray | None = None
        self._table_tried = False

    def table(self) -> np.ndarray | None:
        """Every id in one fixed-width str array (numpy ``U<width>``), made on first use, or None when the ids
        are not all ASCII without NUL bytes (it is filled as bytes, and numpy strips trailing NULs) or the table
        would exceed :data:`TABLE_BYTES`. A search then gets its ids in two C loops (``table[indices].tolist()``):
        1,000 ids in 75 us against 250 us for the gather, about what indexing a Python list of ids costs (bm25s's
        way), at a sixth of that list's memory."""
        if self._table_tried:
            return self._table
        self._table_tried = True
        n = len(self)
        if n == 0:
            return None
        sizes = np.diff(self.offsets)
        width = max(int(sizes.max()), 1)
        raw = np.frombuffer(self.data, dtype=np.uint8)
        if 4 * n * width > TABLE_BYTES or (len(raw) and (int(raw.max()) >= 128 or int(raw.min()) == 0)):
            return None
        table = np.zeros(n, dtype=f"S{width}")
        cells = table.view(np.uint8).reshape(n, width)
        step = 1 << 20  # documents per slice: the index arrays below cost 16 bytes per id byte, so slice them
        for a in range(0, n, step):
            b = min(a + step, n)
            lengths = sizes[a:b]
            start, end = int(self.offsets[a]), int(self.offsets[b])
            rows = np.repeat(np.arange(a, b), lengths)
            cols = np.arange(end - start) - np.repeat(self.offsets[a:b] - start, lengths)
            cells[rows, cols] = raw[start:end]
        self._table = table.astype(str)  # ASCII bytes to str, once
        return self._table

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.data[int(self.offsets[i]):int(self.offsets[i + 1])].decode("utf-8")

    def many(self, indices: np.ndarray) -> list[str]:
        """Ids of several documents: from :meth:`table` when there is one; else in one gather, their bytes copied
        side by side, a newline after each (ids come from lines, so none holds one), decoded and split at once."""
        indices = np.asarray(indices, dtype=np.int64)
        table = self.table()
        if table is not None:
            return table[indices].tolist()  # type: ignore[no-any-return]
        if len(indices) < 32:  # too few for the vectorised gather to pay for its dozen numpy calls
            return [self[i] for i in indices.tolist()]
        starts = np.asarray(self.offsets[indices], dtype=np.int64)
        sizes = np.asarray(self.offsets[indices + 1], dtype=np.int64) - starts + 1  # + the newline
        ends = np.cumsum(sizes)
        where = np.repeat(starts - (ends - sizes), sizes) + np.arange(int(ends[-1]))
        raw = np.frombuffer(self.data, dtype=np.uint8)
        gathered = raw[np.minimum(where, len(raw) - 1)]
        gathered[ends - 1] = ord("\n")
        out = gathered.tobytes().decode("utf-8").split("\n")
        out.pop()  # after the last newline
        if len(out) != len(indices):  # an id with a newline after all: decode one by one
            return [self[int(i)] for i in indices]
        return out


def corpus_fingerprint(spec: str) -> dict[str, Any]:
    """Enough to notice that a corpus changed: resolved path, size and modification time (no full read)."""
    from rdistill.cache import file_identity
    from rdistill.data import corpus_file, is_irds

    if is_irds(spec):
        return {"corpus": spec}
    identity = file_identity(corpus_file(spec))
    return {"corpus": identity.path, "size": identity.size, "mtime_ns": identity.mtime_ns}


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def check_reuse(folder: Path, wanted: dict[str, Any], what: str) -> bool:
    """True when ``folder`` holds a finished index built with exactly ``wanted``; an error when it holds another.

    A folder without metadata is treated as absent (an interrupted build never renames its folder into place).
    """
    meta = read_meta(folder)
    if meta is None:
        return False
    built = meta.get("build", {})
    if built == wanted:
        return True
    if touched_not_changed(meta, wanted):
        # The corpus file was copied, re-synced or re-downloaded with the same bytes: the index is still its index.
        # Record the new time so the next check is cheap again (best effort: a read-only index still works).
        meta["build"] = wanted
        try:
            write_meta(folder, meta)
        except OSError:
            pass
        return True
    diffs = [f"{key}={built.get(key)!r} (asked {wanted.get(key)!r})" for key in sorted(set(built) | set(wanted))
             if built.get(key) != wanted.get(key)]
    raise UsageError(f"{folder}: this {what} index was built with other settings: {'; '.join(diffs)}. "
                     "Use --rebuild to replace it, or another --index folder")


def begin_build(folder: Path) -> Path:
    """A fresh hidden folder beside ``folder`` to build into; :func:`finish_build` renames it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def corpus_digest(path: str) -> str | None:
    """sha256 of a corpus file's bytes; None where there is no file to read (an ir_datasets id)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def touched_not_changed(meta: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when the index was built from this very file and only its modification time moved since, as its
    content digest shows. The fingerprint's mtime is what makes the usual check free; the digest is read only when
    the mtime alone differs."""
    built = meta.get("build")
    if not isinstance(built, dict):
        return False
    differs = {key for key in set(built) | set(wanted) if built.get(key) != wanted.get(key)}
    recorded = meta.get("corpus_sha256")
    return (differs == {"mtime_ns"} and isinstance(recorded, str) and isinstance(wanted.get("corpus"), str)
            and corpus_digest(wanted["corpus"]) == recorded)


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    tmp = folder / f".{META}.tmp{os.getpid()}"
    try:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, folder / META)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def finish_build(tmp: Path, folder: Path, meta: dict[str, Any]) -> None:
    build = meta.get("build", {})
    if "mtime_ns" in build and isinstance(build.get("corpus"), str):
        # What lets a touched but unchanged corpus keep its index (touched_not_changed): one more read of the
        # corpus, small beside building the index from it.
        digest = corpus_digest(build["corpus"])
        if digest is not None:
            meta["corpus_sha256"] = digest
    (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def best(candidates: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best candidates (document indices with their scores), plus every candidate tied with the k-th
    score, unordered.

    Keeping the boundary ties lets :func:`rdistill.io.format_run_query` cut at k in trec_eval's order (score,
    then docno descending), so the run does not depend on how a partial sort happened to order equal scores.
    """
    if len(candidates) > k:
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        candidates, values = candidates[keep], values[keep]
    return candidates, values


def trec_order(names: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The permutation putting documents in trec_eval's order: score descending, ties by docno descending.

    One float argsort, and string comparisons only inside runs of equal scores (about 95 of a scifact BM25 query's
    1 000 documents at k = 1000 tie with a neighbour), rather
    than a lexsort on the ids themselves, which compares strings for every pair and cost more than the search.
    """
    order = np.argsort(-values)  # quicksort, 3x a stable sort's speed: equal scores are ordered below anyway
    v = values[order]
    same = v[1:] == v[:-1]
    if same.any():
        tied = np.zeros(len(v), dtype=bool)
        tied[1:] = same
        tied[:-1] |= same
        pos = np.flatnonzero(tied)
        run = np.cumsum(np.r_[True, v[1:] != v[:-1]])[pos]  # which run of equal scores each tied one is in
        sub = order[pos]
        # Runs stay where they are (ascending run number); inside a run, docno descending.
        order[pos] = sub[np.lexsort((names[sub], -run))[::-1]]
    return order


def ranked_arrays(candidates: np.ndarray, values: np.ndarray, ids: DocIds,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best candidates' docnos and scores as arrays, in trec_eval's order: what bm25s returns (an
    array of ids), ranked as a run is. With the id table the docnos are a ``U<width>`` array gathered in one call;
    otherwise they are decoded one by one and sorted as :func:`rdistill.io.sort_query` sorts them."""
    table = ids.table()
    if table is None:
        pairs = sort_query(zip(ids.many(candidates), values.tolist(), strict=True))[:k]
        return np.array([d for d, _ in pairs], dtype=object), np.array([v for _, v in pairs], dtype=np.float64)
    names = table[np.asarray(candidates, dtype=np.int64)]
    order = trec_order(names, values)[:k]
    return names[order], values[order]


def ranked(candidates: np.ndarray, values: np.ndarray, ids: DocIds, k: int) -> dict[str, float]:
    """docno -> score for the ``k`` best candidates, inserted in trec_eval's order (score, then docno, both
    descending; :func:`ranked_arrays`), so a writer's sort (``io.sort_query``) finds one descending run, a linear
    pass."""
    names, scores = ranked_arrays(candidates, values, ids, k)
    return dict(zip(names.tolist(), scores.tolist(), strict=True))


class MissingDocument(UsageError):
    """A document that an index lacks; ``position`` is its place in the ids asked for, so a caller (score-teacher's
    chunks) can name the run line it came from."""

    def __init__(self, doc_id: str, position: int) -> None:
        super().__init__(f"document {doc_id!r} is not in the corpus")
        self.doc_id = doc_id
        self.position = position


class IdRows:
    """Document id -> embedding row through :class:`rdistill.docstore.HashIndex`, its table saved memory-mapped."""

    def __init__(self, folder: Path, ids: Any) -> None:
        from rdistill.docstore import HashIndex, id_hash

        self.ids = ids
        path = folder / "idhash.npy"
        if not path.exists() or (folder / "meta.json").stat().st_mtime_ns > path.stat().st_mtime_ns:
            h = np.fromiter((id_hash(ids[i]) for i in range(len(ids))), dtype=np.uint64, count=len(ids))
            tmp = folder / f".idhash.tmp{os.getpid()}.npy"
            np.save(tmp, np.stack(HashIndex.sorted_table(h, np.arange(len(ids), dtype=np.uint64))))
            os.replace(tmp, path)
        table = np.load(path, mmap_mode="r")
        self.lookup = HashIndex(table[0], table[1])

    def rows(self, doc_ids: list[str]) -> np.ndarray:
        out = np.empty(len(doc_ids), dtype=np.int64)
        for n, doc_id in enumerate(doc_ids):
            for row in self.lookup.candidates(doc_id):
                if self.ids[row] == doc_id:
                    out[n] = row
                    break
            else:
                raise MissingDocument(doc_id, n)
        return out
