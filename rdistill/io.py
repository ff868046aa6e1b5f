"""Streaming readers and writers for every format rdistill touches.

Readers are lenient: plain or gzip (detected by its magic bytes, not the name), tabs or spaces, ``-`` for stdin,
blank lines skipped. Writers are strict and deterministic: single spaces, one canonical float form that reads back
bit-identical, a final newline, and files written atomically (a temporary file renamed into place on success, so
a crash or Ctrl-C never leaves half a file under the real name).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import math
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, TextIO

import orjson

from rdistill.errors import OS_FAULTS, InputError, UsageError, note
from rdistill.schema import (
    POSITIVE_KINDS,
    Group,
    QrelRow,
    Qrels,
    Run,
    RunRow,
    RunTable,
    as_id,
    check_finite,
    is_finite,
)

Source = str | os.PathLike[str]
STDIN_NAME = "<stdin>"
RUN_FORMAT = "a TREC run line 'qid Q0 docno rank score tag'"
QRELS_FORMAT = "a qrels line 'qid iter docno rel' (TREC) or 'query-id corpus-id score' (BEIR TSV)"


def source_name(source: Source) -> str:
    """How errors name an input: ``<stdin>`` for ``-``, and for a stream spooled by :func:`rereadable` the name it
    was given as (never the temporary file the user did not name)."""
    text = str(source)
    return _display.get(text) or (STDIN_NAME if text == "-" else text)


# The spooled copies of streams (see rereadable), by temporary path -> the name the user gave.
_display: dict[str, str] = {}


def is_stream(source: Source) -> bool:
    """Input that can be read only once: stdin, a FIFO, a pipe behind /dev/fd/N (process substitution), a
    character device or a socket; a regular file can be reopened."""
    if str(source) == "-":
        return True
    try:
        mode = os.stat(source).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def claims_stdin(source: Source | None) -> bool:
    """Whether an argument reads standard input: ``-``, or a path naming file descriptor 0."""
    if source is None:
        return False
    text = str(source)
    return text == "-" or text in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def _binary_stdin() -> IO[bytes]:
    if sys.stdin is None:  # started with stdin closed (<&-): Python leaves sys.stdin None
        raise UsageError("standard input is closed; give the input as a file, or open stdin (< FILE)")
    buf: Any = getattr(sys.stdin, "buffer", None)
    if buf is None:  # a text-only stream (rare; some embedders): re-encode
        return io.BytesIO(sys.stdin.read().encode("utf-8"))
    if not hasattr(buf, "peek"):
        buf = io.BufferedReader(buf)
    return buf


class _Held:
    """An input opened once by :func:`peek_line`, with the lines read so far, kept for the next open_binary."""

    def __init__(self, stack: contextlib.ExitStack, stream: IO[bytes]) -> None:
        self.stack = stack
        self.stream = stream
        self.lines: list[bytes] = []


# Inputs peeked at and not yet read, by the name they were given: the one open of each input, handed on to its
# reader, so that format detection never reopens a stream (whose first bytes a second open would not see).
_held: dict[str, _Held] = {}


def release_held() -> None:
    """Close inputs peeked at but never read (the CLI calls it when a command ends, so in-process callers such as
    tests never see a previous run's stream)."""
    while _held:
        _, held = _held.popitem()
        with contextlib.suppress(Exception):
            held.stack.close()


class _Prefixed(io.RawIOBase):
    """The bytes a peek already read, then the rest of the stream they came from."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_binary(source: Source) -> Iterator[IO[bytes]]:
    """Open a file or stdin for reading bytes, transparently gunzipping when the data starts with gzip's magic.

    The one way every reader opens an input: each input is opened once. If :func:`peek_line` already looked at
    it, the reader gets that same open stream with the peeked bytes in front, so a pipe, a FIFO or /dev/fd/N
    (process substitution) reads exactly as a regular file does.
    """
    held = _held.pop(str(source), None)
    if held is not None:
        try:
            yield io.BufferedReader(_Prefixed(b"".join(held.lines), held.stream), 1 << 16)
        finally:
            held.stack.close()
        return
    with _open_decoded(source) as stream:
        yield stream


@contextlib.contextmanager
def _open_decoded(source: Source) -> Iterator[IO[bytes]]:
    name = source_name(source)
    if str(source) == "-":
        raw: IO[bytes] = _binary_stdin()
        close = False
    else:
        path = Path(source)
        if path.is_dir():
            raise InputError(name, None, "is a folder, expected a file")
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InputError(name, None, "no such file") from None
        except PermissionError:
            raise InputError(name, None, "permission denied") from None
        close = True
    try:
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            yield raw
    finally:
        if close:
            raw.close()


def peek_line(source: Source) -> str | None:
    """The first non-blank line of an input (None when it has none), without using it up: the input is opened
    once and kept open, and the next reader of the same name (``open_binary``, ``iter_lines``...) starts with the
    lines read to find it. Format detection goes through here, never through a second open."""
    key = str(source)
    held = _held.get(key)
    if held is None:
        stack = contextlib.ExitStack()
        try:
            held = _Held(stack, stack.enter_context(_open_decoded(source)))
        except BaseException:
            stack.close()
            raise
        _held[key] = held
    name = source_name(source)
    lineno = 0
    for lineno, raw in enumerate(held.lines, 1):
        if raw.strip():
            return _decode_line(raw, name, lineno)
    while True:
        try:
            raw = held.stream.readline()
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(name, lineno + 1, f"truncated or corrupt gzip data ({exc})") from None
        if not raw:
            return None
        held.lines.append(raw)
        lineno += 1
        if raw.strip():
            return _decode_line(raw, name, lineno)


def _decode_line(raw: bytes, name: str, lineno: int) -> str:
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputError(name, lineno, f"not valid UTF-8 ({exc.reason})") from None
    return line[1:] if lineno == 1 and line.startswith("\ufeff") else line


@contextlib.contextmanager
def rereadable(source: Source) -> Iterator[str]:
    """A path that can be read more than once, for a job that genuinely needs two passes: ``source`` itself when
    it is a regular file, else the stream spooled once to a temporary file (bounded memory whatever its size),
    removed when the block ends. Errors still name the input as the user gave it (``<stdin>``, ``/dev/fd/63``)."""
    if not is_stream(source):
        yield str(source)
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rdistill-spool-") as scratch:
        path = str(Path(scratch) / "input")
        with open_binary(source) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        _display[path] = source_name(source)
        try:
            yield path
        finally:
            _display.pop(path, None)


def iter_lines(source: Source) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, newline stripped, a UTF-8 byte order mark dropped), turning decoding
    failures into located errors."""
    yield from _read_lines(source)


def _read_lines(source: Source) -> Iterator[tuple[int, str]]:
    name = source_name(source)
    lineno = 0
    with open_binary(source) as fh:
        try:
            for raw in fh:
                lineno += 1
                line = raw.decode("utf-8").rstrip("\r\n")
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # the BOM some Windows tools write: not part of the first field
                yield lineno, line
        except UnicodeDecodeError as exc:
            raise InputError(name, lineno, f"not valid UTF-8 ({exc.reason})") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(name, lineno + 1, f"truncated or corrupt gzip data ({exc})") from None


def parse_score(text: str, name: str, lineno: int, what: str = "score") -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(name, lineno, f"expected a numeric {what}, got {text!r}") from None
    if not is_finite(value):
        raise InputError(name, lineno, f"expected a finite {what}, got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------------------- runs


_new_tuple = tuple.__new__  # RunRow(...) without the keyword-argument handling: the run readers are hot paths


def parse_run_line(line: str, name: str, lineno: int) -> RunRow | None:
    """The one parser of a TREC run line, under every run reader; None for a blank line.

    Called per line (not layered as a generator under the readers) because a reader's time is mostly this.
    """
    fields = line.split()
    if len(fields) != 6:
        if not fields:
            return None
        raise InputError(name, lineno, f"expected {RUN_FORMAT} (6 fields), got {len(fields)} field(s)")
    qid, _q0, doc, rank, score, tag = fields
    if not (qid.isprintable() and doc.isprintable()):  # a NUL, control or invisible character splits no field
        _unprintable(qid, doc, name, lineno)
    try:
        value = float(score)
    except ValueError:
        value = math.nan  # parse_score says which: not a number, or not finite
    if not is_finite(value):
        parse_score(score, name, lineno)
    # trec_eval ignores the rank column, so do we (a rank that is not an integer reads as 0); kept for display.
    rank_value = int(rank) if rank.isdigit() else _parse_rank(rank)
    return _new_tuple(RunRow, (qid, doc, rank_value, value, tag))  # type: ignore[no-any-return]


def _unprintable(qid: str, doc: str, name: str, lineno: int) -> None:
    """Refuse an id holding a character no one can see or type (a NUL, a control character, a BOM inside it), as
    :func:`check_id` does for JSON ids: it would pass on into every output and match nothing."""
    what, ident = ("query id", qid) if not qid.isprintable() else ("document id", doc)
    raise InputError(name, lineno, f"{what} {ident!r} contains a control or invisible character")


def _parse_rank(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def iter_run_queries(source: Source) -> Iterator[tuple[str, dict[str, float]]]:
    """Stream a run one query at a time, in bounded memory.

    A query's rows must be contiguous (every tool writes them so); a query that comes back after another one is
    an error that says how to fix the file, since silently merging would need the whole run in memory.
    """
    for qid, docs, _lines in _run_queries(source, None):
        yield qid, docs


def iter_run_queries_located(source: Source) -> Iterator[tuple[str, dict[str, float], list[int]]]:
    """:func:`iter_run_queries` with the line number of each document's row (in the dict's order), for errors
    about content found later (a query missing from --queries, a document missing from the corpus) that must
    point at the line where the id stands."""
    return _run_queries(source, [])


def _run_queries(source: Source, lines: list[int] | None) -> Iterator[tuple[str, dict[str, float], list[int]]]:
    name = source_name(source)
    seen: set[str] = set()
    current: str | None = None
    docs: dict[str, float] = {}
    located = lines is not None
    where: list[int] = []
    for lineno, line in iter_lines(source):
        row = parse_run_line(line, name, lineno)
        if row is None:
            continue
        qid, doc = row[0], row[1]  # (query_id, doc_id): indexing is faster than the named fields here
        if qid != current:
            if current is not None:
                yield current, docs, where
            if qid in seen:
                raise InputError(
                    name, lineno, f"query {qid!r} appears again after other queries; group the run by query first "
                    "(e.g. sort -s -k1,1)")
            seen.add(qid)
            current, docs, where = qid, {}, []
        if doc in docs:
            raise InputError(name, lineno, f"document {doc!r} appears twice for query {qid!r}")
        docs[doc] = row[3]  # score
        if located:
            where.append(lineno)
    if current is None:
        raise InputError(name, None, f"empty input: expected {RUN_FORMAT}")
    yield current, docs, where


def read_run(source: Source) -> Run:
    """Load a whole run. The rank column and the file order are ignored, as trec_eval ignores them."""
    name = source_name(source)
    return _collect_run(iter_lines(source), name)


def _collect_run(lines: Iterable[tuple[int, str]], name: str) -> Run:
    run: Run = {}
    for lineno, line in lines:
        row = parse_run_line(line, name, lineno)
        if row is None:
            continue
        qid, doc, _rank, score, _tag = row
        docs = run.setdefault(qid, {})
        if doc in docs:
            raise InputError(name, lineno, f"document {doc!r} appears twice for query {qid!r}")
        docs[doc] = score
    if not run:
        raise InputError(name, None, f"empty input: expected {RUN_FORMAT}")
    return run


_BLOCK = 1 << 22  # bytes of a run decoded and split at once by read_run_table (about 140 k lines)
# What str.split() splits on among ASCII bytes (bytes.split() leaves out \x1c-\x1f), less the newline.
_SPACE = frozenset(b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f")


def read_run_table(source: Source) -> RunTable:
    """:func:`read_run` as columns (:class:`~rdistill.schema.RunTable`): what ``rdistill eval`` reads.

    The same files are accepted and the same errors raised, but the work is done in C a block at a time: numpy
    checks that every line holds 6 fields, one ``str.split`` cuts the block into fields, every sixth is a
    column, ``float`` runs through ``map``. Anything the fast path does not expect (a line without 6 fields, a
    score that is not a finite number, a document twice for a query, bytes beyond ASCII, bad UTF-8) sends the input
    through :func:`parse_run_line` line by line, which says where and what.
    """
    import numpy as np

    name = source_name(source)
    with open_binary(source) as fh:
        try:
            data = fh.read()
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(name, None, f"truncated or corrupt gzip data ({exc})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM, as iter_lines drops it: not part of the first query id
    space = np.zeros(256, dtype=bool)
    space[list(_SPACE)] = True
    control = np.zeros(256, dtype=bool)  # bytes parse_run_line refuses in an id: the slow path says where
    control[:0x20] = True
    control[0x7F] = True
    control[list(_SPACE | {10})] = False
    qids: list[str] = []
    docs: list[str] = []
    scores: list[Any] = []
    pos = 0
    try:
        while pos < len(data):
            end = data.find(b"\n", min(pos + _BLOCK, len(data) - 1)) + 1 or len(data)
            block = np.frombuffer(data, dtype=np.uint8, count=end - pos, offset=pos)
            pos = end
            if block.max() >= 0x80 or control[block].any():
                raise ValueError("beyond ASCII (str.split also splits on Unicode spaces), or a control character")
            newline = block == 10
            gap = space[block] | newline
            after_gap = np.r_[True, gap[:-1]]
            starts = np.flatnonzero(~gap & after_gap)  # first byte of each field
            ends = np.flatnonzero(gap & ~after_gap)  # the byte after each field but the block's last one
            if len(ends) < len(starts):
                ends = np.r_[ends, len(block)]
            fields = np.bincount(np.cumsum(newline)[starts])  # per line of the block
            if not np.all((fields == 0) | (fields == 6)):
                raise ValueError("a line without 6 fields")
            # Only the three fields used become objects: the ids as str (gathered with a newline after each,
            # decoded and split at once), the scores parsed by numpy from fixed-width bytes.
            ids = _gather(block, np.c_[starts[0::6], starts[2::6]].ravel(), np.c_[ends[0::6], ends[2::6]].ravel())
            qids.extend(ids[0::2])
            docs.extend(ids[1::2])
            scores.append(_parse_floats(block, starts[4::6], ends[4::6]))
        values = np.concatenate(scores) if scores else np.zeros(0)
        if not qids or not np.isfinite(values).all():
            raise ValueError("empty, or a score that is not finite")
        order = {q: i for i, q in enumerate(dict.fromkeys(qids))}
        index = np.fromiter(map(order.__getitem__, qids), dtype=np.int64, count=len(qids))
        # A document twice for a query: each query's ids in a set (their hashes are kept for evaluation's lookups).
        by_query = np.argsort(index, kind="stable")
        bounds = np.searchsorted(index[by_query], np.arange(len(order) + 1)).tolist()
        grouped = list(map(docs.__getitem__, by_query.tolist()))
        if any(len(set(grouped[a:b])) != b - a for a, b in zip(bounds, bounds[1:], strict=False)):
            raise ValueError("a document twice for a query")
    except (ValueError, UnicodeDecodeError):
        return RunTable.from_run(_collect_run(_byte_lines(data, name), name))
    return RunTable(list(order), index, docs, values)


def _gather(block: Any, starts: Any, ends: Any) -> list[str]:
    """The fields [start, end) of an ASCII block as str, in one gather, decode and split."""
    import numpy as np

    sizes = ends - starts + 1  # + a newline after each
    stops = np.cumsum(sizes)
    where = np.repeat(starts - (stops - sizes), sizes) + np.arange(int(stops[-1]) if len(stops) else 0)
    out = block[np.minimum(where, len(block) - 1)]
    out[stops - 1] = 10
    parts = out.tobytes().decode("ascii").split("\n")
    parts.pop()
    return parts


def _parse_floats(block: Any, starts: Any, ends: Any) -> Any:
    """The fields [start, end) of a block as float64, parsed by numpy from a fixed-width bytes array."""
    import numpy as np

    width = int((ends - starts).max()) if len(starts) else 1
    if width > 64:
        raise ValueError("a score too long to be a number")
    offsets = np.arange(width)
    where = starts[:, None] + offsets
    out = np.where(offsets < (ends - starts)[:, None], block[np.minimum(where, len(block) - 1)], 0).astype(np.uint8)
    return np.ascontiguousarray(out).view(f"S{width}").ravel().astype(np.float64)


def _byte_lines(data: bytes, name: str) -> Iterator[tuple[int, str]]:
    """:func:`iter_lines` over bytes already read."""
    lineno = 0
    try:
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            yield lineno, raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise InputError(name, lineno, f"not valid UTF-8 ({exc.reason})") from None


def sort_query(docs: dict[str, float] | Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """trec_eval's order: score descending, ties broken by docno descending."""
    items = docs.items() if isinstance(docs, dict) else docs
    return sorted(items, key=itemgetter(1, 0), reverse=True)


def score_texts(scores: list[float]) -> list[str]:
    """``repr`` of each score (the shortest text that reads back bit-identical), about 8x faster for a long list.

    orjson writes a float with the same shortest round-trip digits as ``repr`` (both pick the closest of the
    shortest candidates; a test compares them over 300 000 random bit patterns and 150 000 typical scores, and 6 M
    were compared once), but in positional notation where
    ``repr`` switches to an exponent (``0.00001`` for ``1e-05``): the few such texts are redone with ``repr``, so
    the output is exactly ``map(repr, scores)``. A non-finite score (orjson writes ``null``) is refused.
    """
    blob = orjson.dumps(scores)
    if b"null" in blob:
        bad = next(s for s in scores if not is_finite(s))
        raise ValueError(f"refusing to write a non-finite score {bad!r}")
    texts = blob[1:-1].decode("ascii").split(",")
    # One substring search per query; only a query holding such a score pays for a look at each text.
    if b"e" in blob or b"0.0000" in blob:
        texts = [repr(score) if "e" in text or text.startswith(("0.0000", "-0.0000")) else text
                 for text, score in zip(texts, scores, strict=True)]
    return texts


def format_run_query(query_id: str, docs: dict[str, float] | Iterable[tuple[str, float]], tag: str,
                     depth: int | None = None) -> str:
    """The canonical TREC lines of one query, ranked as trec_eval ranks them, optionally cut to ``depth``.

    Scores are written as Python's shortest repr, the one form that reads back bit-identical and prints 0.5 as
    0.5, and a non-finite one is refused. Both are applied to the whole query at once (:func:`score_texts`):
    writing a 1,000-document query is mostly float formatting, and a function call per line cost as much again.
    """
    ranked = sort_query(docs)
    if depth is not None:
        ranked = ranked[:depth]
    if not ranked:
        return ""
    docnos, raw = zip(*ranked, strict=True)
    texts = score_texts(list(map(float, raw)))  # numpy scalars print as Python floats
    head, tail = f"{query_id} Q0 ", f" {tag}\n"
    return "".join([f"{head}{doc} {rank} {text}{tail}"
                    for doc, rank, text in zip(docnos, range(1, len(docnos) + 1), texts, strict=True)])


def write_run(out: TextIO, run: Run | Iterable[tuple[str, dict[str, float]]], tag: str = "rdistill",
              depth: int | None = None) -> None:
    """Write a run query by query, in the order given."""
    items = run.items() if isinstance(run, dict) else run
    for qid, docs in items:
        out.write(format_run_query(qid, docs, tag, depth))


# --------------------------------------------------------------------------------------------------------- qrels


def iter_qrels(source: Source) -> Iterator[QrelRow]:
    """TREC qrels (4 fields) or BEIR qrels TSV (3 fields, optional header), tabs or spaces."""
    for _, row in _located_qrels(source, source_name(source)):
        yield row


def parse_qrels_line(line: str, name: str, lineno: int, first: bool = False) -> QrelRow | None:
    """One qrels line (None for a blank line, or BEIR's header when it is the ``first`` non-blank line)."""
    fields = line.split()
    if not fields:
        return None
    if len(fields) == 4:
        qid, iteration, doc, rel = fields
    elif len(fields) == 3:
        qid, doc, rel = fields
        iteration = "0"
        if first and not _is_int(rel):  # BEIR's "query-id corpus-id score" header
            return None
    else:
        raise InputError(name, lineno, f"expected {QRELS_FORMAT}, got {len(fields)} field(s)")
    if not _is_int(rel):
        raise InputError(name, lineno, f"expected an integer relevance level, got {rel!r}")
    if not (qid.isprintable() and doc.isprintable()):
        _unprintable(qid, doc, name, lineno)
    return QrelRow(qid, doc, int(rel), iteration)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_qrels(source: Source) -> Qrels:
    """A whole qrels file. A (query, document) pair judged twice with different grades is refused at its second
    line (which grade the user meant is unknowable); judged twice with the same grade, it counts once, with a note."""
    name = source_name(source)
    qrels: Qrels = {}
    repeats = 0
    for lineno, row in _located_qrels(source, name):
        docs = qrels.setdefault(row.query_id, {})
        before = docs.get(row.doc_id)
        if before is not None:
            if before != row.relevance:
                raise InputError(name, lineno, f"query {row.query_id!r}, document {row.doc_id!r} is judged again "
                                 f"with grade {row.relevance} after grade {before}; a pair has one grade")
            repeats += 1
            continue
        docs[row.doc_id] = row.relevance
    if not qrels:
        raise InputError(name, None, f"empty input: expected {QRELS_FORMAT}")
    if repeats:
        note(f"{name}: {repeats} (query, document) pair(s) judged twice with the same grade; each counts once")
    return qrels


def _located_qrels(source: Source, name: str) -> Iterator[tuple[int, QrelRow]]:
    """:func:`iter_qrels` with each row's line number (for errors that point at a second judgment)."""
    first = True
    for lineno, line in iter_lines(source):
        row = parse_qrels_line(line, name, lineno, first)
        first = first and not line.strip()  # the header may follow blank lines, never a judgment
        if row is not None:
            yield lineno, row


# --------------------------------------------------------------------------------------------------------- JSONL


def iter_jsonl(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a line that is not a JSON object is an error."""
    name = source_name(source)
    for lineno, line in iter_lines(source):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(name, lineno, f"invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise InputError(name, lineno, f"expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def check_id(value: Any, name: str, lineno: int, what: str) -> str:
    """An id as every writer can emit it: a non-empty string (a JSON number spells one) without whitespace, which
    would split a TREC line into the wrong fields."""
    ident = as_id(value)
    if ident is None:
        raise InputError(name, lineno, f"{what} should be a string, got {_json_type(value)}")
    if not ident:
        raise InputError(name, lineno, f"{what} is empty")
    if any(ch.isspace() for ch in ident):
        raise InputError(name, lineno, f"{what} {ident!r} contains whitespace, which a TREC line cannot hold")
    if not ident.isprintable():  # NUL, other control characters, a BOM inside: an id no one could type or match
        raise InputError(name, lineno, f"{what} {ident!r} contains a control or invisible character")
    return ident


def _json_type(value: Any) -> str:
    return {type(None): "null", bool: "a boolean", list: "a list", dict: "an object"}.get(type(value),
                                                                                        type(value).__name__)


def require(obj: dict[str, Any], field: str, name: str, lineno: int, kind: type | tuple[type, ...] = str) -> Any:
    """Fetch a required field, with an error that names the file, line and field."""
    if field not in obj:
        raise InputError(name, lineno, f"missing field {field!r}")
    value = obj[field]
    if kind is str and (ident := as_id(value)) is not None:
        return ident  # lenient: ids written as numbers are still ids
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(name, lineno, f"field {field!r} should be {want}, got {type(value).__name__}")
    return value


GROUPS_FORMAT = 'a group {"query_id", "doc_ids": [positive, negatives...], "labels", "scores": [...] | null, "meta"}'


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def iter_groups(source: Source) -> Iterator[tuple[int, Group]]:
    """Training groups (``rdistill sample``'s JSONL), each checked and located: ids as strings, the positive first,
    labels and scores one per document (absent labels mean positive then negatives; ``"scores": null`` means no
    teacher), finite scores. The one reader every stage that takes groups uses."""
    name = source_name(source)
    count = 0
    for lineno, obj in iter_jsonl(source):
        if "query_id" not in obj:
            raise InputError(name, lineno, "missing field 'query_id'")
        qid = check_id(obj["query_id"], name, lineno, "field 'query_id'")
        doc_ids = require(obj, "doc_ids", name, lineno, list)
        ids = [as_id(d) for d in doc_ids]
        if len(ids) < 2 or None in ids:
            raise InputError(name, lineno, "field 'doc_ids' should list at least 2 document ids (positive first)")
        doc_ids = [check_id(d, name, lineno, "a document id in 'doc_ids'") for d in doc_ids]
        positives = obj.get("positives", "judged")
        if positives not in POSITIVE_KINDS:
            raise InputError(name, lineno, f"field 'positives' should be one of {', '.join(POSITIVE_KINDS)}, got "
                             f"{positives!r}")
        labels = obj.get("labels")
        if labels is None:
            labels = [0] * len(doc_ids) if positives == "none" else [1] + [0] * (len(doc_ids) - 1)
        elif not isinstance(labels, list) or len(labels) != len(doc_ids) or not all(map(_is_number, labels)):
            raise InputError(name, lineno, f"field 'labels' should be a list of {len(doc_ids)} labels, one per doc id")
        elif not all(float(x).is_integer() for x in labels):
            bad = next(x for x in labels if not float(x).is_integer())
            raise InputError(name, lineno, f"field 'labels' holds {bad!r}; labels are integer relevance grades "
                             "(as in qrels)")
        elif positives == "none" and any(labels):
            raise InputError(name, lineno, 'a positive-free group ("positives": "none") has every label 0')
        scores = obj.get("scores")
        if positives != "judged" and scores is None:
            raise InputError(name, lineno, f'a group with "positives": "{positives}" needs the teacher\'s scores '
                             '(its labels come from them)')
        if scores is not None:
            if not isinstance(scores, list) or len(scores) != len(doc_ids) or not all(map(_is_number, scores)):
                raise InputError(name, lineno, f"field 'scores' should be null or {len(doc_ids)} numbers, one per doc")
            try:
                scores = [check_finite(float(x), "teacher score") for x in scores]
            except ValueError as exc:
                raise InputError(name, lineno, str(exc)) from None
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError(name, lineno, "field 'meta' should be an object")
        count += 1
        group = Group(qid, doc_ids, [int(x) for x in labels], scores, meta, positives)
        check_group(group, name, lineno)
        yield lineno, group
    if count == 0:
        raise InputError(name, None, f"empty input: expected {GROUPS_FORMAT}, one a line")


def check_group(group: Group, name: str, lineno: int | None) -> None:
    """What a group must be beyond its fields' types, checked where one is read and where one is made from another
    tool's format, so that no writer emits a group :func:`iter_groups` refuses: at least 2 documents, the first a
    positive (label above 0) unless the group is positive-free, each document once (a positive again among its negatives would be trained as both)."""
    if len(group.doc_ids) < 2:
        raise InputError(name, lineno, f"query {group.query_id!r}: a group needs a positive and at least one "
                         f"negative, got {len(group.doc_ids)} document(s)")
    if group.positives != "none" and group.labels[0] <= 0:
        raise InputError(name, lineno, f"query {group.query_id!r}: the first document must be the positive, but "
                         f"its label is {group.labels[0]} (document {group.doc_ids[0]!r})")
    if len(set(group.doc_ids)) != len(group.doc_ids):
        seen: set[str] = set()
        twice = next(d for d in group.doc_ids if d in seen or seen.add(d))  # type: ignore[func-returns-value]
        what = "the positive, listed again among the negatives" if twice == group.doc_ids[0] else "listed twice"
        raise InputError(name, lineno, f"query {group.query_id!r}: document {twice!r} is {what}; a group lists "
                         "each document once")


def dumps(obj: Any) -> str:
    """One canonical JSON line (orjson: shortest round-trip floats, UTF-8, no spaces)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode("utf-8")


def write_jsonl(out: TextIO, records: Iterable[Any]) -> int:
    count = 0
    for record in records:
        # NamedTuples (the schema's records) serialise by their fields, in their declared order.
        obj = record._asdict() if hasattr(record, "_asdict") else record
        out.write(dumps(obj))
        out.write("\n")
        count += 1
    return count


# ------------------------------------------------------------------------------------------------------- output


@contextlib.contextmanager
def open_output(target: Source | None) -> Iterator[TextIO]:
    """Text output (UTF-8, ``\\n`` line ends) to stdout (``None``, ``-`` or a path that is stdout) or, atomically,
    to a file (gzip when the name ends in .gz). See :func:`open_output_bytes` for what each kind of target gets."""
    if target is None or str(target) == "-" or _is_stdout(target):
        out = stdout_text()
        yield out
        out.flush()
        return
    with open_output_bytes(target) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="\n")  # type: ignore[arg-type]
        try:
            yield text
            text.flush()
        finally:
            with contextlib.suppress(Exception):
                text.detach()  # so that garbage collection of the wrapper does not close the file a second time


def stdout_text() -> TextIO:
    """Standard output as UTF-8 text whatever the locale (ids and texts are UTF-8 in files, so on stdout too);
    one line, not a traceback, when the program was started with stdout closed (``>&-``)."""
    out: Any = sys.stdout
    if out is None:
        raise UsageError("standard output is closed; give -o FILE, or open stdout (> FILE)")
    if (getattr(out, "encoding", None) or "utf-8").lower().replace("-", "") != "utf8" and hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    return out  # type: ignore[no-any-return]


def _is_stdout(target: Source) -> bool:
    """``/dev/stdout`` or ``/dev/fd/1``-like paths that are this process's standard output: written as stdout, never
    replaced by a file (as root, a renamed file over the /dev/stdout link breaks it for every later program)."""
    text = str(target)
    if text in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        return True
    if not text.startswith(("/dev/", "/proc/")) or sys.stdout is None:
        return False
    try:
        return os.path.samestat(os.stat(text), os.fstat(1))
    except OSError:
        return False


def _writes_through(path: Path) -> bool:
    """A target written in place rather than replaced: a device, FIFO or socket (renaming a file over it would
    replace the node, and /dev/full would then silently "succeed"), or any path through /dev or /proc."""
    if not path.exists():
        return False
    if not path.is_file():
        return True
    where, hops = os.path.abspath(path), 0
    while hops < 40:
        if where.startswith(("/dev/", "/proc/")):
            return True
        if not os.path.islink(where):
            return False
        where = os.path.join(os.path.dirname(where), os.readlink(where))
        hops += 1
    return False


def is_plain_output(target: Source | None) -> bool:
    """Whether ``target`` names a regular file that rdistill writes (so a ``.meta.json`` sidecar beside it makes
    sense): not stdout, a FIFO, a device or /dev/stdout."""
    if target is None or str(target) == "-" or _is_stdout(target):
        return False
    return not _writes_through(Path(target))


@contextlib.contextmanager
def open_output_bytes(target: Source) -> Iterator[IO[bytes]]:
    """Binary output to a file, written atomically: the data goes to a hidden temporary file beside the target and
    is renamed over it only when the block ends without an exception, so readers never see half a file and a
    failed run leaves the old file untouched.

    A folder is refused with one line; a device, FIFO or /dev/stdout is streamed to; a symlink is followed and
    its target replaced atomically in the target's own folder (the link stays a link, the target is not stale).
    """
    if str(target) == "-" or _is_stdout(target):
        if sys.stdout is None:
            raise UsageError("standard output is closed; give -o FILE, or open stdout (> FILE)")
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a file name for the output")
    if _writes_through(path):
        with os_fault(path), open(path, "wb") as special:
            yield special
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
        if path.is_dir():
            raise UsageError(f"{target}: is a link to a folder; give a file name for the output")
    _make_parent(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with os_fault(path):
        raw = open(tmp, "wb")  # noqa: SIM115 - closed below
    binary: IO[bytes] = (gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)  # type: ignore[assignment]
                         if path.suffix == ".gz" else raw)
    try:
        yield binary
        if binary is not raw:
            binary.close()
        raw.flush()
        os.fsync(raw.fileno())
        raw.close()
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            raw.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in OUTPUT_FAULTS:
            raise UsageError(f"{path}: {OUTPUT_FAULTS[exc.errno]}; nothing was written") from None
        raise


# The faults of the file system under an output that open_output and os_fault turn into one line naming the file
# (their words: errors.OS_FAULTS); EEXIST and ENAMETOOLONG reach the CLI, which says them without the file's role.
OUTPUT_FAULTS = {code: OS_FAULTS[code] for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO,
                                                    errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR)}


def _make_parent(path: Path) -> None:
    try:
        with os_fault(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder of the path should be (EEXIST is not an output fault)
        raise UsageError(f"{path}: a part of the path is a file, not a folder") from None


@contextlib.contextmanager
def os_fault(path: Path) -> Iterator[None]:
    """Turn a file-system fault under ``path`` (OUTPUT_FAULTS: a full disk, a read-only folder...) into one line
    naming it; any other OSError passes through."""
    try:
        yield
    except OSError as exc:
        if exc.errno in OUTPUT_FAULTS:
            raise UsageError(f"{path}: {OUTPUT_FAULTS[exc.errno]}") from None
        raise


@contextlib.contextmanager
def exclusive(target: Source) -> Iterator[None]:
    """Hold the lock of an output for a whole job, so two jobs writing the same -o or --out cannot interleave
    their journals or checkpoints: the second refuses with one line. The lock is an flock on a hidden file
    beside the target, released (and removed) when the job ends or dies."""
    import fcntl

    path = Path(target)
    lock = path.with_name(f".{path.name}.lock")
    _make_parent(path)
    while True:
        with os_fault(lock):
            fh = open(lock, "a")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UsageError(f"{path}: another rdistill job is writing it (it holds {lock}); wait for that job "
                             "or choose another output") from None
        # The previous holder may have removed the file between our open and our lock: then lock the new one.
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        fh.close()


def write_text_atomic(path: Source, content: str) -> None:
    with open_output(path) as out:
        out.write(content)
