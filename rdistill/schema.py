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


class Group(NamedTuple):
    """A training group, one JSONL line of ``rdistill sample``: the positive first, then negatives.

    ``scores`` holds the teacher's score for each document, or None for the whole group when no teacher scored it
    (labels-only training). ``meta`` records how the group was built (strategy, window, seed, ...).
    """

    query_id: str
    doc_ids: list[str]
    labels: list[int]
    scores: list[float] | None
    meta: dict[str, Any]


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
