"""What a study's outputs cost, from their sidecars: each stage's wall seconds and counts, followed back through
the inputs each sidecar names, so a sampling source's groups are charged for every stage that made them.

Stages name their inputs in their sidecars: ``sample`` its ``runs`` and ``scores``, ``score-teacher`` its
``input``, ``fuse`` its ``inputs``; ``retrieve`` is a leaf (a first-stage run). A stage is counted once however
many paths lead to it, a copy of its output (with its sidecar) included. An input read from stdin, or without a
sidecar (written with ``>`` instead of ``-o``), cannot be followed: it is listed in :attr:`Cost.unknown` so a
report can say its cost is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rdistill.io import STDIN_NAME
from rdistill.meta import sidecar_path


@dataclass
class Cost:
    groups: int = 0
    first_stage_runs: list[str] = field(default_factory=list)
    teacher_pairs: int = 0  # pairs a model teacher scored (the expensive part)
    bm25_pairs: int = 0  # pairs BM25 re-scored as a teacher (score-teacher --model bm25)
    wall_seconds: float = 0.0
    stages: int = 0  # sidecars followed
    unknown: list[str] = field(default_factory=list)  # inputs whose cost could not be read


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        record = orjson.loads(side.read_bytes())
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def inputs_of(record: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if isinstance(record.get("input"), str):
        found.append(record["input"])
    for key in ("inputs", "runs"):
        if isinstance(record.get(key), list):
            found += [str(x) for x in record[key]]
    if isinstance(record.get("scores"), str):
        found.append(record["scores"])
    return found


def cost_of(output: str | Path) -> Cost:
    """The cost of ``output`` and of everything its sidecars say it was made from."""
    cost = Cost()
    seen: set[str] = set()
    stages: set[bytes] = set()
    todo = [str(output)]
    while todo:
        name = todo.pop()
        if name in (STDIN_NAME, "-"):
            cost.unknown.append(STDIN_NAME)
            continue
        key = str(Path(name).resolve())
        if key in seen:
            continue
        seen.add(key)
        record = read_sidecar(name)
        if record is None:
            cost.unknown.append(name)
            continue
        # The same stage reached through a copy (`cp -a out/demo out/grid`, then the grid's sidecars name the
        # demo's files and the grid's own): its sidecar is the same record, so it is charged once.
        stage = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        if stage in stages:
            continue
        stages.add(stage)
        cost.stages += 1
        cost.wall_seconds += float(record.get("wall_seconds") or 0.0)
        if "wall_seconds" not in record:
            cost.unknown.append(f"{name} (no wall seconds)")
        if "retriever" in record:
            cost.first_stage_runs.append(name)
        teacher = record.get("teacher")
        if isinstance(teacher, dict):
            pairs = int(record.get("pairs") or 0)
            if teacher.get("kind") == "bm25":
                cost.bm25_pairs += pairs
            else:
                cost.teacher_pairs += pairs
        if name == str(output) and isinstance(record.get("stats"), dict):
            cost.groups = int(record["stats"].get("groups") or 0)
        todo += inputs_of(record)
    cost.first_stage_runs.sort()
    return cost


def source_costs(groups_dir: Path, sources: list[str]) -> dict[str, Cost]:
    """The cost of ``groups_dir/SOURCE.jsonl`` for each source that has one."""
    return {source: cost_of(groups_dir / f"{source}.jsonl") for source in sources
            if (groups_dir / f"{source}.jsonl").is_file()}


def cost_table(costs: dict[str, Cost]) -> str:
    from rdistill.report import format_table

    rows = []
    for source, cost in costs.items():
        runs = ", ".join(Path(r).name for r in cost.first_stage_runs) or "none"
        rows.append([source, str(cost.groups), f"{len(cost.first_stage_runs)} ({runs})", f"{cost.teacher_pairs:,}",
                     f"{cost.bm25_pairs:,}", f"{cost.wall_seconds:.0f}"])
    text = format_table(["sampling", "groups", "first-stage runs", "teacher pairs scored", "BM25 pairs scored",
                         "wall seconds"], rows)
    unknown = sorted({u for cost in costs.values() for u in cost.unknown})
    note = ("Each source is charged for every stage its groups were made from (retrieval, teacher scoring, fusion, "
            "sampling; shared stages count fully for each source that uses them), from their .meta.json sidecars; "
            "training and evaluation cost the same for every source and are not included.")
    if unknown:
        note += f" Not counted (no sidecar, or stdin): {', '.join(unknown)}."
    return f"### What each sampling source's groups cost\n\n{text}\n\n{note}"
