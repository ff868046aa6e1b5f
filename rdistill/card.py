"""The model card of a student folder: README.md with the model hub's YAML header, written from what was recorded.

``train`` writes it from its own record (rdistill_train.json: base model, loss, steps, seed, the groups' hash,
versions) and from the sidecars of the groups it read (the sampling strategy and the teacher that scored them).
``rdistill eval --card FOLDER`` and ``bench/bench_student_speed.py --card FOLDER`` add what they measured to
rdistill_card.json in the folder and write the card again. Nothing goes into the card that neither recorded nor
measured: a field with no source is left out, never guessed.

Light on purpose (json only, no YAML library, no torch): ``rdistill eval`` imports it. The header's scalars are
written as JSON strings and numbers, which YAML reads as the same values.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rdistill.cost import read_sidecar
from rdistill.io import dumps, write_text_atomic

CARD = "README.md"
MEASURED = "rdistill_card.json"
TRAINED = "rdistill_train.json"


def provenance(groups: str) -> dict[str, Any]:
    """What the groups' sidecars say about how they were made: the sampling strategy and its settings, the runs
    it drew from, and the teacher that scored them (read from the scores file's own sidecar). Empty for groups
    read from stdin or written without -o."""
    record = read_sidecar(groups) if groups != "-" else None
    if record is None:
        return {}
    config = _part(record, "config")
    found: dict[str, Any] = {"strategy": config.get("strategy"), "group_size": config.get("group_size"),
                             "runs": record.get("runs"), "scores": record.get("scores"),
                             "qrels": record.get("qrels"), "split": record.get("split")}
    runs = record.get("runs")
    # Without --scores, sample attaches the driving run's own scores: that run's scorer is the teacher.
    scores = record.get("scores") or (runs[0] if isinstance(runs, list) and len(runs) == 1 else None)
    if isinstance(scores, str):
        scorer = read_sidecar(scores) or {}
        settings, teacher = _part(scorer, "settings"), _part(scorer, "teacher")
        if settings.get("model"):
            found["teacher"] = settings["model"]
        if teacher.get("model"):
            found["teacher_path"] = teacher["model"]
        parts = scorer.get("inputs")
        if not settings and isinstance(parts, list):  # rdistill fuse: name each fused teacher, if it says
            names = [_part(read_sidecar(str(p)) or {}, "settings").get("model") for p in parts]
            if parts and all(names):
                found["teacher"] = f"{scorer.get('method', 'fusion')} of {' + '.join(map(str, names))}"
    return {k: v for k, v in found.items() if v not in (None, [], "")}


def _part(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def dataset_name(spec: str) -> str:
    """A collection's name as a card shows it: a BEIR folder's name, an ir_datasets id, a file's stem."""
    if spec.startswith("irds:"):
        return spec.removeprefix("irds:")
    path = Path(spec)
    return path.name if path.is_dir() else path.stem


def run_model(run: str) -> str | None:
    """The model that scored or retrieved a run, as its sidecar names it (resolved path), or None."""
    record = read_sidecar(run) if run != "-" else None
    for key in ("teacher", "retriever"):
        part = (record or {}).get(key)
        if isinstance(part, dict) and isinstance(part.get("model"), str):
            return str(part["model"])
    return None


def subject(folder: Path, run: str) -> str:
    """Whose figure a run's evaluation is: the folder's student, or the teacher its groups were scored by. A run
    whose sidecar names neither (or that has none) is refused: the card would attribute a figure to a guess."""
    from rdistill.errors import UsageError

    model = run_model(run)
    if model is None:
        raise UsageError(f"--card: {run} has no sidecar naming the model that produced it; write it with "
                         "score-teacher -o or retrieve -o")
    if Path(model).resolve() == folder.resolve():
        return "student"
    source = (_read(folder / TRAINED) or {}).get("provenance") or {}
    if model in (source.get("teacher"), source.get("teacher_path")):
        return "teacher"
    raise UsageError(f"--card {folder}: {run} was made by {model}, which is neither this student nor the teacher "
                     "its groups were scored by")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def measurements(folder: Path) -> list[dict[str, Any]]:
    found = _read(folder / MEASURED)
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def record(folder: Path, entry: dict[str, Any]) -> None:
    """Add a measurement (replacing one of the same metric, subject and dataset) and write the card again."""
    if not (folder / TRAINED).is_file():
        from rdistill.errors import UsageError

        raise UsageError(f"--card {folder}: not a student folder written by rdistill train (no {TRAINED})")
    entry = {**entry, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    key = ("metric", "subject", "dataset", "split")
    kept = [m for m in measurements(folder) if any(m.get(k) != entry.get(k) for k in key)]
    write_text_atomic(folder / MEASURED, dumps([*kept, entry]) + "\n")
    write_card(folder)


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """A block-style YAML rendering of dicts, lists and JSON scalars (strings quoted as JSON does)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += _yaml(v, indent + 2)
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
    elif isinstance(value, list):
        for item in value:
            sub = _yaml(item, indent + 2) if isinstance(item, (dict, list)) else [f"{pad}  {json.dumps(item)}"]
            lines.append(f"{pad}- {sub[0].strip()}")
            lines += sub[1:]
    return lines


def _is_local(name: str) -> bool:
    return Path(name).exists() or name.startswith((".", "/", "~"))


def _uses_temperature(loss: Any) -> bool:
    """Whether a loss reads --temperature: its row in the losses table says so (no torch imported)."""
    from rdistill.training.losses import LOSSES

    row = LOSSES.get(str(loss))
    return row is not None and row.uses_temperature


def render(folder: Path, name: str | None = None) -> str:
    """The card's text from the folder's records: what was trained, from what, and every measured figure.
    ``name``: the model's name when the folder is not yet where it will live (train writes it beside --out)."""
    name = name or folder.resolve().name
    train = _read(folder / TRAINED) or {}
    args = train.get("arguments") or {}
    kind = train.get("student", "cross")
    source = train.get("provenance") or {}
    measured = measurements(folder)
    tower = _read(folder / "rdistill_documents.json")  # rdistill.towers.DOCUMENTS_FILE, read without torch
    datasets = sorted({dataset_name(str(args["queries"]))} if args.get("queries") else set())
    header: dict[str, Any] = {}
    base = str(args.get("model", ""))
    if base and not _is_local(base):
        header["base_model"] = base
    header["library_name"] = "sentence-transformers"
    header["pipeline_tag"] = "text-ranking" if kind == "cross" else "sentence-similarity"
    header["tags"] = ["rdistill", "knowledge-distillation",
                      *(["cross-encoder", "reranker"] if kind == "cross" else ["sentence-transformers",
                                                                                "feature-extraction"])]
    if datasets:
        header["datasets"] = datasets
    quality = [m for m in measured if m.get("metric") == "ndcg@10" and m.get("subject") == "student"]
    if quality:
        header["model-index"] = [{"name": name, "results": [
            {"task": {"type": "text-ranking" if kind == "cross" else "retrieval"},
             "dataset": {"name": m["dataset"], "type": m["dataset"], "split": m.get("split") or "all"},
             "metrics": [{"type": "ndcg_at_10", "name": "nDCG@10", "value": m["value"]}]} for m in quality]}]

    lines = ["---", *_yaml(header), "---", "",
             f"# {name}", "",
             f"A {'cross-encoder (re-ranker)' if kind == 'cross' else 'bi-encoder (dense retriever)'} student "
             "distilled with rdistill from a teacher's scores.", "", "## Training", ""]
    facts = [("Base model", base or None), ("Layers kept", args.get("init_layers")),
             ("Towers trained", "the query tower only (documents: the base model's embeddings)" if tower else None),
             ("Teacher", source.get("teacher")),
             ("Sampling", source.get("strategy")), ("Group size", args.get("group_size") or source.get("group_size")),
             ("Sampled from runs", ", ".join(map(str, source["runs"])) if source.get("runs") else None),
             ("Teacher scores file", source.get("scores")), ("Groups file", train.get("groups")),
             ("Groups (sha256)", train.get("groups_sha256")), ("Groups count", train.get("groups_count")),
             ("Loss", args.get("loss")), ("Temperature", args.get("temperature") if _uses_temperature(args.get("loss")) else None),
             ("Steps", train.get("steps")), ("Batch", f"{args['batch_size']} x {args['grad_accum']} accumulated"
                                            if args.get("batch_size") else None),
             ("Learning rate", args.get("lr")), ("Seed", train.get("seed")),
             ("Final loss", round(train["final_loss"], 6) if isinstance(train.get("final_loss"), float) else None),
             ("Trained", train.get("created")),
             ("rdistill", (train.get("versions") or {}).get("rdistill")),
             ("torch / transformers", " / ".join(str((train.get("versions") or {}).get(k)) for k in
                                                 ("torch", "transformers")))]
    lines += [f"- {name}: {value}" for name, value in facts if value not in (None, "", [])]
    lines += ["", "## Use", ""]
    if kind == "cross":
        lines += ["One logit per (query, document) pair, higher = more relevant: the paper's 2-label head folded "
                  "into logit1 - logit0 at save, so every loader ranks as rdistill scores it.", "",
                  "```python", "from sentence_transformers import CrossEncoder",
                  f'model = CrossEncoder("{name}")',
                  'model.predict([("query", "document")])  # sigmoid(logit) = P(relevant)', "```", "",
                  f"rdistill cuts the query to {args.get('max_query_length', 30)} and the document to "
                  f"{args.get('max_doc_length', 200)} tokens separately; the folder's tokenizer cuts a pair to their "
                  "sum, so longer documents keep a few more tokens outside rdistill.", ""]
    elif tower is not None:
        # An asymmetric student (train --frozen-documents): this folder is the query tower only.
        lines += ["An asymmetric bi-encoder: this folder is the trained **query** tower; documents are embedded by "
                  f"the unchanged `{tower.get('model')}` ({tower.get('pooling')} pooling, "
                  f"{'normalised, ' if tower.get('normalize') else ''}{tower.get('max_length')} tokens), so an index "
                  "of that model's document embeddings serves this student as it is. Score = dot product (the "
                  "query's norm is a learned temperature; rankings are cosine rankings).", "",
                  "```python", "from sentence_transformers import SentenceTransformer",
                  f'queries = SentenceTransformer("{name}")',
                  f'documents = SentenceTransformer("{tower.get("model")}")',
                  'queries.similarity(queries.encode(["query"]), documents.encode(["document"]))', "```", ""]
    else:
        lines += ["Embeddings pooled and compared as trained (modules.json, 1_Pooling, dot product); documents cut "
                  f"to {args.get('max_doc_length', 200)} tokens.", "",
                  "```python", "from sentence_transformers import SentenceTransformer",
                  f'model = SentenceTransformer("{name}")',
                  'model.similarity(model.encode(["query"]), model.encode(["document"]))', "```", ""]
    lines += ["## Measured", ""]
    if not measured:
        lines += ["Nothing measured yet: `rdistill eval --card FOLDER` adds nDCG@10.", ""]
    for m in measured:
        lines.append(_measurement_line(m, measured))
    lines.append("")
    return "\n".join(lines)


def _measurement_line(m: dict[str, Any], measured: list[dict[str, Any]]) -> str:
    where = f"{m.get('dataset')}{' ' + m['split'] if m.get('split') else ''}"
    if m.get("metric") == "docs_per_second":
        return (f"- Re-ranking throughput on {m.get('device', 'CPU')}: {m['value']:.1f} docs/s "
                f"({m.get('subject')}; {m.get('detail', '')})")
    line = f"- {m.get('metric')} on {where}: {m['value']:.4f} ({m.get('subject')}, run {m.get('run')}"
    if m.get("subject") == "student":
        teacher = [t for t in measured if t.get("subject") == "teacher" and t.get("metric") == m.get("metric")
                   and t.get("dataset") == m.get("dataset") and t.get("split") == m.get("split")]
        if teacher and teacher[-1]["value"]:
            line += f"; {100 * m['value'] / teacher[-1]['value']:.1f}% of the teacher's {teacher[-1]['value']:.4f}"
    return line + ")"


def write_card(folder: Path, name: str | None = None) -> None:
    write_text_atomic(folder / CARD, render(folder, name))
