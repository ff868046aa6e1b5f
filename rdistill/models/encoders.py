"""The encoders: how text becomes model input, and the two ways rdistill uses a model.

One place decides how text becomes model input, so that the teacher, the student in training and the student at
inference see exactly the same tokens: queries cut to ``max_query_length`` tokens and documents to
``max_doc_length`` tokens *separately* (the paper's 30 / 200), then joined with the model's own special tokens.
Inference sorts inputs by length so each batch pads only to its own longest member (dynamic padding).
:class:`BiEncoder` and :class:`CrossEncoder` run on whichever engine :func:`rdistill.models.engines.load_model`
picks for the folder and precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import transformers

from rdistill.models.engines import load_model, resolve_device
from rdistill.models.resolve import Pooling, SentenceTransformerSettings, loading, resolve_model
from rdistill.progress import progress


def load_tokenizer(path: str) -> Any:
    with loading(path):
        return transformers.AutoTokenizer.from_pretrained(path)


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
