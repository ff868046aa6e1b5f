"""Training groups for ``rdistill train``: read and checked once, cut to the group size, and scheduled.

The schedule is a pure function of (seed, step): epoch e visits the groups in the order of a permutation seeded by
(seed, e), and optimizer step k consumes the next ``batch_size * grad_accum`` positions of that endless stream. So a
resumed run needs only the step number to continue exactly where it stopped, and data-parallel ranks agree on the
global batch without talking: each takes every world-th query of each micro-batch.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rdistill.errors import InputError, UsageError, note
from rdistill.io import dumps, is_stream, iter_groups, source_name
from rdistill.meta import file_sha256
from rdistill.schema import POSITIVE_KINDS
from rdistill.training.losses import loss_names

# What each kind of group is, for the line that refuses it.
_KIND_WHAT = {"none": 'is a positive-free list ("positives": "none")',
              "pseudo": 'has a pseudo positive, the teacher\'s top document ("positives": "pseudo")',
              "judged": "has a judged positive"}


@dataclass(frozen=True)
class TrainGroup:
    """One query's training documents, positive first; ``line`` locates it in the groups file for errors."""

    query_id: str
    doc_ids: tuple[str, ...]
    scores: tuple[float, ...] | None
    line: int
    positives: str = "judged"  # schema.Group.positives: judged, pseudo or none (a positive-free list)


def _subsample(doc_ids: list[str], scores: list[float] | None, size: int, seed: int, line: int
               ) -> tuple[list[str], list[float] | None]:
    """Keep the positive and ``size - 1`` negatives drawn without replacement, fixed per (seed, line) so every
    epoch, rank and resumed run sees the same group; the kept negatives stay in file order."""
    rng = random.Random(f"{seed}:{line}")
    keep = [0, *sorted(rng.sample(range(1, len(doc_ids)), size - 1))]
    return [doc_ids[i] for i in keep], (None if scores is None else [scores[i] for i in keep])


def read_groups(source: str | Path, group_size: int | None = None, seed: int = 42, need_scores: bool = False,
                loss: str = "", kinds: tuple[str, ...] = POSITIVE_KINDS,
                pool: dict[str, dict[str, float]] | None = None) -> tuple[list[TrainGroup], str]:
    """All groups of a JSONL file or stdin (``-``), checked and cut to ``group_size``; with their sha256.

    A group whose kind (``positives``) is not in ``kinds`` (what ``--loss`` trains on) is refused, naming its line.
    ``pool``, when given, is filled with every teacher score of the file by query and document, before any cut:
    where in-batch negatives find their teacher scores.

    The sha256 is the file's own for a path; for stdin, which cannot be read twice, it is the sha256 of the groups'
    canonical JSON lines.
    """
    name = source_name(source)
    digest = hashlib.sha256()
    stream = is_stream(source)  # read once: a FIFO or /dev/fd/N cannot be reopened to hash the file
    groups: list[TrainGroup] = []
    for lineno, group in iter_groups(source):
        scores = group.scores
        if scores is None and need_scores:
            raise InputError(name, lineno, f'query {group.query_id!r} has no teacher scores ("scores": null) and '
                             f"--loss {loss} needs them; give groups scored by a teacher or use --loss lce")
        if group.positives not in kinds:
            takers = loss_names(lambda row, k=group.positives: k in row.kinds)  # type: ignore[misc]
            raise InputError(name, lineno, f"query {group.query_id!r} {_KIND_WHAT[group.positives]} and --loss "
                             f"{loss} trains only on {' or '.join(kinds)} groups; use --loss {takers}")
        doc_ids = group.doc_ids
        if pool is not None and scores is not None:
            known = pool.setdefault(group.query_id, {})
            for doc_id, score in zip(doc_ids, scores, strict=True):
                known.setdefault(doc_id, score)
        if group_size is not None and len(doc_ids) > group_size:
            doc_ids, scores = _subsample(doc_ids, scores, group_size, seed, lineno)
        groups.append(TrainGroup(group.query_id, tuple(doc_ids), None if scores is None else tuple(scores), lineno,
                                 group.positives))
        if stream:
            digest.update(dumps(group.record()).encode("utf-8") + b"\n")
    sha = digest.hexdigest() if stream else file_sha256(source)
    return groups, sha


def group_sizes(groups: list[TrainGroup], asked: int | None, name: str, quiet: bool = False) -> dict[str, int]:
    """The documents per group that training will see (what ``rdistill_train.json`` records), after holding
    ``--group-size`` to what the groups can give: it cuts larger groups and cannot grow smaller ones. When no group
    reaches it the option cannot be honoured at all and is refused; when some fall short they train whole, with a
    note saying how many."""
    sizes = [len(g.doc_ids) for g in groups]
    smallest, largest = min(sizes), max(sizes)
    if asked is not None:
        if largest < asked:
            raise UsageError(f"--group-size {asked}: the largest group in {name} holds {largest} documents, and "
                             f"a group cannot be grown; give --group-size {largest} or less, or leave it out")
        short = sum(size < asked for size in sizes)
        if short and not quiet:
            note(f"{name}: {short} of {len(sizes)} groups hold fewer than --group-size {asked} documents (the "
                 f"smallest {smallest}); they train with the documents they hold")
    return {"min": smallest, "max": largest}


def in_batch_columns(sizes: list[int]) -> list[list[int]]:
    """With in-batch negatives, which of the batch's documents (flat, in group order) fill each query's row: its own
    group first, in order (so column 0 is its positive, or its list's first document), then every other query's
    documents in batch order. The one layout both the student's scores and the teacher's rows follow."""
    starts = np.cumsum([0, *sizes]).tolist()
    total = starts[-1]
    return [[*range(a, b), *range(0, a), *range(b, total)] for a, b in zip(starts, starts[1:], strict=False)]


def teacher_rows(groups: list[TrainGroup], width: int, in_batch: bool = False,
                 pool: dict[str, dict[str, float]] | None = None) -> list[list[float]]:
    """The teacher's scores of a micro-batch as rows of ``width`` (0.0 past a group's end, which the mask hides).

    With in-batch negatives, row b follows :func:`in_batch_columns`: another query's document takes the teacher's
    score for this query where the groups file has one (``pool``); otherwise it is a label-0 negative, and takes the
    lowest teacher score of the query's own group, ranking with its worst scored negative rather than inventing a
    score the teacher never gave."""
    if not in_batch:
        return [[*g.scores, *[0.0] * (width - len(g.doc_ids))] for g in groups if g.scores is not None]
    flat = [d for g in groups for d in g.doc_ids]
    rows = []
    for g, columns in zip(groups, in_batch_columns([len(g.doc_ids) for g in groups]), strict=True):
        assert g.scores is not None
        known = (pool or {}).get(g.query_id, {})
        own, floor = dict(zip(g.doc_ids, g.scores, strict=True)), min(g.scores)
        rows.append([own.get(flat[c], known.get(flat[c], floor)) for c in columns])
    return rows


class Schedule:
    """Which groups each optimizer step, micro-batch and rank trains on (see the module docstring)."""

    def __init__(self, n_groups: int, batch_size: int, grad_accum: int, seed: int, total_queries: int) -> None:
        self.n = n_groups
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.seed = seed
        self.total_queries = total_queries  # where the stream ends (epochs x groups, or steps x step size)
        self._orders: dict[int, np.ndarray] = {}

    @property
    def per_step(self) -> int:
        return self.batch_size * self.grad_accum

    @property
    def steps(self) -> int:
        return -(-self.total_queries // self.per_step)

    def _at(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return int(self._orders[epoch][offset])

    def step(self, step: int) -> list[list[int]]:
        """The global micro-batches of an optimizer step (group indices), at most ``grad_accum`` of them."""
        start = step * self.per_step
        stop = min(start + self.per_step, self.total_queries)
        positions = list(range(start, stop))
        return [[self._at(p) for p in positions[i:i + self.batch_size]]
                for i in range(0, len(positions), self.batch_size)]

    @staticmethod
    def share(micro_batch: list[int], rank: int, world: int) -> list[int]:
        return micro_batch[rank::world]
