"""Which dynamic-int8 recipe keeps a teacher's rankings, and how fast is each, against PyTorch fp32 in one run.

`score-teacher --dtype int8` quantises with onnxruntime's quantize_dynamic (int8 weights per output channel, uint8
activations per tensor). This script measures that recipe and its usual alternatives on the same real pairs:

- torch32: the PyTorch model, fp32 (the baseline every ratio is against); ort32: its ONNX export, fp32;
- plain-s8: the export quantised as rdistill does; plain-u8: uint8 weights (the U8U8 kernels onnxruntime advises
  on CPUs without VNNI, where U8S8 products can saturate); plain-s8-rr: reduce_range (7-bit weights, the other
  advice against saturation); plain-s8-pt: one scale per weight tensor instead of per channel;
- plain-s8-x: as plain-s8 with each layer's second feed-forward product (the widest activations) kept in fp32;
- opt32 / opt-s8 / opt-u8: the graph first fused by onnxruntime's transformer optimizer (Attention,
  SkipLayerNorm, BiasGelu), then quantised;
- plain-s8-sq: SmoothQuant (Xiao et al., 2023) before quantising: each product X W becomes (X / s) (s W) with a
  per-input-channel s = max|X_j|^0.5 / max|W_j|^0.5 from --calibration corpus documents (not among the pairs
  scored), so the few activation channels with outliers no longer set the one per-batch activation scale of all;
  BERT's LayerNorm output is also its residual stream, so 1 / s is an explicit Mul per product input, not folded;
- torch-bf16: the PyTorch model under CPU bf16 autocast (AMX or AVX512-BF16 where the CPU has them);
  torch-s8: PyTorch's own dynamic int8 (torch.ao quantize_dynamic of every Linear, the x86 engine);
- torch-tok: every Linear in int8 with one activation scale per token (row) instead of per batch, weights per
  output channel, int32 products by torch._int_mm (TokenInt8Linear); torch-tok-sq: the same after SmoothQuant
  (alpha 0.5, calibrated as plain-s8-sq). Per-token scales are the usual cure for per-batch scales' error.

Pairs: the first --queries scifact test queries' BM25 top --depth documents (a bi-encoder embeds each document,
a cross-encoder scores each pair; 200 document tokens), batches of 32 sorted by length as score-teacher sorts them.
Per variant: pairs/s (median of --rounds, variants interleaved), the ratio to torch32, the per-query Kendall tau of
its scores against torch32 (mean, min), the largest score difference.

    .venv/bin/python bench/experiments/int8_variants.py --model all-MiniLM-L6-v2 --kind bi --queries 10 --depth 100
    .venv/bin/python bench/experiments/int8_variants.py --model ms-marco-MiniLM-L-12-v2 --kind cross --queries 5 --depth 20 \\
        --variants plain-s8,plain-u8
    .venv/bin/python bench/experiments/int8_variants.py --gemm   # the products alone: fp32, bf16, int8
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]  # bench/experiments/ -> the repository root
DATA = ROOT.parent / "shared" / "data"
BATCH = 32


def smooth(fp32: Path, work: Path, calibration: list[dict[str, torch.Tensor]], alpha: float = 0.5) -> Path:
    """The fp32 graph with SmoothQuant's per-channel scales: every MatMul by a 2-D weight reads its input through
    a Mul by 1 / s (one per distinct input, shared by Q, K and V) and its weight rows are multiplied by s."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    target = work / "smooth32.onnx"
    if target.exists():
        return target
    model = onnx.load(str(fp32))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
            users.setdefault(node.input[0], []).append(node)
    # Calibrate: the largest |activation| per input channel of every product, over the calibration batches.
    probe = onnx.load(str(fp32))
    for name in users:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = [i.name for i in sess.get_inputs()]
    wanted = list(users)
    peak = {name: None for name in users}
    for batch in calibration:
        mask = batch["attention_mask"].numpy().astype(bool)
        outs = sess.run(wanted, {n: batch[n].numpy().astype(np.int64) for n in feeds})
        for name, value in zip(wanted, outs, strict=True):
            real = value[mask] if value.ndim == 3 else value.reshape(-1, value.shape[-1])  # real tokens only
            m = np.abs(real).max(axis=0)
            peak[name] = m if peak[name] is None else np.maximum(peak[name], m)
    for k, (name, nodes) in enumerate(users.items()):
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        w_peak = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        s = (np.maximum(peak[name], 1e-5) ** alpha / np.maximum(w_peak, 1e-5) ** (1 - alpha)).astype(np.float32)
        scaled = f"{name}_smoothed{k}"
        graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), f"{scaled}_inv_scale"))
        graph.node.append(helper.make_node("Mul", [name, f"{scaled}_inv_scale"], [scaled], name=f"{scaled}_mul"))
        for node, w in zip(nodes, weights, strict=True):
            inits[node.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), node.input[1]))
            node.input[0] = scaled
    # Nodes must stay topologically sorted: put each Mul right after the node producing its input.
    order: list[onnx.NodeProto] = []
    muls = {n.input[0]: n for n in graph.node if n.name.endswith("_mul") and "_smoothed" in n.name}
    mul_names = {m.name for m in muls.values()}
    for node in graph.node:
        if node.name in mul_names:
            continue
        order.append(node)
        order.extend(muls[o] for o in node.output if o in muls)
    order[:0] = [muls[i.name] for i in graph.input if i.name in muls]
    del graph.node[:]
    graph.node.extend(order)
    onnx.save(model, str(target))
    return target


class TokenInt8Linear(torch.nn.Module):
    """A Linear computed in int8 with one activation scale per token (row) rather than per batch, and one weight
    scale per output channel: int32 products by torch._int_mm, rescaled to fp32. With ``inv_smooth`` (SmoothQuant)
    the input is first divided per channel by s and the weight columns were multiplied by s."""

    def __init__(self, linear: torch.nn.Linear, smooth_scale: torch.Tensor | None = None) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        if smooth_scale is not None:
            weight = weight * smooth_scale[None, :]
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        # [in, out] as a transposed view of the [out, in] tensor: the layout _int_mm was fastest with here.
        self.weight_t = torch.round(weight / scale[:, None]).to(torch.int8).t()
        self.weight_scale = scale
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        self.inv_smooth = None if smooth_scale is None else 1.0 / smooth_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).float()
        if self.inv_smooth is not None:
            rows = rows * self.inv_smooth
        scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        out = torch._int_mm(torch.round(rows / scale).to(torch.int8), self.weight_t).float()
        out.mul_(scale).mul_(self.weight_scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*x.shape[:-1], out.shape[-1])


def token_int8(model: torch.nn.Module, calibration: list[dict[str, torch.Tensor]] | None,
               alpha: float = 0.5) -> torch.nn.Module:
    """A copy of ``model`` with every Linear a TokenInt8Linear; with calibration batches, SmoothQuant first (s =
    max|X_j|^alpha / max|W_j|^(1-alpha) per input channel j, X's peaks over the calibration batches)."""
    import copy

    peaks: dict[str, torch.Tensor] = {}
    if calibration is not None:
        hooks = []
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear):
                def record(_m: torch.nn.Module, inputs: tuple[torch.Tensor, ...], _o: torch.Tensor,
                           name: str = name) -> None:
                    peak = inputs[0].reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
                    peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak
                hooks.append(module.register_forward_hook(record))
        with torch.inference_mode():
            for batch in calibration:
                model(**batch)
        for hook in hooks:
            hook.remove()
    quantised = copy.deepcopy(model)
    for name, module in list(quantised.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                full = f"{name}.{child_name}" if name else child_name
                smooth_scale = None
                if full in peaks:
                    w_peak = child.weight.detach().abs().amax(dim=0).clamp_min(1e-5)
                    smooth_scale = peaks[full].clamp_min(1e-5) ** alpha / w_peak ** (1 - alpha)
                setattr(module, child_name, TokenInt8Linear(child, smooth_scale))
    return quantised


def build(name: str, fp32: Path, work: Path, config: object,
          calibration: list[dict[str, torch.Tensor]]) -> Path:
    """The graph of a variant named (plain|opt)[-(s8|u8)][-rr][-x][-pt] (see the module's docstring)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    parts = name.split("-")
    source = fp32
    if "sq" in parts:
        source = smooth(fp32, work, calibration)
    if parts[0] == "opt":
        source = work / "opt32.onnx"
        if not source.exists():
            from onnxruntime.transformers.optimizer import optimize_model

            model = optimize_model(str(fp32), model_type="bert", num_heads=config.num_attention_heads,  # type: ignore[attr-defined]
                                   hidden_size=config.hidden_size)  # type: ignore[attr-defined]
            model.save_model_to_file(str(source))
    if len(parts) == 1:
        return source
    target = work / f"{name}.onnx"
    graph = onnx.load(str(source)).graph
    weights = {t.name: list(t.dims) for t in graph.initializer}
    wide = [config.intermediate_size, config.hidden_size]  # type: ignore[attr-defined]
    exclude = [n.name for n in graph.node if "x" in parts and n.op_type == "MatMul" and weights.get(n.input[1]) == wide]
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QUInt8 if "u8" in parts else QuantType.QInt8,
                     per_channel="pt" not in parts, reduce_range="rr" in parts, nodes_to_exclude=exclude,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops defeat shape inference
    return target


def gemm(rows: int, shapes: list[tuple[int, int]], repeat: int = 10) -> None:
    """The matrix products of one batch through MiniLM's Linear layers (rows = batch x tokens) in fp32, bf16 and
    int8 (torch._int_mm, int32 out), each the median of ``repeat``: whether int8 can be faster at all here."""
    def timed(fn: Callable[[], torch.Tensor]) -> float:
        fn()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    print(f"matrix products, {rows} rows, {torch.get_num_threads()} threads, median of {repeat} (ms; vs fp32)")
    for k, n in shapes:
        x, w = torch.randn(rows, k), torch.randn(n, k)
        xb, wb = x.bfloat16(), w.bfloat16()
        x8 = torch.randint(-127, 128, (rows, k), dtype=torch.int8)
        w8 = torch.randint(-127, 128, (n, k), dtype=torch.int8)
        f32 = timed(lambda x=x, w=w: x @ w.t())  # type: ignore[misc]
        b16 = timed(lambda x=xb, w=wb: x @ w.t())  # type: ignore[misc]
        i8 = timed(lambda x=x8, w=w8: torch._int_mm(x, w.t()))  # type: ignore[misc]
        print(f"{rows} x {k} by {k} x {n}: fp32 {f32:.2f}  bf16 {b16:.2f} ({f32 / b16:.2f}x)  int8 {i8:.2f} "
              f"({f32 / i8:.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--kind", choices=("bi", "cross"), default="bi")
    parser.add_argument("--data", default=str(DATA / "scifact"))
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calibration", type=int, default=128, help="corpus documents SmoothQuant calibrates on")
    parser.add_argument("--variants", default="plain-s8,plain-u8,plain-s8-rr,plain-s8-pt,plain-s8-x,opt32,opt-s8,opt-u8")
    parser.add_argument("--gemm", action="store_true", help="only time MiniLM's matrix products in fp32, bf16 and "
                        "int8 (200 tokens x 32 documents) and stop")
    args = parser.parse_args()
    if args.gemm:
        hidden, inner = 384, 1536
        gemm(32 * 200, [(hidden, hidden), (hidden, inner), (inner, hidden)])
        return

    import onnxruntime as ort
    from scipy.stats import kendalltau

    from rdistill.data import load_queries
    from rdistill.docstore import DocStore
    from rdistill.models import (
        _load_torch,
        encode_pairs,
        encode_texts,
        export_onnx,
        length_order,
        load_tokenizer,
        torch_checkpoint,
    )
    from rdistill.models import pool as pool_hidden
    from rdistill.retrieval import retrieve
    from rdistill.retrieval.bm25 import BM25Index, BM25Params

    logging.disable(logging.WARNING)  # quantize_dynamic's advice to pre-process, per graph
    path = torch_checkpoint(args.model)
    model = _load_torch(path, args.kind, torch.float32, False).eval()
    tokenizer = load_tokenizer(path)
    queries = dict(list(load_queries(args.data, "test").items())[: args.queries])
    store = DocStore(args.data)
    with tempfile.TemporaryDirectory(prefix="int8-") as tmp:
        work = Path(tmp)
        index = BM25Index.open(args.data, work / "bm25", BM25Params(), show_progress=False)
        pairs = [(q, d) for q, hits in retrieve(queries, index, args.depth) for d in hits]
        q_texts = [queries[q] for q, _ in pairs]
        d_texts = [store.text(d) for _, d in pairs]
        order = length_order(d_texts if args.kind == "bi" else [a + b for a, b in zip(q_texts, d_texts, strict=True)])
        batches = []
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            docs = [d_texts[j] for j in idx]
            batches.append((idx, encode_texts(tokenizer, docs, 200) if args.kind == "bi" else
                            encode_pairs(tokenizer, [q_texts[j] for j in idx], docs, 30, 200)))
        query_ids = list(queries)
        query_batch = encode_texts(tokenizer, [queries[q] for q in query_ids], 30)
        fp32 = export_onnx(path, args.kind, work / "model.onnx")

        def run_torch(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.inference_mode():
                out = model(**batch)
                return out.last_hidden_state if args.kind == "bi" else out.logits

        def session(file: Path) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
            sess = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            return lambda batch: torch.from_numpy(sess.run(None, {n: batch[n].numpy().astype(np.int64)
                                                                  for n in names})[0])

        def scores(fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> tuple[np.ndarray, float]:
            out = np.zeros(len(pairs))
            start = time.perf_counter()
            if args.kind == "cross":
                for idx, batch in batches:
                    logits = fn(batch).float()
                    out[idx] = (logits[:, 0] if logits.shape[-1] == 1 else torch.log_softmax(logits, -1)[:, 1]).numpy()
                return out, time.perf_counter() - start
            embedded = np.zeros((len(pairs), model.config.hidden_size), dtype=np.float32)
            for idx, batch in batches:  # cosine, as all-MiniLM-L6-v2 is used (mean pooling, normalised)
                embedded[idx] = torch.nn.functional.normalize(
                    pool_hidden(fn(batch), batch["attention_mask"], "mean"), dim=-1).numpy()
            took = time.perf_counter() - start
            q = torch.nn.functional.normalize(pool_hidden(fn(query_batch), query_batch["attention_mask"], "mean"),
                                              dim=-1).numpy()
            row = {qid: i for i, qid in enumerate(query_ids)}
            return np.einsum("ij,ij->i", embedded, q[[row[qid] for qid, _ in pairs]]), took

        def run_bf16(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return run_torch(batch).float()

        quantised = None

        def run_s8(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            nonlocal quantised
            if quantised is None:
                import copy

                quantised = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear},
                                                                   dtype=torch.qint8)
            with torch.inference_mode():
                out = quantised(**batch)
                return out.last_hidden_state if args.kind == "bi" else out.logits

        # Calibration texts for SmoothQuant: corpus documents outside the scored pairs, encoded as the pairs are.
        scored = {d for _, d in pairs}
        spare: list[str] = []
        for i in range(len(store)):
            if len(spare) == args.calibration:
                break
            if store.id_at(i) not in scored:
                spare.append(store.text(store.id_at(i)))
        calibration = [encode_texts(tokenizer, spare[i:i + BATCH], 200) if args.kind == "bi" else
                       encode_pairs(tokenizer, [q_texts[0]] * len(spare[i:i + BATCH]), spare[i:i + BATCH], 30, 200)
                       for i in range(0, len(spare), BATCH)]
        def run_token(smoothed: bool) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
            quantised = token_int8(model, calibration if smoothed else None)

            def run(batch: dict[str, torch.Tensor]) -> torch.Tensor:
                with torch.inference_mode():
                    out = quantised(**batch)
                    return out.last_hidden_state if args.kind == "bi" else out.logits
            return run

        variants = {"torch32": run_torch, "ort32": session(fp32)}
        for name in args.variants.split(","):
            if name in ("torch-bf16", "torch-s8"):
                variants[name] = run_bf16 if name == "torch-bf16" else run_s8
            elif name in ("torch-tok", "torch-tok-sq"):
                variants[name] = run_token(name.endswith("-sq"))
            else:
                variants[name] = session(build(name, fp32, work, model.config, calibration))
        took: dict[str, list[float]] = {name: [] for name in variants}
        got: dict[str, np.ndarray] = {}
        names = list(variants)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:  # rotating order
                got[name], seconds = scores(variants[name])
                took[name].append(seconds)
        print(f"{args.model} ({args.kind}), {len(pairs)} pairs: {len(queries)} scifact test queries x BM25 top "
              f"{args.depth}, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
        base, base_s = got["torch32"], statistics.median(took["torch32"])
        spans = [[i for i, (q, _) in enumerate(pairs) if q == qid] for qid in query_ids]
        for name in names:
            taus = [kendalltau(base[s], got[name][s]).statistic for s in spans if len(s) > 1]
            seconds = statistics.median(took[name])
            print(f"{name:12} {len(pairs) / seconds:7.1f} pairs/s  {base_s / seconds:5.2f}x torch32  Kendall tau "
                  f"mean {np.mean(taus):.4f} min {np.min(taus):.4f}  max |diff| {np.abs(base - got[name]).max():.3g}",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
