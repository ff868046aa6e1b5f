"""Test collections from ir_datasets, written as the BEIR folders every stage reads (``rdistill data export``).

A BEIR folder is ``corpus.jsonl`` (``{"_id", "title", "text"}``), ``queries.jsonl`` (``{"_id", "text"}``) and
``qrels/SPLIT.tsv`` (a ``query-id<TAB>corpus-id<TAB>score`` header, then one judgment a line). The three collections
the study uses are exported with the rules of the copies in ../shared/data (see its README), so a folder written
here can stand in for them:

- ``beir/scifact``: BEIR's scifact as ir_datasets serves it, texts verbatim; qrels ``train`` and ``test`` from the
  ``beir/scifact/train`` and ``beir/scifact/test`` subsets; all 1,109 queries.
- ``cranfield``: query ids 1..225 in file order (ir_datasets already renumbers them as cranqrel uses them);
  relevance codes 1..4 inverted to 4..1 (4 = most relevant) and the "-1" (no interest) judgments dropped; split
  ``test`` = query ids divisible by 3, ``train`` = the others. A document's text is its ``.W`` field, which
  repeats the title (two documents have none and stay empty); the title field is left empty.
- ``vaswani``: the NPL collection; one split, ``test``, binary relevance.

Cranfield's and vaswani's texts are lower-cased and their line breaks and runs of spaces collapsed to single
spaces, as in ../shared/data.

ir_datasets downloads each collection on first use into ``$IR_DATASETS_HOME`` (``~/.ir_datasets``) and reads it
from there afterwards, offline. A missing package or a failed download is one :class:`RdistillError` line.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from rdistill.data import IRDS_PREFIX
from rdistill.errors import RdistillError, UsageError
from rdistill.io import open_output

QRELS_HEADER = "query-id\tcorpus-id\tscore\n"


def collapse(text: str) -> str:
    """Lower case, line breaks and runs of white space to single spaces, ends stripped: the Glasgow collections
    as ../shared/data has them (their raw files break lines inside sentences; NPL's are in capitals)."""
    return " ".join(text.lower().split())


def verbatim(text: str) -> str:
    return text


def cranfield_relevance(code: int) -> int | None:
    """Cranfield's codes 1 (complete answer) .. 4 (minimum interest) as gains 4 .. 1; -1 (no interest) dropped."""
    return 5 - code if 1 <= code <= 4 else None


def binary_relevance(code: int) -> int | None:
    return code


def cranfield_split(query_id: str) -> str:
    return "test" if int(query_id) % 3 == 0 else "train"


@dataclass(frozen=True)
class Recipe:
    """How one ir_datasets collection becomes a BEIR folder."""

    dataset: str  # the ir_datasets id with the documents and queries
    splits: tuple[str, ...]  # the qrels files written, in this order
    # split -> the ir_datasets id whose qrels it is; a split not listed takes its qrels from ``dataset``, routed by
    # ``split_of``.
    qrels_from: dict[str, str] = field(default_factory=dict)
    split_of: Callable[[str], str] | None = None
    relevance: Callable[[int], int | None] = binary_relevance
    clean: Callable[[str], str] = verbatim
    keep_title: bool = True


RECIPES: dict[str, Recipe] = {
    "beir/scifact": Recipe("beir/scifact", ("train", "test"),
                           qrels_from={"train": "beir/scifact/train", "test": "beir/scifact/test"}),
    "cranfield": Recipe("cranfield", ("train", "test"), split_of=cranfield_split, relevance=cranfield_relevance,
                        clean=collapse, keep_title=False),
    "vaswani": Recipe("vaswani", ("test",), split_of=lambda _qid: "test", clean=collapse, keep_title=False),
}


@dataclass
class ExportSummary:
    folder: Path
    documents: int = 0
    queries: int = 0
    judgments: dict[str, int] = field(default_factory=dict)  # split -> judgments written
    judged_queries: dict[str, int] = field(default_factory=dict)  # split -> queries with a judgment

    def line(self) -> str:
        splits = ", ".join(f"{s} {self.judged_queries[s]} queries / {self.judgments[s]} judgments"
                           for s in self.judgments)
        return f"{self.folder}: {self.documents} documents, {self.queries} queries; qrels {splits}"


def recipe_for(spec: str) -> Recipe:
    name = spec[len(IRDS_PREFIX):] if spec.startswith(IRDS_PREFIX) else spec
    if name not in RECIPES:
        known = ", ".join(f"{IRDS_PREFIX}{k}" for k in RECIPES)
        raise UsageError(f"{spec}: no export recipe for this collection (known: {known})")
    return RECIPES[name]


def _ir_datasets() -> Any:
    try:
        import ir_datasets  # type: ignore[import-not-found]
    except ImportError:
        raise RdistillError("rdistill data export needs the ir_datasets package: pip install -e '.[irds]'") from None
    return ir_datasets


@contextlib.contextmanager
def _fetching(spec: str, quiet: bool) -> Iterator[None]:
    """ir_datasets' download failures (offline, a moved mirror) as one line that says what to do. With ``quiet``
    what it writes on stderr meanwhile (a log line for every retry of every mirror, progress bars) is dropped: the
    one line says what failed, and the summary what was written."""
    try:
        with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
            yield
    except (RuntimeError, OSError) as exc:
        text = str(exc.args[0]) if exc.args else str(exc)
        if not isinstance(exc, OSError) and "download" not in text.lower():
            raise  # not a fetch problem: a bug, keep the traceback
        raise RdistillError(f"{spec}: ir_datasets could not fetch the collection ({text}); run `rdistill data "
                            "export` once where the internet is reachable: it caches the files in "
                            "$IR_DATASETS_HOME (~/.ir_datasets) and reads them offline afterwards") from None


def _write_documents(out: TextIO, docs: Iterable[Any], recipe: Recipe) -> int:
    count = 0
    for doc in docs:
        title = recipe.clean(getattr(doc, "title", "") or "") if recipe.keep_title else ""
        out.write(orjson.dumps({"_id": str(doc.doc_id), "title": title, "text": recipe.clean(doc.text)}).decode())
        out.write("\n")
        count += 1
    return count


def _write_queries(out: TextIO, queries: Iterable[Any], recipe: Recipe) -> int:
    count = 0
    for query in queries:
        out.write(orjson.dumps({"_id": str(query.query_id), "text": recipe.clean(query.text)}).decode() + "\n")
        count += 1
    return count


def _route_qrels(recipe: Recipe, qrels: Iterable[Any], outs: dict[str, TextIO],
                 summary: ExportSummary, fixed_split: str | None) -> None:
    judged: dict[str, set[str]] = {s: set() for s in outs}
    for row in qrels:
        qid, did = str(row.query_id), str(row.doc_id)
        rel = recipe.relevance(int(row.relevance))
        if rel is None:
            continue
        split = fixed_split if fixed_split is not None else recipe.split_of(qid)  # type: ignore[misc]
        if split not in outs:
            continue
        outs[split].write(f"{qid}\t{did}\t{rel}\n")
        summary.judgments[split] = summary.judgments.get(split, 0) + 1
        judged[split].add(qid)
    for split, qids in judged.items():
        summary.judged_queries[split] = summary.judged_queries.get(split, 0) + len(qids)


def write_beir(folder: Path, recipe: Recipe, docs: Iterable[Any], queries: Iterable[Any],
               qrels: dict[str | None, Iterable[Any]]) -> ExportSummary:
    """Write a BEIR folder from ir_datasets-shaped records (``doc_id``/``title``/``text``, ``query_id``/``text``,
    ``query_id``/``doc_id``/``relevance``). ``qrels`` maps a split to its judgments, or ``None`` to judgments
    that ``recipe.split_of`` routes. Every file is written atomically, and all of them or none: a failure
    (a download that breaks half-way) leaves no file changed."""
    folder = Path(folder)
    summary = ExportSummary(folder)
    with contextlib.ExitStack() as stack:
        corpus = stack.enter_context(open_output(folder / "corpus.jsonl"))
        query_out = stack.enter_context(open_output(folder / "queries.jsonl"))
        outs = {s: stack.enter_context(open_output(folder / "qrels" / f"{s}.tsv")) for s in recipe.splits}
        for out in outs.values():
            out.write(QRELS_HEADER)
        summary.documents = _write_documents(corpus, docs, recipe)
        summary.queries = _write_queries(query_out, queries, recipe)
        for split, rows in qrels.items():
            _route_qrels(recipe, rows, outs if split is None else {split: outs[split]}, summary, split)
    for split in recipe.splits:
        summary.judgments.setdefault(split, 0)
        summary.judged_queries.setdefault(split, 0)
    return summary


def export(spec: str, folder: str | Path, quiet: bool = True) -> ExportSummary:
    """Export ``irds:beir/scifact``, ``irds:cranfield`` or ``irds:vaswani`` from ir_datasets into ``folder`` as a
    BEIR folder split as ../shared/data is (see the module docstring). Downloads on first use; ``quiet=False``
    keeps ir_datasets' own log."""
    recipe = recipe_for(spec)
    ir_datasets = _ir_datasets()
    with _fetching(spec, quiet):
        base = ir_datasets.load(recipe.dataset)
        qrels: dict[str | None, Iterable[Any]] = {}
        if recipe.qrels_from:
            for split in recipe.splits:
                qrels[split] = ir_datasets.load(recipe.qrels_from[split]).qrels_iter()
        else:
            qrels[None] = base.qrels_iter()
        return write_beir(Path(folder), recipe, base.docs_iter(), base.queries_iter(), qrels)
