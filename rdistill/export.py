"""A student folder as an ONNX folder (what the packaged teachers already are): model.onnx beside the tokenizer,
config and model card, which rdistill (``--model DIR``), ONNX Runtime and optimum load. Library only for now; the
graph is :func:`rdistill.models.export_onnx`'s (fp32, dynamic batch and length)."""

from __future__ import annotations

import shutil
from pathlib import Path

from rdistill.models import TORCH_WEIGHTS, Kind, detect_kind, export_onnx


def export_student(folder: str | Path, out: str | Path) -> Path:
    """Write ``out``/model.onnx from the PyTorch student in ``folder``, with every other file of the folder (the
    tokenizer, config, sentence-transformers settings, card) except the PyTorch weights; returns ``out``."""
    source, target = Path(folder), Path(out)
    kind: Kind = detect_kind(str(source))
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*TORCH_WEIGHTS, "checkpoint"))
    export_onnx(str(source), kind, tmp / "model.onnx")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target
