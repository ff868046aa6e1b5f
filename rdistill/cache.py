"""rdistill's cache: where it lives, its folders by kind, and the one identity of a file that keys them.

A cached thing is rebuilt when what it was made from changes; "changed" is judged by :func:`file_identity` (the
resolved path, size and modification time), never by hashing gigabytes. Every folder under the cache is named here
(:data:`CACHES`), so that clearing one kind, or finding what fills the disk, needs one look.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

# The cache's folders by kind: what each holds and who writes it.
CACHES: dict[str, str] = {
    "docstore": "a corpus file's offset index (docstore.DocStore), per file identity",
    "bm25": "the BM25 teacher's index when score-teacher --model bm25 gets no --index (teacher.BM25Teacher)",
    "teacher-embeddings": "a bi-encoder teacher's corpus embeddings (teacher.BiTeacher)",
    "models": "packaged ONNX models as folders that describe themselves (models.packaged_onnx)",
    "onnx": "ONNX exports and int8 graphs of PyTorch model folders (models.int8_graph)",
}


def cache_root() -> Path:
    """``$RDISTILL_CACHE``, else ``$XDG_CACHE_HOME/rdistill``, else ``~/.cache/rdistill``."""
    if os.environ.get("RDISTILL_CACHE"):
        return Path(os.environ["RDISTILL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rdistill"


def cache_dir(kind: str, name: str) -> Path:
    """The folder of one cached thing: ``cache_root()/KIND/NAME``, KIND one of :data:`CACHES`."""
    if kind not in CACHES:
        raise ValueError(f"unknown cache kind {kind!r}; name it in rdistill.cache.CACHES")
    return cache_root() / kind / name


def short_hash(text: str, length: int = 16) -> str:
    """The first ``length`` hex digits of ``text``'s SHA-1: a cache folder's name for a key."""
    return hashlib.sha1(text.encode()).hexdigest()[:length]


class FileIdentity(NamedTuple):
    """One version of one file: its resolved path, size and modification time (ns)."""

    path: str
    size: int
    mtime_ns: int


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """The one rule for "has this file changed": a changed corpus or model gets a new cache entry or journal
    fingerprint, never a stale one."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return FileIdentity(str(resolved), stat.st_size, stat.st_mtime_ns)
