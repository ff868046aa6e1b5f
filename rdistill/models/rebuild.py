"""Models rebuilt from other models, made once into rdistill's cache (keyed by the source folder's files).

:func:`export_onnx` writes a PyTorch folder as an fp32 ONNX graph; :func:`int8_graph` quantises a graph (or an
export) to dynamic int8 for the ONNX Runtime engine; :func:`dequantise_onnx` rebuilds a BERT ONNX graph as a PyTorch
checkpoint, which ``train`` starts from (:func:`rdistill.models.resolve.torch_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers

from rdistill.errors import UsageError
from rdistill.models.encoders import encode_pairs, encode_texts, load_tokenizer
from rdistill.models.onnx_engine import OnnxModel, _onnxruntime, onnx_is_quantised
from rdistill.models.resolve import Kind, onnx_file, read_json
from rdistill.models.torch_engine import _load_torch


def _fingerprint(path: str) -> str:
    """Identifies a model folder's weights without hashing gigabytes: names, sizes and modification times."""
    from rdistill.cache import file_identity

    folder = Path(path).resolve()
    files = sorted((str(f.relative_to(folder)), *file_identity(f)[1:]) for f in folder.rglob("*") if f.is_file())
    return hashlib.sha1(json.dumps([str(folder), files]).encode()).hexdigest()


def _cached(path: str, what: str) -> Path:
    from rdistill.cache import cache_dir

    return cache_dir("onnx", f"{Path(path).resolve().name}-{what}-{_fingerprint(path)[:16]}")


def export_onnx(path: str, kind: Kind, file: Path, allow_new_head: bool = False) -> Path:
    """Export a PyTorch folder to an fp32 ONNX graph (dynamic batch and length) that outputs ``logits`` for a
    cross-encoder, ``last_hidden_state`` for a bi-encoder."""
    model = _load_torch(path, kind, torch.float32, allow_new_head).eval()  # a cross-encoder's head checked here
    tokenizer = load_tokenizer(path)
    sample = encode_pairs(tokenizer, ["a query", "another query"], ["a document", "a longer document here"], 30, 200)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    output = "logits" if kind == "cross" else "last_hidden_state"

    class Output(torch.nn.Module):  # one named output; the export traces keyword arguments in this order
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return getattr(self.model(**dict(zip(names, args, strict=True))), output)

    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f"{file.name}.tmp{os.getpid()}")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(Output(), tuple(sample[n] for n in names), str(tmp), dynamo=False, input_names=names,
                          output_names=[output], opset_version=17,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, output]})
    os.replace(tmp, file)
    return file


def int8_graph(path: str, kind: Kind, allow_new_head: bool = False) -> Path:
    """A dynamic-int8 ONNX graph of the model in ``path`` (made once into rdistill's cache): an ONNX folder's own
    graph when it is already int8, else its graph (or a PyTorch folder's export) quantised by onnxruntime."""
    _onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx_file(path)
    if graph is not None and onnx_is_quantised(graph):
        return graph
    # The head check runs when the graph is exported, so a cached graph is one that passed it under the same
    # --allow-new-head: the flag is part of the cache's name, and a cache hit loads no PyTorch model.
    folder = _cached(path, f"{kind}-int8{'-new-head' if allow_new_head else ''}")
    target = folder / "model.int8.onnx"
    if target.exists():
        return target
    source = graph if graph is not None else export_onnx(path, kind, folder / "model.onnx", allow_new_head)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}.onnx")
    # Weights int8 with a scale per output channel (as torch's per-channel quantisation; the cost is one vector
    # multiply per product), activations uint8 with a scale per batch: onnxruntime's MatMulInteger on x86.
    import logging

    logging.disable(logging.WARNING)  # its advice to pre-process the graph goes to the root logger, on stderr
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.disable(logging.NOTSET)
    os.replace(tmp, target)
    return target


def _onnx_weights(file: Path) -> dict[str, np.ndarray]:
    """A BERT ONNX graph's weights under their Hugging Face names, in fp32 and PyTorch's layout.

    Dynamic quantisation stores a weight W as W_quantized (int8/uint8), W_scale and W_zero_point (per tensor or per
    output channel); W = (W_quantized - zero_point) * scale. Exporters name a linear layer's weight after the layer
    when it feeds a Gemm, but anonymously (onnx::MatMul_123, stored [in, out]) when it feeds a MatMul: such a weight
    is named after the bias its product is added to, a few nodes downstream (MatMul[Integer] -> Cast/Mul -> Add).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(file)).graph
    raw = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # some exporters keep weights in Constant nodes
        if node.op_type == "Constant" and node.output[0] not in raw:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.dims:
                    raw[node.output[0]] = numpy_helper.to_array(attr.t)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def bias_after(tensor: str, hops: int = 4) -> str | None:
        frontier = [tensor]
        for _ in range(hops):
            nxt = []
            for t in frontier:
                for node in consumers.get(t, []):
                    if node.op_type == "Add":
                        for other in node.input:
                            if other in raw and other.endswith(".bias"):
                                return other[: -len(".bias")]
                    nxt += list(node.output)
            frontier = nxt
        return None

    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith(("_scale", "_zero_point")) or not np.issubdtype(value.dtype, np.number) or value.ndim == 0:
            continue
        base = name[: -len("_quantized")] if name.endswith("_quantized") else name
        weight = value.astype(np.float32)
        if name.endswith("_quantized"):
            zero = raw.get(base + "_zero_point", np.zeros((), value.dtype)).astype(np.float32)
            weight = (weight - zero) * raw[base + "_scale"].astype(np.float32)  # per channel: along the last axis
        users = consumers.get(name, [])
        via = [n for u in users if u.op_type == "DequantizeLinear" for n in consumers.get(u.output[0], [])]
        ops = {u.op_type for u in users + via}
        if ops & {"MatMul", "MatMulInteger"}:
            weight = weight.T
            if not base.endswith(".weight"):
                matmul = next(u for u in users + via if u.op_type in ("MatMul", "MatMulInteger"))
                layer = bias_after(matmul.output[0])
                if layer is None:
                    continue
                base = layer + ".weight"
        elif "Gemm" in ops:
            gemm = next(u for u in users + via if u.op_type == "Gemm")
            if not any(a.name == "transB" and a.i == 1 for a in gemm.attribute):
                weight = weight.T
        out[base] = np.ascontiguousarray(weight)
    out = {k: v for k, v in out.items() if re.fullmatch(r"[A-Za-z_][\w.]*\.(weight|bias)", k)}
    if out and all(k.startswith("model.") for k in out):  # rdistill's own export wraps the model
        out = {k[len("model."):]: v for k, v in out.items()}
    return out


def _head_counts(file: Path, hidden: int) -> list[int]:
    """Attention head counts the graph can have: the weights do not say, but each attention layer reshapes its
    projections to (batch, tokens, heads, hidden / heads), so both numbers are constants of the graph. The
    candidates are checked against the graph's scores afterwards."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(file), load_external_data=False).graph
    consts: set[int] = set()
    tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute
                                         if a.name == "value"]
    for t in tensors:
        if t.data_type in (6, 7) and len(t.dims) <= 1 and (not t.dims or t.dims[0] <= 4):
            consts.update(int(v) for v in numpy_helper.to_array(t).reshape(-1))
    divisors = [h for h in range(1, hidden + 1) if hidden % h == 0]
    found = [h for h in divisors if h in consts and hidden // h in consts and h != hidden and h != 1]
    # Both 12 and 32 are constants of a 12 x 32 graph; head widths are powers of two in every BERT we know of.
    usual = [h for h in found if (hidden // h) >= 8 and (hidden // h) & (hidden // h - 1) == 0]
    return usual or found or [hidden // w for w in (64, 32) if hidden % w == 0] or [1]


def dequantise_onnx(path: str) -> Path:
    """Rebuild a BERT ONNX folder (a cross-encoder's graph, int8 or fp32) as a PyTorch checkpoint in the cache.

    The architecture is read from the weights' names and shapes (layers, widths, head, labels); the number of
    attention heads is not in the weights, so each plausible count (head widths 32 and 64) is tried and the one
    whose scores match the graph's on sample pairs is kept. The folder records the match: with an int8 graph the
    two differ by int8's rounding of activations, which the fp32 rebuild does not do.
    """
    graph = onnx_file(path)
    if graph is None:
        raise UsageError(f"model {path}: no ONNX graph to dequantise")
    folder = _cached(path, "torch")
    if (folder / "rdistill_dequantised.json").exists():
        return folder
    weights = _onnx_weights(graph)
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
    kind = OnnxModel(graph, torch.device("cpu"), optimize=False).kind
    layer_ids = {m.group(1) for k in weights if (m := re.search(r"encoder\.layer\.(\d+)\.", k))}
    try:
        word = weights[f"{prefix}embeddings.word_embeddings.weight"]
        config = transformers.BertConfig(
            vocab_size=word.shape[0], hidden_size=word.shape[1], num_hidden_layers=len(layer_ids),
            intermediate_size=weights[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0],
            max_position_embeddings=weights[f"{prefix}embeddings.position_embeddings.weight"].shape[0],
            type_vocab_size=weights[f"{prefix}embeddings.token_type_embeddings.weight"].shape[0])
        config.num_labels = weights["classifier.weight"].shape[0] if kind == "cross" else 2
    except KeyError as absent:
        raise UsageError(f"model {path}: not a BERT graph rdistill can rebuild (no weight {absent})") from None
    known = read_json(Path(path) / "config.json") or {}
    heads = [known["num_attention_heads"]] if "num_attention_heads" in known else _head_counts(graph,
                                                                                                 config.hidden_size)
    tokenizer = load_tokenizer(path)
    queries = ["what causes lift on a wing", "is vitamin d linked to bone density", "what is the capital of france"]
    docs = ["Lift is produced by the pressure difference across an aerofoil.",
            "Vitamin D supplementation and fracture risk in older adults: a randomised trial.",
            "Paris is the capital and largest city of France."]
    pairs = [(q, d) for q in queries for d in docs]  # each query with its answer and two unrelated documents
    batch = encode_pairs(tokenizer, [q for q, _ in pairs], [d for _, d in pairs], 30, 200) if kind == "cross" \
        else encode_texts(tokenizer, queries + docs, 512)
    reference = OnnxModel(graph, torch.device("cpu"))(**batch).logits.double()
    best: tuple[float, Any] | None = None
    for n in heads:
        config.num_attention_heads = n
        model = (transformers.BertForSequenceClassification(config) if kind == "cross"
                 else transformers.BertModel(config, add_pooling_layer=False)).eval()
        state = {k: torch.from_numpy(v) for k, v in weights.items()}
        missing = [k for k in model.state_dict() if k not in state and "position_ids" not in k]
        if missing:
            raise UsageError(f"model {path}: the graph has no weights for {', '.join(missing[:3])}")
        model.load_state_dict(state, strict=False)
        with torch.no_grad():
            got = model(**batch)
        got = (got.logits if kind == "cross" else got.last_hidden_state).double()
        diff = float((got - reference).abs().max())
        if best is None or diff < best[0]:
            best = (diff, model)
    assert best is not None
    diff, model = best
    spread = float(reference.std()) or 1.0
    with torch.no_grad():
        got = model(**batch)
    got = (got.logits if kind == "cross" else got.last_hidden_state).double().reshape(-1)
    corr = float(np.corrcoef(got.numpy(), reference.reshape(-1).numpy())[0, 1])
    if not corr >= 0.99:  # an int8 graph differs by its rounding of activations; a wrong rebuild does not correlate
        raise UsageError(f"model {path}: the rebuilt PyTorch model does not reproduce the graph (correlation "
                         f"{corr:.3f}, largest difference {diff:.3g}, score spread {spread:.3g})")
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "rdistill_dequantised.json").write_text(json.dumps(
        {"source": str(graph), "max_abs_diff": diff, "reference_std": spread, "correlation": corr,
         "num_attention_heads": model.config.num_attention_heads}, indent=1) + "\n")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
