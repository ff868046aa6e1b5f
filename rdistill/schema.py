"""The one schema module: a record type per format, used by every reader and writer.

Field names here are the single source of truth. Ids are strings everywhere (TREC and BEIR ids such as "0001"
must not become numbers), scores are Python floats (float64).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

# A run in memory: query id -> {doc id -> score}. This is ranx's and pytrec_eval's layout, so no copy is needed
# to hand it to them.
Run = dict[str, dict[str, float]]
# Qrels in memory: query id -> {doc id -> relevance level}.
Qrels = dict[str, dict[str, int]]


class RunRow(NamedTuple):
    """One line of a TREC run: ``qid Q0 docno rank score tag``."""

    query_id: str
    doc_id: str
    rank: int
    score: float
    tag: str = "rdistill"


class RunTable:
    """A run as columns: the distinct query ids, and per line its query's index, document id and score.

    :func:`rdistill.io.read_run_table` reads a file into one without a Python dict per query; :meth:`from_run`
    converts a :data:`Run`. :func:`rdistill.evaluation.evaluate` takes either.
    """

    def __init__(self, queries: list[str], query_index: Any, docs: list[str], scores: Any) -> None:
        self.queries = queries
        self.query_index = query_index  # int64 per line
        self.docs = docs
        self.scores = scores  # float64 per line

    @classmethod
    def from_run(cls, run: Run) -> RunTable:
        import numpy as np

        docs: list[str] = []
        scores: list[float] = []
        sizes = []
        for ranked in run.values():
            docs.extend(ranked)
            scores.extend(ranked.values())
            sizes.append(len(ranked))
        index = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        return cls(list(run), index, docs, np.array(scores, dtype=np.float64))

    def __contains__(self, query_id: str) -> bool:
        return query_id in self.positions

    @property
    def positions(self) -> dict[str, int]:
        if not hasattr(self, "_positions"):
            self._positions = {q: i for i, q in enumerate(self.queries)}
        return self._positions


class QrelRow(NamedTuple):
    """One line of TREC qrels: ``qid iter docno rel`` (BEIR's ``query-id corpus-id score`` maps onto it)."""

    query_id: str
    doc_id: str
    relevance: int
    iteration: str = "0"


class Query(NamedTuple):
    """A query: BEIR's ``{"_id", "text"}``; MS MARCO TSV ``id<TAB>text``."""

    query_id: str
    text: str


class Document(NamedTuple):
    """A document: BEIR's ``{"_id", "title", "text"}``; MS MARCO TSV ``id<TAB>text``."""

    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """The text a model sees: title + " " + text when there is a title (BEIR's convention)."""
        return f"{self.title} {self.text}" if self.title else self.text


POSITIVE_KINDS = ("judged", "pseudo", "none")


class Group(NamedTuple):
    """A training group, one JSONL line of ``rdistill sample``: the positive(s) first, then negatives.

    ``scores`` holds the teacher's score for each document, or None for the whole group when no teacher scored it
    (labels-only training). ``meta`` records how the group was built (strategy, window, seed, ...).
    ``positives`` says what the labels are: ``judged`` (the default; column 0 is a positive from the qrels),
    ``pseudo`` (no judgments: the documents labelled 1, first in the list, are the teacher's top K) or ``none``
    (a positive-free list: every label 0, teacher scores only). A judged group is written without the field, so
    groups files from before it existed read and write unchanged.
    """

    query_id: str
    doc_ids: list[str]
    labels: list[int]
    scores: list[float] | None
    meta: dict[str, Any]
    positives: str = "judged"

    def record(self) -> dict[str, Any]:
        """The JSON object of the groups format: every field, ``positives`` only where it is not ``judged``."""
        obj = self._asdict()
        if self.positives == "judged":
            del obj["positives"]
        return obj


class EntropyRecord(NamedTuple):
    """One JSONL line of ``rdistill entropy``: the entropy of one query's teacher ranking."""

    query_id: str
    entropy: float
    n: int
    definition: str
    temperature: float


# The one finite-number check (NaN and infinities are refused everywhere: trec_eval and ranx silently mis-sort them).
is_finite = math.isfinite


def check_finite(score: float, what: str = "score") -> float:
    """Writers refuse NaN and infinities: trec_eval and ranx silently mis-sort them."""
    if not is_finite(score):
        raise ValueError(f"{what} {score!r} is not a finite number")
    return score


def as_id(value: Any) -> str | None:
    """The one id rule: ids are strings; a JSON number is read as the id it spells (``7`` is ``"7"``), lenient
    reading of files that wrote ids as numbers; anything else (bool, null, list, object) is not an id: None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
