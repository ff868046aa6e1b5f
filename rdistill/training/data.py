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

from rdistill.errors import InputError
from rdistill.io import dumps, iter_groups, source_name
from rdistill.meta import file_sha256


@dataclass(frozen=True)
class TrainGroup:
    """One query's training documents, positive first; ``line`` locates it in the groups file for errors."""

    query_id: str
    doc_ids: tuple[str, ...]
    scores: tuple[float, ...] | None
    line: int


def _subsample(doc_ids: list[str], scores: list[float] | None, size: int, seed: int, line: int
               ) -> tuple[list[str], list[float] | None]:
    """Keep the positive and ``size - 1`` negatives drawn without replacement, fixed per (seed, line) so every
    epoch, rank and resumed run sees the same group; the kept negatives stay in file order."""
    rng = random.Random(f"{seed}:{line}")
    keep = [0, *sorted(rng.sample(range(1, len(doc_ids)), size - 1))]
    return [doc_ids[i] for i in keep], (None if scores is None else [scores[i] for i in keep])


def read_groups(source: str | Path, group_size: int | None = None, seed: int = 42, need_scores: bool = False,
                loss: str = "") -> tuple[list[TrainGroup], str]:
    """All groups of a JSONL file or stdin (``-``), checked and cut to ``group_size``; with their sha256.

    The sha256 is the file's own for a path; for stdin, which cannot be read twice, it is the sha256 of the groups'
    canonical JSON lines.
    """
    name = source_name(source)
    digest = hashlib.sha256()
    groups: list[TrainGroup] = []
    for lineno, group in iter_groups(source):
        scores = group.scores
        if scores is None and need_scores:
            raise InputError(name, lineno, f'query {group.query_id!r} has no teacher scores ("scores": null) and '
                             f"--loss {loss} needs them; give groups scored by a teacher or use --loss lce")
        doc_ids = group.doc_ids
        if group_size is not None and len(doc_ids) > group_size:
            doc_ids, scores = _subsample(doc_ids, scores, group_size, seed, lineno)
        groups.append(TrainGroup(group.query_id, tuple(doc_ids), None if scores is None else tuple(scores), lineno))
        if str(source) == "-":
            digest.update(dumps(group.record()).encode("utf-8") + b"\n")
    sha = digest.hexdigest() if str(source) == "-" else file_sha256(source)
    return groups, sha


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
