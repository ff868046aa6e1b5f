"""Training data in other tools' formats, to and from rdistill's groups (``schema.Group``).

Read:
- the authors' triples: JSONL ``{"query_id", "doc_id_a": positive, "doc_id_b": [negatives]}`` plus their teacher
  scores as one JSON object ``{query_id: {doc_id: score}}``;
- sentence-transformers' hard negatives (msmarco-hard-negatives.jsonl): ``{"qid", "pos": [ids], "neg":
  {system: [ids]} or [ids]}``, one group per positive, the negatives of all systems in system-name order, deduplicated.
Write:
- the authors' triples and scores (back again, nothing lost but labels and meta, which their format lacks);
- Tevatron: ``{"query_id", "query", "positive_passages": [{"docid", "title", "text"}], "negative_passages": [...]}``;
- FlagEmbedding: ``{"query", "pos": [text], "neg": [texts], "pos_scores", "neg_scores", "prompt"}`` (scores only when
  the group has teacher scores).
Texts are joined from the corpus through :class:`rdistill.docstore.DocStore` (bounded memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from rdistill.errors import InputError, UsageError, note
from rdistill.io import check_group, check_id, iter_groups, iter_jsonl, open_binary, require, source_name
from rdistill.schema import Group, Qrels, is_finite

READ_FORMATS = ("groups", "authors", "sentence-transformers")
WRITE_FORMATS = ("groups", "authors", "tevatron", "flagembedding")


def _ids(value: Any, name: str, lineno: int, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise InputError(name, lineno, f"field {field!r} should be a list of document ids")
    return [str(v) for v in value]


def load_score_json(source: str) -> dict[str, dict[str, float]]:
    """The authors' ``{query_id: {doc_id: score}}`` (ids that were numbers become strings)."""
    name = source_name(source)
    with open_binary(source) as fh:
        try:
            obj = orjson.loads(fh.read())
        except orjson.JSONDecodeError as exc:
            raise InputError(name, None, f"invalid JSON ({exc})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, dict) for v in obj.values()):
        raise InputError(name, None, "expected one JSON object {query_id: {doc_id: score}}")
    table: dict[str, dict[str, float]] = {}
    for qid, docs in obj.items():
        row = table[str(qid)] = {}
        for doc, score in docs.items():
            value = _finite(score)
            if value is None:  # located by ids: the file is one JSON object, whose line says little
                raise InputError(name, None, f"query {qid!r}, document {doc!r}: expected a finite number as the "
                                 f"score, got {score!r}")
            row[str(doc)] = value
    if not table:
        raise InputError(name, None, "no scores: expected one JSON object {query_id: {doc_id: score}}")
    return table


def _finite(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (a string, null, a boolean, an int past float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if is_finite(number) else None


def _labels(qrels: Qrels | None, qid: str, doc_ids: list[str]) -> list[int]:
    """Qrels levels when given; otherwise the format's own meaning: the first document positive (1), the rest 0."""
    if qrels is not None:
        judged = qrels.get(qid, {})
        return [judged.get(d, 0) for d in doc_ids]
    return [1] + [0] * (len(doc_ids) - 1)


def _scores(scores: dict[str, dict[str, float]] | None, qid: str, doc_ids: list[str], name: str,
            lineno: int) -> list[float] | None:
    if scores is None:
        return None
    docs = scores.get(qid)
    missing = [d for d in doc_ids if docs is None or d not in docs]
    if missing:
        raise InputError(name, lineno, f"no teacher score for query {qid!r}, document {missing[0]!r} in the scores")
    return [docs[d] for d in doc_ids]  # type: ignore[index]


Located = Iterator[tuple[int, Group]]  # (line of the input the group came from, group)


def read_groups_file(source: str) -> Located:
    return iter_groups(source)


def read_authors(source: str, scores: dict[str, dict[str, float]] | None, qrels: Qrels | None = None
                 ) -> Located:
    name = source_name(source)
    for lineno, obj in iter_jsonl(source):
        qid = require(obj, "query_id", name, lineno)
        positive = require(obj, "doc_id_a", name, lineno)
        negatives = _ids(require(obj, "doc_id_b", name, lineno, list), name, lineno, "doc_id_b")
        # Ids a TREC line or a groups reader would reject are refused here, so the writer never emits them.
        qid = check_id(qid, name, lineno, "field 'query_id'")
        doc_ids = [check_id(d, name, lineno, "a document id") for d in (positive, *negatives)]
        yield lineno, _checked(Group(qid, doc_ids, _labels(qrels, qid, doc_ids),
                                     _scores(scores, qid, doc_ids, name, lineno), {"source": "authors-triples"}),
                               name, lineno, qrels)


def _checked(group: Group, name: str, lineno: int, qrels: Qrels | None) -> Group:
    """A group made from another format, held to what the groups reader accepts (so ``convert`` never writes a
    group that ``train`` refuses), with the blame on the input line it came from."""
    if qrels is not None and group.labels[0] <= 0:
        raise InputError(name, lineno, f"query {group.query_id!r}: the positive {group.doc_ids[0]!r} is judged "
                         f"{group.labels[0]} (not relevant, or not judged) in --qrels; a group starts with a positive")
    check_group(group, name, lineno)
    return group


def _counted(groups: Located, name: str, fmt: str) -> Located:
    """Refuse an input that gives no group at all: an empty file converted to an empty file says nothing."""
    n = 0
    for item in groups:
        n += 1
        yield item
    if n == 0:
        raise InputError(name, None, f"no groups: expected {fmt} records, one JSON object a line")


def read_sentence_transformers(source: str, scores: dict[str, dict[str, float]] | None,
                               qrels: Qrels | None = None) -> Located:
    name = source_name(source)
    no_positive = 0
    for lineno, obj in iter_jsonl(source):
        qid = check_id(require(obj, "qid", name, lineno), name, lineno, "field 'qid'")
        positives = _ids(require(obj, "pos", name, lineno, list), name, lineno, "pos")
        neg = require(obj, "neg", name, lineno, (dict, list))
        systems = sorted(neg.items()) if isinstance(neg, dict) else [("", neg)]
        pos_set = set(positives)
        negatives: dict[str, None] = {}
        for system, ids in systems:
            negatives.update(dict.fromkeys(d for d in _ids(ids, name, lineno, f"neg.{system}" if system else "neg")
                                           if d not in pos_set))
        meta = {"source": "sentence-transformers", "systems": [s for s, _ in systems if s]}
        if not positives:
            no_positive += 1  # one group per positive: none here (a documented rule, counted in a note)
        for positive in dict.fromkeys(positives):  # a positive listed twice gives its group once
            doc_ids = [check_id(d, name, lineno, "a document id") for d in (positive, *negatives)]
            yield lineno, _checked(Group(qid, doc_ids, _labels(qrels, qid, doc_ids),
                                         _scores(scores, qid, doc_ids, name, lineno), meta), name, lineno, qrels)
    if no_positive:
        note(f"{name}: {no_positive} line(s) list no positive ('pos': []) and give no group")


# ----------------------------------------------------------------------------------------------------- writers


def authors_triple(group: Group) -> dict[str, Any]:
    return {"query_id": group.query_id, "doc_id_a": group.doc_ids[0], "doc_id_b": group.doc_ids[1:]}


def collect_scores(into: dict[str, dict[str, float]], group: Group) -> None:
    if group.scores is not None:
        into.setdefault(group.query_id, {}).update(zip(group.doc_ids, group.scores, strict=True))


class MissingText(UsageError):
    """A query or document of a group without its text in --queries / --corpus: the caller names the group's
    line (see :func:`read_located`)."""


def _document(store: Any, doc_id: str) -> Any:
    doc = store.find(doc_id)
    if doc is None:
        raise MissingText(f"document {doc_id!r} is not in --corpus")
    return doc


def tevatron(group: Group, query: str, store: Any) -> dict[str, Any]:
    def passage(doc_id: str) -> dict[str, str]:
        doc = _document(store, doc_id)
        return {"docid": doc.doc_id, "title": doc.title, "text": doc.text}

    return {"query_id": group.query_id, "query": query, "positive_passages": [passage(group.doc_ids[0])],
            "negative_passages": [passage(d) for d in group.doc_ids[1:]]}


def flagembedding(group: Group, query: str, store: Any, prompt: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {"query": query, "pos": [_document(store, group.doc_ids[0]).full_text],
                              "neg": [_document(store, d).full_text for d in group.doc_ids[1:]]}
    if group.scores is not None:
        record["pos_scores"] = group.scores[:1]
        record["neg_scores"] = group.scores[1:]
    record["prompt"] = prompt
    return record


# ------------------------------------------------------------------------------------------------------ convert


def read(source: str, fmt: str = "groups", scores: dict[str, dict[str, float]] | None = None,
         qrels: Qrels | None = None) -> Iterator[Group]:
    """Groups from a training file in one of :data:`READ_FORMATS` (``scores`` and ``qrels`` attach teacher scores
    and labels to the formats that lack them)."""
    return (group for _, group in read_located(source, fmt, scores, qrels))


def read_located(source: str, fmt: str = "groups", scores: dict[str, dict[str, float]] | None = None,
                 qrels: Qrels | None = None) -> Located:
    """:func:`read` with the input line each group came from."""
    if fmt == "groups":
        return read_groups_file(source)
    if fmt == "authors":
        return _counted(read_authors(source, scores, qrels), source_name(source), "authors' triple")
    if fmt == "sentence-transformers":
        return _counted(read_sentence_transformers(source, scores, qrels), source_name(source),
                        "sentence-transformers hard-negative")
    raise UsageError(f"--from {fmt!r}: expected one of {', '.join(READ_FORMATS)}")


def convert(groups: Iterable[Group], to: str = "groups", *, queries: Mapping[str, str] | None = None,
            queries_name: str = "--queries", store: Any = None, prompt: str = "",
            scores_out: dict[str, dict[str, float]] | None = None) -> Iterator[dict[str, Any]]:
    """One record in format ``to`` (one of :data:`WRITE_FORMATS`) per group, in order.

    Tevatron and FlagEmbedding records carry texts: ``queries`` (id -> text) and ``store`` (a DocStore) give them.
    The authors' format keeps teacher scores apart: they are collected into ``scores_out``, which must be given
    when the groups carry any.
    """
    if to not in WRITE_FORMATS:
        raise UsageError(f"--to {to!r}: expected one of {', '.join(WRITE_FORMATS)}")
    query_text = queries or {}

    def text_of(qid: str) -> str:
        if qid not in query_text:
            raise MissingText(f"query {qid!r} is not in {queries_name}")
        return query_text[qid]

    for group in groups:
        if to == "groups":
            yield group.record()
        elif to == "authors":
            if group.scores is not None and scores_out is None:
                raise UsageError("the groups have teacher scores: give --scores-out FILE so they are kept")
            if scores_out is not None:
                collect_scores(scores_out, group)
            yield authors_triple(group)
        elif to == "tevatron":
            yield tevatron(group, text_of(group.query_id), store)
        else:
            yield flagembedding(group, text_of(group.query_id), store, prompt)
