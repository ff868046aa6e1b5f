"""A dev split carved from a training split (``rdistill data split``), so configurations are chosen on queries that
are neither trained on nor tested on.

The carve is a pure function of the query ids and the seed: each judged query of the source split is ranked by
crc32 of ``"SEED:QUERY_ID"`` (ties by id), and the first N go to ``dev``, the rest to ``train``. Neither the file's
order nor the other queries change which queries a given id lands with, and the same seed always gives the same
split. The output is a BEIR folder: ``qrels/train.tsv`` and ``qrels/dev.tsv`` (the source's judgment lines in their
order, split by query), with ``corpus.jsonl`` and ``queries.jsonl`` linked to the source's. The source's other
splits (test) are deliberately left out, so a folder used for selection holds nothing to tune on by mistake.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from rdistill.data import beir_file, beir_qrels_file
from rdistill.datasets import QRELS_HEADER
from rdistill.errors import UsageError
from rdistill.io import iter_qrels, open_output


def dev_queries(query_ids: list[str], n: int, seed: int) -> set[str]:
    """The N query ids that the carve puts in dev (see the module docstring)."""
    ranked = sorted(query_ids, key=lambda q: (zlib.crc32(f"{seed}:{q}".encode()), q))
    return set(ranked[:n])


@dataclass
class SplitSummary:
    folder: Path
    train_queries: int
    dev_queries: int
    train_judgments: int
    dev_judgments: int

    def line(self) -> str:
        return (f"{self.folder}: train {self.train_queries} queries ({self.train_judgments} judgments), "
                f"dev {self.dev_queries} queries ({self.dev_judgments} judgments)")


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` (absolute), replacing an earlier link; a real file there is never overwritten."""
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise UsageError(f"{link}: exists and is not a link; give a new or empty folder")
    link.symlink_to(target.resolve())


def carve(source: str, folder: str | Path, dev: int, seed: int = 42, split: str = "train") -> SplitSummary:
    """Split ``source``'s ``split`` (a BEIR folder) into ``train`` and ``dev`` in ``folder`` (see the module)."""
    src = Path(source)
    if not src.is_dir():
        raise UsageError(f"{source}: expected a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    corpus, queries = beir_file(src, "corpus"), beir_file(src, "queries")
    if corpus is None or queries is None:
        raise UsageError(f"{source}: not a BEIR folder (needs corpus.jsonl and queries.jsonl)")
    qrels_file = beir_qrels_file(src, split)
    rows = list(iter_qrels(qrels_file))
    ids = list(dict.fromkeys(r.query_id for r in rows))
    if dev < 1:
        raise UsageError(f"--dev {dev}: expected at least 1 query")
    if dev >= len(ids):
        raise UsageError(f"--dev {dev}: {qrels_file} judges only {len(ids)} queries; keep some for training")
    held = dev_queries(ids, dev, seed)
    out = Path(folder)
    if out.resolve() == src.resolve():
        raise UsageError(f"{folder}: the output folder is the source; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "dev": 0}
    with contextlib.ExitStack() as stack:
        outs = {s: stack.enter_context(open_output(out / "qrels" / f"{s}.tsv")) for s in counts}
        for fh in outs.values():
            fh.write(QRELS_HEADER)
        for r in rows:
            part = "dev" if r.query_id in held else "train"
            outs[part].write(f"{r.query_id}\t{r.doc_id}\t{r.relevance}\n")
            counts[part] += 1
    _link(corpus, out / corpus.name)
    _link(queries, out / queries.name)
    # A source's test split must not be reachable from here (see the module docstring): drop a stale one.
    for stale in (out / "qrels").glob("*.tsv"):
        if stale.stem not in counts:
            os.unlink(stale)
    return SplitSummary(out, len(ids) - len(held), len(held), counts["train"], counts["dev"])
