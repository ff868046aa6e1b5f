"""Training groups by sampling source (the paper's random, bm25, teacher and ensemble sources).

A group is one positive from the qrels followed by G - 1 negatives, with the teacher's score for every document.
Every random choice comes from a ``random.Random`` seeded by a string of (seed, strategy, query id, positive id):
Python hashes string seeds with SHA-512, so the draws do not depend on PYTHONHASHSEED, on the machine, or on the
order in which queries or documents arrive. Candidates are put in a canonical order before drawing (a run's
documents in trec_eval's ranking order, the corpus in its docstore index order), and groups are written sorted by
(query id, positive id) through an external merge sort, so the output is byte-identical whatever the input order.

Memory: the run that drives the loop is streamed one query at a time (``iter_run_queries``). A second file (the
teacher's ``--scores``, or the other runs of an ensemble) is read in lockstep: when it lists the queries in the
same order, only the current query is held; a query it lists earlier than the driver is held until the driver
gets to it, so in the worst case (a completely different order) that file's judged queries are all held. Sorting
the output spills chunks to temporary files (``--sort-buffer``). What grows with the number of queries is the
qrels and the run reader's set of query ids seen (it refuses a query that comes back), which the strategies need.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TextIO

from rdistill.errors import UsageError
from rdistill.io import dumps, format_run_query, iter_run_queries, sort_query, source_name
from rdistill.schema import Group, Qrels

if TYPE_CHECKING:
    from rdistill.docstore import DocStore

DEFAULT_WINDOW = (1, 100)
MISSING_HINT = ("score the positives and every candidate with the teacher (rdistill score-teacher --qrels ...), or, "
                "for random and padding documents, score what `rdistill sample ... --emit-candidates` lists and "
                "pass that as --scores; --skip-missing skips such groups instead")


@dataclass(frozen=True)
class SampleConfig:
    """How groups are built; every field is recorded in each group's meta or the sidecar."""

    strategy: str = "window"
    group_size: int = 8
    window: tuple[int, int] = DEFAULT_WINDOW
    per_system: int = 10
    filter: bool = True
    margin: float = 0.5  # in the units of the teacher's scores x teacher_scale (a cross-encoder's logits: 1)
    teacher_scale: float = 1.0  # train's --teacher-scale: the filter compares raw scores to margin / teacher_scale
    one_per_query: bool = False
    include_labelled_positives: bool = False
    skip_missing: bool = False
    min_relevance: int = 1
    seed: int = 42
    attach_scores: bool = True  # False: groups carry "scores": null (labels-only training)
    emit_candidates: bool = False  # list every document a group could hold, as a run, instead of groups
    # sentence-transformers' positive-aware filter: drop a negative scoring above p - |p| * R, p the lowest positive
    # score; None: off. Recorded in the meta only when set, so groups sampled without it stay byte-identical.
    relative_margin: float | None = None
    positives: str = "judged"  # judged (the qrels), teacher:K (the teacher's top K are pseudo-positives) or none

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"--strategy {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if self.group_size < 2:
            raise UsageError("--group-size must be at least 2 (a positive and a negative)")
        a, b = self.window
        if not 1 <= a <= b:
            raise UsageError(f"--window {a}:{b}: expected 1 <= A <= B (ranks, 1-based, inclusive)")
        if self.per_system < 1:
            raise UsageError("--per-system must be at least 1")
        if self.min_relevance < 1:  # a positive of grade 0 would open a group that train's reader refuses
            raise UsageError(f"--min-relevance {self.min_relevance}: a positive needs a grade of at least 1 (a "
                             "group's first label must be above 0)")
        if not (self.teacher_scale > 0 and math.isfinite(self.teacher_scale)):
            raise UsageError("--teacher-scale must be a positive finite number")
        r = self.relative_margin
        if r is not None and not (0 < r < 1):
            raise UsageError(f"--relative-margin {r!r}: expected 0 < R < 1 (the fraction of the positive's score a "
                             "negative must stay below it; sentence-transformers recommends 0.05)")
        if r is not None and not self.kind.filters:
            takes = ", ".join(n for n, s in STRATEGIES.items() if s.filters)
            raise UsageError(f"--relative-margin filters a ranking's candidates: --strategy {takes}, not "
                             f"{self.strategy}")
        mode, k = self.positive_mode
        if mode == "pseudo" and k >= self.group_size:
            raise UsageError(f"--positives teacher:{k} leaves no negative in a group of --group-size "
                             f"{self.group_size}: K must be below G")
        if mode == "none" and r is not None:
            raise UsageError("--relative-margin compares negatives with a positive's score: it does not apply to "
                             "--positives none")
        if mode == "none" and "filter" in self.kind.options and self.filter:
            raise UsageError("--positives none: the ensemble's filter compares negatives with a positive's score; "
                             "add --no-filter")
        if mode != "judged" and (self.one_per_query or self.include_labelled_positives):
            raise UsageError("--one-per-query and --include-labelled-positives are about judged positives: they "
                             f"do not apply to --positives {self.positives}")
        if self.kind.strata and not self.emit_candidates:
            a, b = self.window
            if b - a + 1 < self.negatives_needed:
                raise UsageError(f"--strategy {self.strategy} takes {self.negatives_needed} documents from "
                                 f"--window {a}:{b}, which holds {b - a + 1} ranks: widen the window or lower "
                                 "--group-size")

    @property
    def positive_mode(self) -> tuple[str, int]:
        """(judged | pseudo | none, K): what the groups' positives are, and how many (K for pseudo, else 0)."""
        return parse_positives(self.positives)

    @property
    def negatives_needed(self) -> int:
        """The documents a strategy draws for one group: G - 1 beside a judged positive, G - K beside K pseudo
        ones, G in a positive-free list."""
        mode, k = self.positive_mode
        return self.group_size - (1 if mode == "judged" else k)

    @property
    def raw_margin(self) -> float:
        """The filter's margin in the teacher's raw score units: the paper's 0.5 is for a cross-encoder's
        log-probabilities, and train multiplies other teachers' scores by --teacher-scale to reach that scale."""
        return self.margin / self.teacher_scale

    @property
    def kind(self) -> Strategy:
        return STRATEGIES[self.strategy]

    def check_inputs(self, runs: list[str], scores: str | None) -> None:
        """The run arguments and --scores this strategy can use (``runs`` already defaulted to stdin where the
        strategy reads a ranking). Every rule comes from the strategy's row in :data:`STRATEGIES`."""
        kind, name = self.kind, self.strategy
        if kind.max_runs is not None and len(runs) > kind.max_runs:
            if not kind.reads_runs:
                raise UsageError(f"--strategy {name} takes at most one run (its scores are attached)")
            pooled = " or ".join(n for n, s in STRATEGIES.items() if s.max_runs is None)
            raise UsageError(f"--strategy {name} takes one run; several runs are for --strategy {pooled}")
        if kind.reads_runs and not kind.stdin and not runs:
            raise UsageError(f"--strategy {name} needs the runs to pool as arguments: RUN1 RUN2 ..."
                             if kind.max_runs is None else f"--strategy {name} needs a run as an argument")
        reason = kind.needs_scores(self)
        if reason is not None and scores is None and not self.emit_candidates:
            raise UsageError(reason)
        if len(set(runs)) != len(runs):
            raise UsageError("a run is named twice (stdin can be read only once)")
        if scores is not None and not self.attach_scores:
            raise UsageError("--scores and --no-scores contradict each other")
        mode, _ = self.positive_mode
        if mode != "judged" and not runs and scores is None:
            raise UsageError(f"--positives {self.positives}: without --qrels the training queries are those of a "
                             "run: give a run (or --scores)")
        if self.emit_candidates:
            return
        if mode != "judged" and not self.attach_scores:
            raise UsageError(f"--positives {self.positives}: the groups' labels come from the teacher's scores, "
                             "which --no-scores drops")
        if self.relative_margin is not None and not self.attach_scores:
            raise UsageError("--relative-margin compares the teacher's scores, which --no-scores drops")
        own = kind.own_scores and bool(runs)
        if mode != "judged" and scores is None and not own:
            raise UsageError(f"--positives {self.positives} without --qrels needs the teacher's scores: --scores "
                             "FILE" + (" (or a scored run as the argument)" if kind.own_scores else ""))

    def meta(self) -> dict[str, object]:
        """What each group records of how it was built: strategy, seed and the options its strategy owns."""
        meta: dict[str, object] = {"strategy": self.strategy, "seed": self.seed}
        for option in self.kind.options:
            value = getattr(self, option)
            meta[option] = ":".join(map(str, value)) if isinstance(value, tuple) else value
        # Only when set: groups sampled as before stay byte-identical.
        if self.relative_margin is not None:
            meta["relative_margin"] = self.relative_margin
        if self.positives != "judged":
            meta["positives"] = self.positives
        return meta


def parse_positives(text: str) -> tuple[str, int]:
    """``judged`` | ``teacher:K`` (K >= 1) | ``none`` -> (judged | pseudo | none, K)."""
    if text in ("judged", "none"):
        return text, 0
    name, _, count = text.partition(":")
    if name == "teacher" and count.isdigit() and int(count) >= 1:
        return "pseudo", int(count)
    raise UsageError(f"--positives {text!r}: expected judged (the qrels), teacher:K (the teacher's top K, K >= 1, "
                     "e.g. teacher:1) or none")


def parse_window(text: str) -> tuple[int, int]:
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise UsageError(f"--window {text!r}: expected A:B, e.g. 1:100 (ranks, 1-based, inclusive)") from None
    return a, b


@dataclass
class SampleStats:
    """Counts reported on stderr after a run, so that skipped work is never silent."""

    queries: int = 0
    groups: int = 0
    too_few: int = 0
    missing_groups: int = 0
    unjudged: int = 0
    absent: int = 0
    filtered: int = 0
    padded: int = 0
    pending_peak: int = 0
    emitted: bool = False
    too_few_ids: list[str] = field(default_factory=list)
    relative: bool = False  # --relative-margin was on (the summary names it)
    # Negatives it dropped, counted as each group is drawn: a group then skipped for too few candidates counts too.
    relative_filtered: int = 0

    def summary(self) -> str:
        parts = [f"candidates of {self.queries} queries" if self.emitted else
                 f"{self.groups} groups from {self.queries} queries"]
        if self.too_few:
            shown = ", ".join(self.too_few_ids[:5]) + (", ..." if self.too_few > 5 else "")
            parts.append(f"{self.too_few} queries skipped: too few candidates ({shown})")
        if self.missing_groups:
            parts.append(f"{self.missing_groups} groups skipped: a document without a teacher score")
        if self.unjudged:
            parts.append(f"{self.unjudged} run queries without a judged positive ignored")
        if self.absent:
            parts.append(f"{self.absent} judged queries absent from the input")
        if self.relative:
            parts.append(f"{self.relative_filtered} negatives dropped by the relative margin")
        if self.filtered or self.padded:
            parts.append(f"{self.filtered} negatives dropped by the filter, {self.padded} random documents padded")
        return "sample: " + "; ".join(parts)


class MissingScore(Exception):
    def __init__(self, query_id: str, doc_id: str) -> None:
        super().__init__(query_id, doc_id)
        self.query_id = query_id
        self.doc_id = doc_id


class LockstepRun:
    """A run read alongside another one: queries it lists ahead of the asking order wait in ``pending``."""

    def __init__(self, source: str, keep: Positives | set[str] | None) -> None:
        self.name = source_name(source)
        self._it = iter_run_queries(source)
        self._keep = keep
        self.pending: dict[str, dict[str, float]] = {}
        self.pending_peak = 0

    def get(self, qid: str) -> dict[str, float] | None:
        if qid in self.pending:
            return self.pending.pop(qid)
        for other, docs in self._it:
            if other == qid:
                return docs
            if self._keep is None or other in self._keep:
                self.pending[other] = docs
                self.pending_peak = max(self.pending_peak, len(self.pending))
        return None

    def rest(self) -> Iterator[tuple[str, dict[str, float]]]:
        """What the asking side never asked for: the held queries, then the unread ones."""
        for qid in sorted(self.pending):
            yield qid, self.pending.pop(qid)
        for qid, docs in self._it:
            if self._keep is None or qid in self._keep:
                yield qid, docs


class CorpusIds:
    """Uniform draws of document ids from a corpus, in the docstore's canonical order (no id list in memory)."""

    def __init__(self, corpus: str | DocStore) -> None:
        from rdistill.docstore import DocStore

        self.store = corpus if isinstance(corpus, DocStore) else DocStore(corpus)
        self.spec = self.store.spec
        self.size = len(self.store)
        self._ids: list[str] | None = None
        if not self.store.positional:  # no offset index: hold the sorted ids instead
            self._ids = sorted(doc.doc_id for doc in self.store)

    def at(self, index: int) -> str:
        return self._ids[index] if self._ids is not None else self.store.id_at(index)

    def stream(self, rng: random.Random) -> Iterator[str]:
        """Distinct ids in a random order (draws with rejection: the corpus is much larger than a group)."""
        seen: set[str] = set()
        while len(seen) < self.size:
            doc = self.at(rng.randrange(self.size))
            if doc not in seen:
                seen.add(doc)
                yield doc

    def take(self, rng: random.Random, count: int, exclude: set[str]) -> list[str]:
        out: list[str] = []
        if count <= 0:
            return out
        for doc in self.stream(rng):
            if doc not in exclude:
                out.append(doc)
                if len(out) == count:
                    break
        return out


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


class Positives:
    """Each judged query's positives, read from the qrels when asked: no second copy of the qrels in memory."""

    def __init__(self, qrels: Qrels, min_relevance: int) -> None:
        self.qrels = qrels
        self.min_relevance = min_relevance

    def __contains__(self, qid: object) -> bool:
        docs = self.qrels.get(qid) if isinstance(qid, str) else None
        return docs is not None and any(r >= self.min_relevance for r in docs.values())

    def __getitem__(self, qid: str) -> dict[str, int]:
        return {d: r for d, r in self.qrels[qid].items() if r >= self.min_relevance}

    def __iter__(self) -> Iterator[str]:
        return (q for q in self.qrels if q in self)


class Sampler:
    """Builds the groups of one query at a time; ``groups`` and ``candidates`` are the two outputs."""

    def __init__(self, config: SampleConfig, qrels: Qrels, corpus: CorpusIds | None = None) -> None:
        self.cfg = config
        self.qrels = qrels
        self.positives = Positives(qrels, config.min_relevance)
        self.corpus = corpus
        self.stats = SampleStats()
        if config.kind.draws_corpus and corpus is None:
            raise UsageError(f"--strategy {config.strategy} draws random documents: give --corpus")

    # -------------------------------------------------------------------------------------------- positives
    def chosen_positives(self, qid: str) -> list[str]:
        docs = sorted(self.positives[qid])
        if self.cfg.one_per_query:
            return [_rng(self.cfg.seed, "positive", qid).choice(docs)]
        return docs

    def excluded(self, qid: str, positive: str) -> set[str]:
        if self.cfg.include_labelled_positives:
            return {positive}
        return set(self.positives[qid]) | {positive}

    def window_pool(self, ranking: dict[str, float] | None, exclude: set[str]) -> list[str]:
        if not ranking:
            return []
        a, b = self.cfg.window
        return [d for d, _ in sort_query(ranking)[a - 1:b] if d not in exclude]

    # --------------------------------------------------------------------------------------------- negatives
    def negatives(self, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
        """The negatives of one group (or, with ``q.emit``, every document the group could hold); None: too few."""
        return self.cfg.kind.draw(self, q)

    # ------------------------------------------------------------------------------------------------ groups
    def groups(self, qid: str, runs: list[dict[str, float] | None], scores: dict[str, float] | None,
               attach: bool) -> list[Group]:
        """The groups of one query (``attach``: scores are expected; ``scores`` None then means all missing)."""
        if self.cfg.positive_mode[0] != "judged":
            return self.label_free_groups(qid, runs, scores)
        if qid not in self.positives:
            self.stats.unjudged += 1
            return []
        self.stats.queries += 1
        out: list[Group] = []
        too_few = False
        judged = self.qrels.get(qid, {})
        for positive in self.chosen_positives(qid):
            try:
                found = self.negatives(QueryInputs(qid, positive, runs, scores, self.excluded(qid, positive),
                                                   False, tuple(sorted(self.positives[qid])),
                                                   self.cfg.negatives_needed))
                if found is None:
                    too_few = True
                    continue
                negatives, extra = found
                doc_ids = [positive, *negatives]
                group_scores = [_score(scores, qid, d) for d in doc_ids] if attach else None
            except MissingScore as missing:
                if not self.cfg.skip_missing:
                    source = "the teacher scores" if scores is not None else "the scores (query absent)"
                    raise UsageError(f"no teacher score for query {missing.query_id!r}, document "
                                     f"{missing.doc_id!r} in {source}: {MISSING_HINT}") from None
                self.stats.missing_groups += 1
                continue
            self.stats.filtered += extra.get("filtered", 0)
            self.stats.padded += extra.get("padded", 0)
            meta = self.cfg.meta()
            meta.update(extra)
            out.append(Group(qid, doc_ids, [judged.get(d, 0) for d in doc_ids], group_scores, meta))
        if too_few and not out:
            self.stats.too_few += 1
            self.stats.too_few_ids.append(qid)
        self.stats.groups += len(out)
        return out

    def label_free_groups(self, qid: str, runs: list[dict[str, float] | None], scores: dict[str, float] | None
                          ) -> list[Group]:
        """One group of a query without judgments: the teacher's top K (``teacher:K``, labels 1) then negatives,
        or (``none``) G documents, every label 0. Ties in the teacher's scores fall in trec_eval's order (doc id
        descending), so the top K is always the same K."""
        mode, k = self.cfg.positive_mode
        self.stats.queries += 1
        try:
            if scores is None:
                raise MissingScore(qid, "(every document)")
            positives = tuple(d for d, _ in sort_query(scores)[:k])
            found = None
            if len(positives) == k:  # fewer scored documents than K: too few, like a short window
                found = self.negatives(QueryInputs(qid, positives[0] if positives else "", runs, scores,
                                                   set(positives), False, positives, self.cfg.negatives_needed))
            if found is None:
                self.stats.too_few += 1
                self.stats.too_few_ids.append(qid)
                return []
            negatives, extra = found
            doc_ids = [*positives, *negatives]
            group_scores = [_score(scores, qid, d) for d in doc_ids]
        except MissingScore as missing:
            if not self.cfg.skip_missing:
                raise UsageError(f"no teacher score for query {missing.query_id!r}, document {missing.doc_id!r} in "
                                 f"the teacher scores: {MISSING_HINT}") from None
            self.stats.missing_groups += 1
            return []
        self.stats.filtered += extra.get("filtered", 0)
        self.stats.padded += extra.get("padded", 0)
        meta = self.cfg.meta()
        meta.update(extra)
        self.stats.groups += 1
        return [Group(qid, doc_ids, [1] * k + [0] * len(negatives), group_scores, meta,
                      "pseudo" if mode == "pseudo" else "none")]

    def candidates(self, qid: str, runs: list[dict[str, float] | None]) -> list[str]:
        """Every document a group of this query could hold, for the teacher to score (``--emit-candidates``)."""
        if self.cfg.positive_mode[0] != "judged":
            # The pseudo-positives are not known before the teacher scores: list what a positive-free list of G
            # could hold, a superset (at most K of them become positives, and a random stream skips at most K).
            self.stats.queries += 1
            found = self.negatives(QueryInputs(qid, "", runs, None, set(), True, (), self.cfg.group_size))
            return found[0] if found is not None else []
        if qid not in self.positives:
            return []
        self.stats.queries += 1
        docs: dict[str, None] = dict.fromkeys(sorted(self.positives[qid]))
        for positive in self.chosen_positives(qid):
            found = self.negatives(QueryInputs(qid, positive, runs, None, self.excluded(qid, positive), True,
                                               tuple(sorted(self.positives[qid])), self.cfg.negatives_needed))
            if found is not None:
                docs.update(dict.fromkeys(found[0]))
        return list(docs)


def _score(scores: dict[str, float] | None, qid: str, doc: str) -> float:
    if scores is None or doc not in scores:
        raise MissingScore(qid, doc)
    return scores[doc]


# -------------------------------------------------------------------------------------------------- strategies


class QueryInputs(NamedTuple):
    """What a strategy sees for one group: its query and positive, the query's rankings (one per run; None where a
    run lacks the query), the teacher's scores (None: none for this query), the documents never to draw."""

    query_id: str
    positive: str
    rankings: list[dict[str, float] | None]
    scores: dict[str, float] | None
    exclude: set[str]
    emit: bool  # every document the group could hold, not a draw (--emit-candidates)
    # The positives a filter compares negatives with: the query's judged positives, or the teacher's top K; none
    # in a positive-free list.
    positives: tuple[str, ...] = ()
    need: int = 0  # the documents to draw (G - 1 beside a judged positive; see SampleConfig.negatives_needed)


Draw = Callable[["Sampler", QueryInputs], "tuple[list[str], dict[str, int]] | None"]


class Strategy(NamedTuple):
    """A sampling source: one row holds everything the code asks of a strategy's name (the checks, the meta, the
    command's help), so a new source is one draw function and one row of :data:`STRATEGIES`."""

    draw: Draw
    help: str  # its entry under "Strategies" in `rdistill sample --help` (a newline starts an indented line)
    reads_runs: bool  # draws from rankings (the driving run on stdin or as arguments); random reads none
    max_runs: int | None  # run arguments it takes: 1, or None for any number (an ensemble's pool)
    stdin: bool  # with no run argument, the (one) ranking is read from stdin
    draws_corpus: bool  # draws random documents from --corpus
    own_scores: bool  # without --scores, attaches the driving run's own scores
    options: tuple[str, ...] = ()  # the SampleConfig fields it uses beyond the shared ones; recorded in the meta
    # Why this configuration needs the teacher's --scores (None: it does not); --emit-candidates never does.
    needs_scores: Callable[[SampleConfig], str | None] = lambda config: None
    filters: bool = False  # takes --relative-margin (filters a ranking's candidates against the positive)
    strata: bool = False  # takes exactly G-1 of the window (stratified, top): a window narrower than that is refused


def _draw_random(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
    cfg, need = s.cfg, q.need
    assert s.corpus is not None
    if s.corpus.size - len(q.exclude) < need:
        return None
    # Fixed per query: every group of the query walks the same stream and skips only its own positive.
    return s.corpus.take(_rng(cfg.seed, "random", q.query_id), need, q.exclude), {}


def _draw_window(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
    cfg, need = s.cfg, q.need
    pool = s.window_pool(q.rankings[0], q.exclude)
    pool, extra = _relative_filter(s, q, pool)
    if len(pool) < need:
        return None
    return (pool if q.emit else _rng(cfg.seed, cfg.strategy, q.query_id, q.positive).sample(pool, need)), extra


def _relative_filter(s: Sampler, q: QueryInputs, pool: list[str]) -> tuple[list[str], dict[str, int]]:
    """sentence-transformers' relative margin: keep a negative only if it scores at most p - |p| * R, p the lowest
    positive score (p (1 - R) for the non-negative similarities it is meant for). Defined only when p >= 0: on a
    scale where the positive scores below zero (log-probabilities, logits) "R of the positive's score" means
    nothing, so that query stops the run with one line. Scale-free: train's --teacher-scale does not change it."""
    r = s.cfg.relative_margin
    if r is None or q.emit:
        return pool, {}
    qid = q.query_id
    if q.scores is None:
        raise MissingScore(qid, q.positive)
    floor = min(_score(q.scores, qid, p) for p in q.positives)
    if floor < 0:
        lowest = min(q.positives, key=lambda p: (_score(q.scores, qid, p), p))
        raise UsageError(f"--relative-margin: query {qid!r}, positive {lowest!r} scores {floor!r} < 0: the relative "
                         "margin is defined for non-negative similarities (fused scores, cosines); for "
                         "log-probabilities or logits use --strategy ensemble --margin")
    threshold = floor - abs(floor) * r
    kept = [d for d in pool if _score(q.scores, qid, d) <= threshold]
    s.stats.relative_filtered += len(pool) - len(kept)
    return kept, {"relative_filtered": len(pool) - len(kept)}


def _ranked_by_scores(q: QueryInputs, pool: list[str]) -> list[str]:
    """The pool in the teacher's order (score descending, ties by doc id as trec_eval breaks them); without
    scores (--no-scores), the ranking's own order, which the pool already has."""
    if q.scores is None:
        return pool
    return [d for d, _ in sort_query({d: _score(q.scores, q.query_id, d) for d in pool})]


def _draw_stratified(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
    """One document uniform from each of ``need`` equal-size strata of the window by teacher score: the
    candidates (after the filter) in the teacher's order, stratum i holding positions [i n / need, (i+1) n / need).
    Each stratum is non-empty whenever n >= need."""
    cfg, need = s.cfg, q.need
    pool = s.window_pool(q.rankings[0], q.exclude)
    pool, extra = _relative_filter(s, q, pool)
    if len(pool) < need:
        return None
    if q.emit:
        return pool, {}
    ranked = _ranked_by_scores(q, pool)
    rng = _rng(cfg.seed, cfg.strategy, q.query_id, q.positive)
    n = len(ranked)
    return [ranked[rng.randrange(i * n // need, (i + 1) * n // need)] for i in range(need)], extra


def _draw_top(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
    """The ``need`` best of the window by teacher score after the filter: no draw, hence no seed."""
    pool = s.window_pool(q.rankings[0], q.exclude)
    pool, extra = _relative_filter(s, q, pool)
    if len(pool) < q.need:
        return None
    return (pool if q.emit else _ranked_by_scores(q, pool)[:q.need]), extra


def _draw_ensemble(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]]:
    cfg, need = s.cfg, q.need
    qid, positive = q.query_id, q.positive
    union: dict[str, None] = {}
    for i, ranking in enumerate(q.rankings):
        pool = s.window_pool(ranking, q.exclude)
        take = min(cfg.per_system, len(pool))
        union.update(dict.fromkeys(_rng(cfg.seed, "ensemble", qid, positive, i).sample(pool, take)))
    pool = list(union)
    filtered = 0
    if cfg.filter and not q.emit:
        if q.scores is None:
            raise MissingScore(qid, positive)
        threshold = min(_score(q.scores, qid, p) for p in q.positives) - cfg.raw_margin
        kept = [d for d in pool if _score(q.scores, qid, d) <= threshold]
        filtered = len(pool) - len(kept)
        pool = kept
    relative: dict[str, int] = {}
    if cfg.relative_margin is not None and not q.emit:
        pool, relative = _relative_filter(s, q, pool)
    if len(pool) > need and not q.emit:
        pool = _rng(cfg.seed, "ensemble-pick", qid, positive).sample(pool, need)
    # Padding skips every document the runs offered (kept or filtered), so it never depends on teacher scores
    # and --emit-candidates can list it exactly.
    assert s.corpus is not None
    pad = s.corpus.take(_rng(cfg.seed, "pad", qid), need if q.emit else need - len(pool), q.exclude | set(union))
    return pool + pad, {"filtered": filtered, "padded": 0 if q.emit else len(pad), **relative}


def _filter_needs_scores(config: SampleConfig) -> str | None:
    if not config.filter:
        return None
    return "the ensemble's false-negative filter needs the teacher's scores: --scores FILE (or --no-filter)"


# The sampling sources by name (the paper's random, bm25 = window over a BM25 run, cross-encoder = teacher, and
# ensemble), in the order `rdistill sample --help` lists them. A new source is one function and one row here.
STRATEGIES: dict[str, Strategy] = {
    "random": Strategy(
        _draw_random, 'G-1 documents uniform from the whole --corpus, fixed per query (source "random"); stdin\n'
        "is not read: teacher scores come from --scores, else the groups carry none.",
        reads_runs=False, max_runs=1, stdin=False, draws_corpus=True, own_scores=True),
    "window": Strategy(
        _draw_window, 'G-1 uniform from ranks A:B of the run (source "bm25" over a BM25 run; the paper: 1:100 of 200).',
        reads_runs=True, max_runs=1, stdin=True, draws_corpus=False, own_scores=True, options=("window",),
        filters=True),
    "teacher": Strategy(
        _draw_window, 'the same over the teacher\'s re-ranking of {positives} + BM25 (source "cross-encoder").',
        reads_runs=True, max_runs=1, stdin=True, draws_corpus=False, own_scores=True, options=("window",),
        filters=True),
    "stratified": Strategy(
        _draw_stratified, "ranks A:B of the run, in the teacher's score order (--scores, else the run's own), cut\n"
        "into G-1 equal-size strata (stratum i: positions [i n/(G-1), (i+1) n/(G-1)) of the\n"
        "n candidates); one negative uniform from each.",
        reads_runs=True, max_runs=1, stdin=True, draws_corpus=False, own_scores=True, options=("window",),
        filters=True, strata=True),
    "top": Strategy(
        _draw_top, "the G-1 best of ranks A:B by the teacher's score (else the run's order), after the filter.",
        reads_runs=True, max_runs=1, stdin=True, draws_corpus=False, own_scores=True, options=("window",),
        filters=True, strata=True),
    "ensemble": Strategy(
        _draw_ensemble, "at most --per-system from ranks A:B of each RUN; drop negatives scoring above min(positive\n"
        "score) - --margin / --teacher-scale (RocketQA's false-negative filter;\n"
        "--no-filter skips it); pad with random documents from --corpus.",
        reads_runs=True, max_runs=None, stdin=False, draws_corpus=True, own_scores=False,
        options=("window", "per_system", "filter", "margin", "teacher_scale"), needs_scores=_filter_needs_scores,
        filters=True),
}


def strategies_help(indent: str = "") -> str:
    """The "Strategies" paragraph of `rdistill sample --help`, one entry a row of :data:`STRATEGIES`."""
    width = max(map(len, STRATEGIES)) + 2
    lines = []
    for name, row in STRATEGIES.items():
        first, *rest = row.help.split("\n")
        lines.append(f"{indent}  {name:<{width}}{first}")
        lines += [f"{indent}  {'':<{width}}{line}" for line in rest]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- driving


class Candidates(NamedTuple):
    """Every document the groups of one query could hold (``--emit-candidates``), written as a run."""

    query_id: str
    doc_ids: list[str]


class _Aligned(NamedTuple):
    query_id: str
    first: dict[str, float] | None  # the driving run's documents; None for a query only another run lists
    others: list[dict[str, float] | None]  # each other run's (an ensemble's second and later runs)
    scores: dict[str, float] | None  # the teacher's (--scores), when read alongside


def _aligned(primary: Iterable[tuple[str, dict[str, float]]], others: list[LockstepRun],
             teacher: LockstepRun | None) -> Iterator[_Aligned]:
    """The primary's queries with the other runs' and the teacher's documents for them, then the queries only the
    other runs list (the teacher's own extra queries are never driven)."""
    def teacher_docs(qid: str) -> dict[str, float] | None:
        return teacher.get(qid) if teacher is not None else None

    done: set[str] = set()
    for qid, docs in primary:
        if others:  # only then can a query come back from another run
            done.add(qid)
        yield _Aligned(qid, docs, [o.get(qid) for o in others], teacher_docs(qid))
    for i, other in enumerate(others):
        for qid, docs in other.rest():
            if qid in done:
                continue
            done.add(qid)
            yield _Aligned(qid, None, [o.get(qid) if j != i else docs for j, o in enumerate(others)],
                           teacher_docs(qid))


def sample(config: SampleConfig, qrels: Qrels, runs: list[str], scores: str | None, corpus: CorpusIds | None
           ) -> tuple[Iterator[Group | Candidates], Sampler]:
    """Yield each group (or, with ``config.emit_candidates``, each query's :class:`Candidates`), unsorted.

    ``runs``: the ranking(s): one for window/teacher, several for ensemble, none or one (scores only) for random.
    ``scores``: a run whose scores are attached and filtered on; None attaches the first run's own scores
    (window/teacher/random) or none at all (ensemble, or ``config.attach_scores`` False).
    """
    sampler = Sampler(config, qrels, corpus)
    sampler.stats.emitted = config.emit_candidates
    sampler.stats.relative = config.relative_margin is not None
    # Without judgments every query of the driving run is a training query, so the lockstep readers hold any.
    label_free = config.positive_mode[0] != "judged"
    keep = sampler.positives
    held: Positives | None = None if label_free else keep
    kind = config.kind

    def generate() -> Iterator[Group | Candidates]:
        score_reader = LockstepRun(scores, held) if scores is not None else None
        teacher: LockstepRun | None = None
        readers: list[LockstepRun] = []
        if not kind.reads_runs:  # the driving "run" is the teacher's scores, a run's, or the judged queries
            if score_reader is not None:
                primary: Iterable[tuple[str, dict[str, float]]] = _drain_then_judged(score_reader, keep)
            elif runs:
                primary = _with_judged(iter_run_queries(runs[0]), keep)
            else:
                primary = ((q, {}) for q in sorted(keep))
            use_own = config.attach_scores and (score_reader is not None or bool(runs))
        else:
            if not runs:
                raise UsageError(f"--strategy {config.strategy} needs a run (on stdin or as an argument)")
            primary = iter_run_queries(runs[0])
            readers = [LockstepRun(r, held) for r in runs[1:]]
            teacher = score_reader
            use_own = config.attach_scores and score_reader is None and kind.own_scores
        has_scores = config.attach_scores and (score_reader is not None or use_own)
        processed = 0
        for row in _aligned(primary, readers, teacher):
            qid = row.query_id
            processed += qid in keep
            rankings = [row.first, *row.others] if kind.reads_runs else []
            query_scores = row.scores if teacher is not None else (row.first if use_own else None)
            if config.emit_candidates:
                docs = sampler.candidates(qid, rankings)
                if docs:
                    yield Candidates(qid, docs)
                continue
            yield from sampler.groups(qid, rankings, query_scores, has_scores)
        sampler.stats.absent = sum(1 for _ in keep) - processed
        sampler.stats.pending_peak = max([r.pending_peak for r in readers + ([teacher] if teacher else [])] + [0])

    return generate(), sampler


def _with_judged(run: Iterator[tuple[str, dict[str, float]]], keep: Positives
                 ) -> Iterator[tuple[str, dict[str, float]]]:
    """The run's queries, then the judged queries it lacks (their scores are then missing)."""
    seen: set[str] = set()
    for qid, docs in run:
        seen.add(qid)
        yield qid, docs
    for qid in sorted(q for q in keep if q not in seen):
        yield qid, {}


def _drain_then_judged(reader: LockstepRun, keep: Positives) -> Iterator[tuple[str, dict[str, float]]]:
    return _with_judged(reader.rest(), keep)


# ----------------------------------------------------------------------------------------------- sorted output


def serialise(record: Group | Candidates) -> tuple[tuple[str, str], str]:
    """(sort key, text) of one output record: a group's JSON line, or a query's candidates as TREC lines."""
    if isinstance(record, Candidates):
        return (record.query_id, ""), format_run_query(record.query_id, dict.fromkeys(record.doc_ids, 0.0),
                                                       "candidates")
    return (record.query_id, record.doc_ids[0]), dumps(record.record()) + "\n"


def write_groups(out: TextIO, records: Iterable[Group | Candidates], chunk_bytes: int = 64 << 20) -> int:
    """Write :func:`sample`'s records sorted by (query id, positive id): the output order never depends on the
    input order."""
    return write_sorted(out, map(serialise, records), chunk_bytes)


def write_sorted(out: TextIO, items: Iterable[tuple[tuple[str, str], str]], chunk_bytes: int = 64 << 20) -> int:
    """Write the texts ordered by key, spilling sorted chunks to temporary files past ``chunk_bytes`` (an external
    merge sort: the output order never depends on the input order, and memory stays bounded)."""
    buffer: list[tuple[tuple[str, str], str]] = []
    size = 0
    count = 0
    with tempfile.TemporaryDirectory(prefix="rdistill-sample-") as tmp:
        spills: list[str] = []

        def spill() -> None:
            nonlocal buffer, size
            buffer.sort(key=lambda item: item[0])
            path = os.path.join(tmp, f"chunk{len(spills)}")
            with open(path, "w", encoding="utf-8") as fh:
                for (q, p), text in buffer:
                    fh.write(f"{q}\t{p}\t{dumps(text)}\n")
            spills.append(path)
            buffer, size = [], 0

        for key, text in items:
            buffer.append((key, text))
            size += len(text) + 100
            count += 1
            if size >= chunk_bytes:
                spill()
        if not spills:
            buffer.sort(key=lambda item: item[0])
            for _, text in buffer:
                out.write(text)
            return count
        if buffer:
            spill()
        files = [open(path, encoding="utf-8") for path in spills]  # noqa: SIM115 - closed below
        try:
            for _, text in heapq.merge(*(map(_read_spill, fh) for fh in files), key=lambda item: item[0]):
                out.write(text)
        finally:
            for fh in files:
                fh.close()
    return count


def _read_spill(line: str) -> tuple[tuple[str, str], str]:
    import orjson

    q, p, text = line.rstrip("\n").split("\t", 2)
    return (q, p), orjson.loads(text)
