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

from rdistill.errors import InputError, UsageError
from rdistill.io import check_id, iter_groups, iter_jsonl, open_binary, require, source_name
from rdistill.schema import Group, Qrels

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
    return {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in obj.items()}


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


def read_groups_file(source: str) -> Iterator[Group]:
    for _, group in iter_groups(source):
        yield group


def read_authors(source: str, scores: dict[str, dict[str, float]] | None, qrels: Qrels | None = None
                 ) -> Iterator[Group]:
    name = source_name(source)
    for lineno, obj in iter_jsonl(source):
        qid = require(obj, "query_id", name, lineno)
        positive = require(obj, "doc_id_a", name, lineno)
        negatives = _ids(require(obj, "doc_id_b", name, lineno, list), name, lineno, "doc_id_b")
        # Ids a TREC line or a groups reader would reject are refused here, so the writer never emits them.
        qid = check_id(qid, name, lineno, "field 'query_id'")
        doc_ids = [check_id(d, name, lineno, "a document id") for d in (positive, *negatives)]
        yield Group(qid, doc_ids, _labels(qrels, qid, doc_ids), _scores(scores, qid, doc_ids, name, lineno),
                    {"source": "authors-triples"})


def read_sentence_transformers(source: str, scores: dict[str, dict[str, float]] | None,
                               qrels: Qrels | None = None) -> Iterator[Group]:
    name = source_name(source)
    for lineno, obj in iter_jsonl(source):
        qid = require(obj, "qid", name, lineno)
        positives = _ids(require(obj, "pos", name, lineno, list), name, lineno, "pos")
        neg = require(obj, "neg", name, lineno, (dict, list))
        systems = sorted(neg.items()) if isinstance(neg, dict) else [("", neg)]
        pos_set = set(positives)
        negatives: dict[str, None] = {}
        for system, ids in systems:
            negatives.update(dict.fromkeys(d for d in _ids(ids, name, lineno, f"neg.{system}" if system else "neg")
                                           if d not in pos_set))
        meta = {"source": "sentence-transformers", "systems": [s for s, _ in systems if s]}
        for positive in positives:
            doc_ids = [positive, *negatives]
            yield Group(qid, doc_ids, _labels(qrels, qid, doc_ids), _scores(scores, qid, doc_ids, name, lineno),
                        meta)


# ----------------------------------------------------------------------------------------------------- writers


def authors_triple(group: Group) -> dict[str, Any]:
    return {"query_id": group.query_id, "doc_id_a": group.doc_ids[0], "doc_id_b": group.doc_ids[1:]}


def collect_scores(into: dict[str, dict[str, float]], group: Group) -> None:
    if group.scores is not None:
        into.setdefault(group.query_id, {}).update(zip(group.doc_ids, group.scores, strict=True))


def tevatron(group: Group, query: str, store: Any) -> dict[str, Any]:
    def passage(doc_id: str) -> dict[str, str]:
        doc = store.get(doc_id)
        return {"docid": doc.doc_id, "title": doc.title, "text": doc.text}

    return {"query_id": group.query_id, "query": query, "positive_passages": [passage(group.doc_ids[0])],
            "negative_passages": [passage(d) for d in group.doc_ids[1:]]}


def flagembedding(group: Group, query: str, store: Any, prompt: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {"query": query, "pos": [store.text(group.doc_ids[0])],
                              "neg": [store.text(d) for d in group.doc_ids[1:]]}
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
    if fmt == "groups":
        return read_groups_file(source)
    if fmt == "authors":
        return read_authors(source, scores, qrels)
    if fmt == "sentence-transformers":
        return read_sentence_transformers(source, scores, qrels)
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
            raise UsageError(f"query {qid!r} is not in {queries_name}")
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
