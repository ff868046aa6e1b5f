"""Where queries, qrels and documents come from: BEIR folders, JSONL, TSV, TREC files, stdin and ir_datasets ids.

A *spec* is what a user passes to ``--queries``, ``--qrels`` or ``--corpus``:

- a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``), e.g. ``../shared/data/scifact``;
- a file: JSONL (``{"_id", "text"}`` / ``{"_id", "title", "text"}``), MS MARCO-style TSV (``id<TAB>text``),
  TREC or BEIR qrels; plain or gzipped; ``-`` for stdin;
- ``irds:DATASET_ID`` (e.g. ``irds:beir/scifact/test``) when the ir_datasets package is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from rdistill.errors import InputError, UsageError
from rdistill.io import _json_type, check_id, iter_lines, read_qrels, source_name
from rdistill.schema import Document, Qrels, Query, as_id

IRDS_PREFIX = "irds:"
QUERY_ID_FIELDS = ("_id", "query_id", "qid", "id")
QUERY_TEXT_FIELDS = ("text", "query")
DOC_ID_FIELDS = ("_id", "doc_id", "docno", "id")
DOC_TEXT_FIELDS = ("text", "contents", "body")


def is_irds(spec: str) -> bool:
    return str(spec).startswith(IRDS_PREFIX)


def irds_dataset(spec: str) -> Any:
    """Load an ir_datasets dataset by id. It may download on first use, so the tests never call it."""
    try:
        import ir_datasets  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(f"{spec}: ir_datasets ids need the ir_datasets package (pip install ir_datasets)") from None
    name = str(spec)[len(IRDS_PREFIX):]
    try:
        return ir_datasets.load(name)
    except KeyError:
        raise UsageError(f"{spec}: ir_datasets knows no dataset {name!r}") from None


def beir_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.jsonl", folder / f"{stem}.jsonl.gz"):
        if candidate.exists():
            return candidate
    return None


def beir_splits(folder: Path) -> list[str]:
    qrels = folder / "qrels"
    return sorted(p.name.split(".")[0] for p in qrels.glob("*.tsv*")) if qrels.is_dir() else []


def beir_qrels_file(folder: Path, split: str | None) -> Path:
    splits = beir_splits(folder)
    if split is None:
        raise UsageError(f"{folder}: a BEIR folder needs --split (one of: {', '.join(splits) or 'none found'})")
    for candidate in (folder / "qrels" / f"{split}.tsv", folder / "qrels" / f"{split}.tsv.gz"):
        if candidate.exists():
            return candidate
    raise UsageError(f"{folder}: no qrels for split {split!r} (available: {', '.join(splits) or 'none'})")


def _first(obj: dict[str, Any], fields: tuple[str, ...], name: str, lineno: int, what: str) -> Any:
    for field in fields:
        if field in obj:
            value = obj[field]
            ident = as_id(value)
            return value if ident is None else ident
    raise InputError(name, lineno, f"missing {what} (expected one of the fields {', '.join(map(repr, fields))})")


def _id(obj: dict[str, Any], fields: tuple[str, ...], name: str, lineno: int, what: str) -> str:
    for field in fields:
        if field in obj:
            return check_id(obj[field], name, lineno, f"{what} ({field!r})")
    raise InputError(name, lineno, f"missing {what} (expected one of the fields {', '.join(map(repr, fields))})")


def _text(obj: dict[str, Any], fields: tuple[str, ...], name: str, lineno: int, what: str) -> str:
    """A text field: a string (a number is read as the text it spells); null, a list or an object is an error, not
    the text "None" or "['a', 'b']" silently scored."""
    value = _first(obj, fields, name, lineno, what)
    if not isinstance(value, str):
        raise InputError(name, lineno, f"{what} should be a string, got {_json_type(value)}")
    return value


# ------------------------------------------------------------------------------------------------------- qrels


def load_qrels(spec: str, split: str | None = None) -> Qrels:
    """Qrels from a BEIR folder and split, a TREC/BEIR qrels file, or an ir_datasets id."""
    if is_irds(spec):
        qrels: Qrels = {}
        for row in irds_dataset(spec).qrels_iter():
            qrels.setdefault(row.query_id, {})[row.doc_id] = int(row.relevance)
        return qrels
    path = Path(spec)
    if str(spec) != "-" and path.is_dir():
        return read_qrels(beir_qrels_file(path, split))
    if split is not None:
        raise UsageError(f"{spec}: --split only applies to a BEIR folder or an irds: id, not to a qrels file")
    return read_qrels(spec)


# ----------------------------------------------------------------------------------------------------- queries


def iter_query_file(source: str | Path) -> Iterator[Query]:
    """Queries from JSONL or TSV, told apart line by line (a JSON object starts with '{')."""
    for _, query in _located_queries(source):
        yield query


def _located_queries(source: str | Path) -> Iterator[tuple[int, Query]]:
    name = source_name(source)
    for lineno, line in iter_lines(source):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(name, lineno, f"invalid JSON ({exc})") from None
            qid = _id(obj, QUERY_ID_FIELDS, name, lineno, "query id")
            text = _text(obj, QUERY_TEXT_FIELDS, name, lineno, "query text")
            yield lineno, Query(qid, text)
        else:
            qid, sep, text = line.partition("\t")
            if not sep:
                raise InputError(name, lineno, "expected a JSON object or 'id<TAB>text' (a file of one query a line "
                                 "without ids: `rdistill data queries FILE > queries.jsonl` gives them ids)")
            yield lineno, Query(check_id(qid, name, lineno, "query id"), text)


def load_queries(spec: str, split: str | None = None) -> dict[str, str]:
    """Query id -> text, in file order. With a BEIR folder and a split, only the queries judged in that split."""
    queries: dict[str, str] = {}
    if is_irds(spec):
        for row in irds_dataset(spec).queries_iter():
            queries[row.query_id] = getattr(row, "text", None) or row.default_text()
        return queries
    path = Path(spec)
    keep: set[str] | None = None
    source: str | Path = spec
    if str(spec) != "-" and path.is_dir():
        found = beir_file(path, "queries")
        if found is None:
            raise UsageError(f"{spec}: not a BEIR folder (no queries.jsonl)")
        source = found
        if split is not None:
            keep = set(read_qrels(beir_qrels_file(path, split)))
    elif split is not None:
        raise UsageError(f"{spec}: --split only applies to a BEIR folder or an irds: id, not to a query file")
    seen: set[str] = set()  # every id, also those of other splits: an id twice is ambiguous wherever it is kept
    for lineno, query in _located_queries(source):
        if query.query_id in seen:
            raise InputError(source_name(source), lineno, f"query id {query.query_id!r} appears more than once")
        seen.add(query.query_id)
        if keep is None or query.query_id in keep:
            queries[query.query_id] = query.text
    if not queries:
        raise InputError(source_name(source), None, "no queries found" + (f" for split {split!r}" if split else ""))
    return queries


@dataclass
class NumberedQueries:
    written: int
    blank: int
    duplicates: int

    def line(self) -> str:
        return (f"{self.written} queries written" + (f", {self.blank} blank lines skipped" if self.blank else "")
                + (f", {self.duplicates} repeated queries kept once" if self.duplicates else ""))


def number_queries(source: str | Path, out: TextIO, prefix: str = "q", keep_duplicates: bool = False,
                   ) -> NumberedQueries:
    """Queries without ids (one a line: a query log, questions users asked) as queries JSONL every stage reads.

    A query's id is ``PREFIX`` + its line number, so it traces back to the source line and stays the same when
    lines are added after it. Blank lines are skipped; a query that repeats an earlier one (same text after
    collapsing whitespace) is kept once, at its first line, since a log's repeats would weigh a query by its
    popularity and put the same query on both sides of a split. JSON, not TSV, so any text (tabs, quotes) survives.
    """
    name = source_name(source)
    if not prefix.isprintable() or any(c.isspace() for c in prefix):
        raise UsageError(f"--prefix {prefix!r}: an id prefix cannot hold whitespace or control characters, "
                         "which a TREC line cannot hold")
    seen: set[str] = set()
    written = blank = duplicates = 0
    for lineno, line in iter_lines(source):
        text = " ".join(line.split())
        if not text:
            blank += 1
            continue
        if not text.isprintable():
            raise InputError(name, lineno, "the query contains a control character")
        if text in seen and not keep_duplicates:
            duplicates += 1
            continue
        seen.add(text)
        out.write(orjson.dumps({"_id": f"{prefix}{lineno}", "text": text}).decode() + "\n")
        written += 1
    if not written:
        raise InputError(name, None, "no queries found (expected one query a line)")
    return NumberedQueries(written, blank, duplicates)


# ----------------------------------------------------------------------------------------------------- corpora


def corpus_file(spec: str) -> Path:
    """The file behind a corpus spec (a BEIR folder's corpus.jsonl, or the file itself)."""
    from rdistill.io import is_stream

    path = Path(spec)
    if is_stream(spec):
        # Documents are looked up by id through an offset index over the file (and the BM25 and dense indexes are
        # built over it and keyed by it): a stream cannot be indexed. Refused up front, in one line.
        where = "standard input" if str(spec) == "-" else "a pipe or device"
        raise UsageError(f"--corpus {spec}: the corpus must be a file or a BEIR folder, not {where}: documents "
                         "are looked up by id in an index built over the file")
    if path.is_dir():
        found = beir_file(path, "corpus")
        if found is None:
            raise UsageError(f"{spec}: not a BEIR folder (no corpus.jsonl)")
        return found
    if not path.exists():
        raise UsageError(f"{spec}: no such corpus file or folder")
    return path


def parse_document_line(line: str | bytes, name: str, lineno: int) -> Document | None:
    """One corpus line, JSONL or ``id<TAB>text`` (or ``id<TAB>title<TAB>text``); None for a blank line."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    line = line.lstrip("\ufeff")  # a BOM opens the first line of some files (the docstore reads raw lines)
    stripped = line.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise InputError(name, lineno, f"invalid JSON ({exc})") from None
        doc_id = _id(obj, DOC_ID_FIELDS, name, lineno, "document id")
        text = _text(obj, DOC_TEXT_FIELDS, name, lineno, "document text")
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            raise InputError(name, lineno, f"document title should be a string, got {_json_type(title)}")
        return Document(doc_id, text, title or "")
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) == 2:
        return Document(check_id(fields[0], name, lineno, "document id"), fields[1])
    if len(fields) == 3:
        return Document(check_id(fields[0], name, lineno, "document id"), fields[2], fields[1])
    raise InputError(name, lineno, "expected a JSON object or 'id<TAB>text'")


def check_unique_ids(spec: str, hashes: Any) -> None:
    """Refuse a corpus that lists a document id twice, naming the line of the second one. ``hashes`` are the
    documents' 64-bit id hashes in corpus order (8 bytes a document, not a set of every id); colliding hashes are
    confirmed on the ids themselves, and only the error path reads the file again to find the line."""
    import numpy as np

    h = np.asarray(hashes, dtype=np.uint64)
    order = np.argsort(h, kind="stable")
    same = np.flatnonzero(h[order][1:] == h[order][:-1])
    if same.size == 0:
        return
    suspects = {int(order[i + 1]) for i in same} | {int(order[i]) for i in same}
    seen: set[str] = set()
    source = corpus_file(spec)
    n = 0
    for lineno, line in iter_lines(source):
        doc = parse_document_line(line, str(source), lineno)
        if doc is None:
            continue
        if n in suspects:
            if doc.doc_id in seen:
                raise InputError(str(source), lineno, f"document id {doc.doc_id!r} appears more than once")
            seen.add(doc.doc_id)
        n += 1


def iter_corpus(spec: str) -> Iterator[Document]:
    """Stream every document of a corpus in file order, in constant memory."""
    if is_irds(spec):
        for row in irds_dataset(spec).docs_iter():
            yield Document(row.doc_id, getattr(row, "text", "") or row.default_text(), getattr(row, "title", "") or "")
        return
    source = corpus_file(spec)
    name = str(source)
    for lineno, line in iter_lines(source):
        doc = parse_document_line(line, name, lineno)
        if doc is not None:
            yield doc
