"""A resumable job's journal: its finished chunks of output, kept in ``OUTPUT.partial`` until the output is whole.

The file is a magic line (the job's name and a hash of everything its output depends on), then each chunk's output
lines followed by a chunk mark, ``#chunk COUNT DIGEST`` (DIGEST: what the chunk was made from). Every chunk is
fsynced before the next one starts, so a crash loses at most the chunk in progress, whose torn tail ``--resume``
cuts off. On ``--resume`` a journal whose magic line differs (other settings, input files or model) is refused, and
the job compares each chunk's digest with the journal's as it replays them (:class:`JournalMismatch`). At the end
the output is written atomically from the journal's lines (those not starting with ``#``) and the journal removed.

``rdistill score-teacher -o`` is the first job that uses it (:mod:`rdistill.teacher`); any job whose output is a
sequence of chunks determined by its input alone can.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rdistill.cache import file_identity
from rdistill.errors import Interrupted, RdistillError, UsageError
from rdistill.io import open_output, os_fault

CHUNK_END = "#chunk"


class JournalMismatch(UsageError):
    """--resume with input other than the journal was made from."""


class JournalKept(UsageError):
    """The output could not be written, but the journal of finished chunks is good and kept for --resume."""


def journal_path(output: str | Path) -> Path:
    path = Path(output)
    return path.with_name(path.name + ".partial")


def header(magic: str, fingerprint: str) -> str:
    """The journal's first line: the job's magic and the SHA-1 of its fingerprint (what its output depends on)."""
    return f"{magic} {hashlib.sha1(fingerprint.encode()).hexdigest()}"


def identity(spec: str) -> Any:
    """A file or folder as it is now (path, sizes, modification times; see :func:`rdistill.cache.file_identity`),
    for a fingerprint: a changed corpus or retrained model gives another journal, without hashing gigabytes."""
    path = Path(spec)
    if not path.exists():
        return spec  # a hub name or irds: id
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [list(file_identity(p)) for p in files]


class Journal:
    """An open journal: ``done`` holds the digests of the chunks it already has (on resume), in order."""

    def __init__(self, path: Path, fh: Any, head: str, done: list[str]) -> None:
        self.path = path
        self.header = head
        self.done = done
        self._fh = fh

    def commit(self, lines: str, count: int, digest: str) -> None:
        """Append one finished chunk (``count`` items made from ``digest``) and make it durable."""
        self._fh.write((lines + f"{CHUNK_END} {count} {digest}\n").encode())
        _sync(self._fh)

    def close(self) -> None:
        self._fh.close()

    def close_quietly(self) -> None:
        """Close a journal whose buffer may not be writable (a full disk): what is lost is a torn tail, which
        --resume cuts off, and the fault that matters has already been raised."""
        with contextlib.suppress(OSError):
            self._fh.close()

    def write_output(self, output: str) -> None:
        """Write the output atomically from the journal's lines, then remove the journal."""
        try:
            with open(self.path, encoding="utf-8") as src, open_output(output) as out:
                for line in src:
                    if not line.startswith("#"):
                        out.write(line)
        except UsageError as exc:  # the output's disk (full, read-only): every chunk is done; keep them
            raise JournalKept(f"{exc}; the scores are kept in {self.path}: free the space and run the same command "
                              "with --resume to write them") from None
        self.path.unlink()


def _open(path: Path, head: str, resume: bool) -> Journal:
    """Open the journal for appending; on resume keep its committed chunks (cut any torn tail)."""
    done: list[str] = []
    if resume and path.exists():
        keep = 0
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").rstrip("\n")
            if first != head:
                raise UsageError(f"{path}: this partial output was made with other settings, queries, corpus or "
                                 "model; delete it or run without --resume to start over")
            keep = fh.tell()
            for line in fh:
                if line.startswith(CHUNK_END.encode()) and line.endswith(b"\n"):
                    fields = line.decode("utf-8", "replace").split()
                    keep = fh.tell()
                    done.append(fields[2] if len(fields) > 2 else "")
        fh = open(path, "r+b")  # type: ignore[assignment]  # noqa: SIM115 - Journal.close closes it
        fh.truncate(keep)
        fh.seek(keep)
        return Journal(path, fh, head, done)
    if path.exists() and not resume:
        print(f"rdistill: note: {path} exists; starting over (use --resume to continue it)", file=sys.stderr)
    fh = open(path, "wb")  # type: ignore[assignment]  # noqa: SIM115 - Journal.close closes it
    journal = Journal(path, fh, head, done)
    try:
        with os_fault(path):
            fh.write((head + "\n").encode())
            _sync(fh)
    except BaseException:  # a full or failing disk before any work: leave no empty journal behind
        journal.close_quietly()
        path.unlink(missing_ok=True)
        raise
    return journal


@contextlib.contextmanager
def open_journal(output: str | Path, head: str, resume: bool) -> Iterator[Journal]:
    """The journal of the job writing ``output``, and what becomes of it when the job fails: after a crash,
    Ctrl-C or a device fault the finished chunks are kept for --resume; after bad input (an
    :class:`~rdistill.errors.RdistillError`), which a rerun would change anyway, it is removed; a mismatch or an
    output that could not be written keeps it as it is."""
    path = journal_path(output)
    journal = _open(path, head, resume)
    try:
        yield journal
    except (JournalMismatch, JournalKept):
        journal.close_quietly()  # the journal is good; the input, or the output's disk, is not
        raise
    except RdistillError:
        journal.close_quietly()
        path.unlink(missing_ok=True)
        raise
    except BaseException as exc:
        journal.close_quietly()
        kept = path.exists() and path.stat().st_size > len(head) + 1
        if not kept:
            path.unlink(missing_ok=True)  # nothing finished: no journal to resume
        if isinstance(exc, KeyboardInterrupt):  # one line: what was kept and how to go on
            raise Interrupted("interrupted; " + (
                f"the finished chunks are kept in {path}: the same command with --resume continues from them"
                if kept else "no chunk had finished, so nothing was kept")) from None
        if kept:
            print(f"rdistill: note: finished chunks are kept in {path}; the same command with --resume "
                  "continues from them", file=sys.stderr)
        with os_fault(path):  # a full disk under the journal is one line naming it
            raise


def _sync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())
