"""The ONNX Runtime engine: a folder holding an ONNX graph (optimum, fastembed and FlashRank exports) as saved,
or any model folder as a dynamic-int8 graph (``--dtype int8``, CPU), made once by :func:`rdistill.models.rebuild.int8_graph`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from rdistill.errors import UsageError
from rdistill.models.resolve import Kind, onnx_file, read_json

INSTALL = "ONNX models and --dtype int8 need onnxruntime and onnx: pip install -e '.[models]'"
_QUANTISED_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "DynamicQuantizeMatMul"}


def load(path: str, kind: Kind, device: torch.device, dtype: str | None, allow_new_head: bool) -> tuple[str, Any]:
    """An ONNX folder's graph as saved, or (``dtype="int8"``) the folder's dynamic-int8 graph; with the engine's
    label (recorded in the encoders' settings).

    int8: linear layers with int8 weights, activations quantised per batch (onnxruntime's MatMulInteger was faster
    than torch's dynamic quantisation on an AVX2 and an AVX-512 VNNI CPU, bench/bench_score_teacher.py, docs/performance.md).
    On a CPU with native bf16 a note says that bf16 is the better choice there.
    """
    graph = onnx_file(path)
    if dtype == "int8":
        if device.type != "cpu":
            raise UsageError("--dtype int8 is CPU inference (dynamic int8 quantisation); use --device cpu")
        if graph is None and native_bf16_cpu():  # a PyTorch folder, which --dtype bf16 can run
            print("rdistill: note: this CPU computes bf16 natively (AMX or AVX512-BF16): --dtype bf16 is faster "
                  "than int8 here and keeps the teacher's order (Kendall tau 0.998 against int8's 0.935 on "
                  "MiniLM; docs/performance.md, Teacher scoring)", file=sys.stderr)
        from rdistill.models.rebuild import int8_graph

        return "onnxruntime-int8", OnnxModel(int8_graph(path, kind, allow_new_head), device)
    assert graph is not None  # the engine is chosen for folders holding a graph
    return "onnxruntime", OnnxModel(graph, device)


def _onnxruntime() -> Any:
    try:
        import onnxruntime

        return onnxruntime
    except ImportError:
        raise UsageError(INSTALL) from None


class OnnxModel:
    """An ONNX Runtime session called like a Hugging Face model: tensors by name in, ``.logits`` (a cross-encoder's
    [batch, labels]) or ``.last_hidden_state`` (a bi-encoder's [batch, tokens, hidden]) out, as torch tensors, so
    CrossEncoder and BiEncoder run it through the same tokenisation, batching and scoring as a PyTorch model."""

    def __init__(self, file: Path, device: torch.device, optimize: bool = True) -> None:
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # follow OMP_NUM_THREADS / torch, as PyTorch does
        options.inter_op_num_threads = 1
        if not optimize:  # only looking at the graph's inputs and outputs
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError(f"{file}: this onnxruntime has no CUDA provider; run ONNX models with --device cpu")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        self.file = file
        self.session = ort.InferenceSession(str(file), options, providers=providers)
        self.inputs = {i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in self.session.get_inputs()}
        out = self.session.get_outputs()[0]
        self.output = out.name
        width = out.shape[-1] if isinstance(out.shape[-1], int) else None
        if len(out.shape) == 3 or "embedding" in out.name or "hidden" in out.name:
            self.kind: Kind = "bi"
        elif len(out.shape) == 2 and (width is None or width <= 2):
            self.kind = "cross"
        else:
            raise UsageError(f"{file}: expected a cross-encoder (logits [batch, 1 or 2]) or a bi-encoder "
                             f"(hidden states [batch, tokens, hidden]); its output is {out.name} {out.shape}")
        config = read_json(file.parent / "config.json") or read_json(file.parent.parent / "config.json") or {}
        self.config = SimpleNamespace(hidden_size=width or config.get("hidden_size"), num_labels=width or 1)

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        feed = {}
        for name, dtype in self.inputs.items():
            if name in batch:
                feed[name] = batch[name].cpu().numpy().astype(dtype)
            elif name == "token_type_ids":  # a tokenizer without segment ids: all zero, as in training
                feed[name] = np.zeros_like(batch["input_ids"].cpu().numpy(), dtype=dtype)
            else:
                raise UsageError(f"{self.file}: the graph needs an input {name!r} that the tokenizer does not make")
        out = torch.from_numpy(self.session.run([self.output], feed)[0])
        return SimpleNamespace(logits=out, last_hidden_state=out)

    def quantised(self) -> bool:
        return onnx_is_quantised(self.file)


def onnx_is_quantised(file: Path) -> bool:
    """Whether the graph already computes its matrix products in int8 (as onnxruntime's dynamic quantisation does)."""
    import onnx

    graph = onnx.load(str(file), load_external_data=False).graph
    return any(node.op_type in _QUANTISED_OPS for node in graph.node)


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX-BF16 or AVX512-BF16): there bf16 autocast
    beat every int8 recipe in speed and in the order it keeps (bench/experiments/int8_variants.py)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:  # not Linux, or no /proc: say nothing
        pass
    return False
