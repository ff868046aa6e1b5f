"""The engines that run a model folder: one table, :data:`ENGINES`, chosen by the folder and checked for precision.

An engine is a loader (a module of its own: :mod:`~rdistill.models.torch_engine`,
:mod:`~rdistill.models.onnx_engine`) and a row saying which folders it runs as saved, which ``--dtype`` values it
takes for them, which it reaches from any folder by converting the model first (int8), and what it needs
installed. :func:`load_model` picks the row apart from the precision: the engine that converts to the asked
precision if one does, else the one that reads the folder; the row then refuses a precision it does not take. A
new engine (say OpenVINO) is one module with a ``load`` function and one row here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from rdistill.errors import UsageError
from rdistill.models import onnx_engine, torch_engine
from rdistill.models.resolve import Kind, onnx_file

# (folder, kind, device, --dtype, allow_new_head) -> (the engine's label, recorded in the encoders' settings; the
# model, called like a Hugging Face model)
Loader = Callable[[str, Kind, torch.device, "str | None", bool], "tuple[str, Any]"]


class Engine(NamedTuple):
    """One row of :data:`ENGINES`."""

    load: Loader
    reads: Callable[[str], bool]  # runs this folder as saved
    precisions: tuple[str | None, ...]  # --dtype values it runs such a folder at (None, "auto": the default)
    refusal: str  # the message for any other --dtype ({path}, {dtype})
    converts: tuple[str, ...] = ()  # --dtype values it reaches from any folder by converting the model first
    needs: tuple[str, ...] = ()  # modules it needs installed
    install: str = ""  # how to install them
    help: str = ""


_AS_SAVED = (None, "auto", "fp32", "float32")

# The engines, in the order they are asked whether they read a folder.
ENGINES: dict[str, Engine] = {
    "onnxruntime": Engine(
        onnx_engine.load, reads=lambda path: onnx_file(path) is not None, precisions=_AS_SAVED,
        refusal="model {path} is an ONNX graph: it runs as saved (--dtype fp32), or as int8", converts=("int8",),
        needs=("onnxruntime", "onnx"), install=onnx_engine.INSTALL,
        help="an ONNX folder as saved; any folder as a dynamic-int8 graph (--dtype int8, CPU)"),
    "torch": Engine(
        torch_engine.load, reads=lambda path: onnx_file(path) is None,
        precisions=(*_AS_SAVED, "fp16", "float16", "bf16", "bfloat16"),
        refusal="--dtype {dtype!r}: expected fp32, fp16 or bf16", needs=("torch", "transformers"),
        install=torch_engine.INSTALL, help="PyTorch weights through transformers: fp32, bf16 (CPU: autocast), fp16 (GPU)"),
}


def choose_engine(path: str, dtype: str | None) -> str:
    """The engine that converts any folder to ``dtype``, else the first that runs ``path`` as saved."""
    for name, row in ENGINES.items():
        if dtype in row.converts:
            return name
    for name, row in ENGINES.items():
        if row.reads(path):
            return name
    raise UsageError(f"model {path}: no engine runs this folder")


def load_model(path: str, kind: Kind, device: torch.device, dtype: str | None,
               allow_new_head: bool = False) -> tuple[str, Any]:
    """The model a folder holds, ready for inference, and the label of the engine that runs it.

    A PyTorch folder loads through transformers in fp32 / bf16 / fp16; an ONNX folder runs through ONNX Runtime
    as saved; ``dtype="int8"`` (CPU) runs any of them as a dynamic-int8 ONNX graph, made once and cached.
    """
    row = ENGINES[choose_engine(path, dtype)]
    if dtype not in row.precisions and dtype not in row.converts:
        raise UsageError(row.refusal.format(path=path, dtype=dtype))
    if any(importlib.util.find_spec(module) is None for module in row.needs):
        raise UsageError(row.install)
    return row.load(path, kind, device, dtype, allow_new_head)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto") from None
