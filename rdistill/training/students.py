"""Students in training: a cross-encoder or a bi-encoder built from a Hugging Face checkpoint, scored through
rdistill.models so that training and inference (``score-teacher``, ``retrieve --dense``) see identical tokens, and
saved as folders those commands load directly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import transformers

from rdistill.errors import UsageError
from rdistill.models import (
    Pooling,
    cross_encoder_scores,
    encode_pairs,
    encode_texts,
    load_tokenizer,
    loading,
    pool,
)
from rdistill.training.data import in_batch_columns

StudentKind = Literal["cross", "bi"]


# Students load in fp32 whatever dtype the checkpoint was saved in (transformers 5 keeps the saved dtype): the
# optimizer needs fp32 master weights; --amp runs the forward pass in half precision on top of them.


def _config(path: str, init_layers: int | None) -> Any:
    with loading(path):
        config = transformers.AutoConfig.from_pretrained(path)
    if init_layers is not None:
        layers = getattr(config, "num_hidden_layers", None)
        if layers is None:
            raise UsageError(f"--init-layers: {path} does not say how many layers it has (num_hidden_layers)")
        if not 1 <= init_layers <= layers:
            raise UsageError(f"--init-layers {init_layers}: {path} has {layers} layers")
        # A config with fewer layers makes from_pretrained build the smaller model and load only the first N
        # layers' weights; the rest are never materialised.
        config.num_hidden_layers = init_layers
    return config


class Student:
    """What the trainer needs from a student: its module, group scores with gradients, and saving."""

    kind: StudentKind
    model: torch.nn.Module
    tokenizer: Any

    def __init__(self, max_query_length: int, max_doc_length: int) -> None:
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length

    def group_scores(self, module: torch.nn.Module, queries: Sequence[str], groups: Sequence[Sequence[str]],
                     device: torch.device, in_batch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores [B, G] (padded) and the mask of real documents; column 0 is each query's positive."""
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder)  # type: ignore[operator]
        self.tokenizer.save_pretrained(folder)


def _pad(flat: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread a flat vector of per-document scores into [B, max size] rows, with a mask of real entries."""
    width = max(sizes)
    mask = torch.zeros(len(sizes), width, dtype=torch.bool, device=flat.device)
    for b, size in enumerate(sizes):
        mask[b, :size] = True
    out = flat.new_zeros(len(sizes), width)
    out[mask] = flat
    return out, mask


class CrossStudent(Student):
    kind: StudentKind = "cross"

    def __init__(self, path: str, init_layers: int | None = None, max_query_length: int = 30,
                 max_doc_length: int = 200) -> None:
        super().__init__(max_query_length, max_doc_length)
        config = _config(path, init_layers)
        has_head = any("ForSequenceClassification" in a for a in (config.architectures or []))
        if not (has_head and config.num_labels in (1, 2)):
            config.num_labels = 2  # the paper's head; the score is log P(relevant), as the teacher's
        with loading(path):
            self.model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, config=config, output_loading_info=True, ignore_mismatched_sizes=True, dtype=torch.float32)
        if (info.get("missing_keys") or info.get("mismatched_keys")) and os.environ.get("RANK", "0") == "0":
            print(f"rdistill train: {path} has no {config.num_labels}-label classification head; starting a new one "
                  "from random weights", file=sys.stderr)
        self.tokenizer = load_tokenizer(path)

    def group_scores(self, module: torch.nn.Module, queries: Sequence[str], groups: Sequence[Sequence[str]],
                     device: torch.device, in_batch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = [len(g) for g in groups]
        qs = [q for q, g in zip(queries, groups, strict=True) for _ in g]
        ds = [d for g in groups for d in g]
        batch = encode_pairs(self.tokenizer, qs, ds, self.max_query_length, self.max_doc_length)
        logits = module(**{k: v.to(device) for k, v in batch.items()}).logits
        return _pad(cross_encoder_scores(logits), sizes)


class BiStudent(Student):
    kind: StudentKind = "bi"

    def __init__(self, path: str, init_layers: int | None = None, max_query_length: int = 30,
                 max_doc_length: int = 200, pooling: Pooling = "cls") -> None:
        super().__init__(max_query_length, max_doc_length)
        self.pooling: Pooling = pooling
        config = _config(path, init_layers)
        with loading(path):
            self.model = transformers.AutoModel.from_pretrained(path, config=config, dtype=torch.float32)
        self.tokenizer = load_tokenizer(path)

    def _embed(self, module: torch.nn.Module, texts: Sequence[str], max_length: int,
               device: torch.device) -> torch.Tensor:
        batch = encode_texts(self.tokenizer, texts, max_length)
        out = module(**{k: v.to(device) for k, v in batch.items()})
        return pool(out.last_hidden_state, batch["attention_mask"].to(device), self.pooling).float()

    def group_scores(self, module: torch.nn.Module, queries: Sequence[str], groups: Sequence[Sequence[str]],
                     device: torch.device, in_batch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = [len(g) for g in groups]
        q = self._embed(module, queries, self.max_query_length, device)
        d = self._embed(module, [x for g in groups for x in g], self.max_doc_length, device)
        if not in_batch:
            owner = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                            torch.tensor(sizes, device=device))
            return _pad((q[owner] * d).sum(-1), sizes)
        # In-batch negatives: every query against every document of the batch, its own group first (its positive in
        # column 0), then the other queries' documents as extra negatives (data.in_batch_columns: the layout the
        # teacher's rows follow too). Each document is embedded once, so this costs only the [B, sum(sizes)] scores.
        full = q @ d.T
        scores = full.gather(1, torch.tensor(in_batch_columns(sizes), device=device))
        return scores, torch.ones_like(scores, dtype=torch.bool)

    def save(self, folder: Path) -> None:
        super().save(folder)
        # sentence-transformers' description of the model, which models.SentenceTransformerSettings reads back: the
        # pooling trained with, no normalisation (dot product), and the document length limit.
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = {"word_embedding_dimension": int(self.model.config.hidden_size),  # type: ignore[union-attr,arg-type]
                   "pooling_mode_cls_token": self.pooling == "cls", "pooling_mode_mean_tokens": self.pooling == "mean",
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
        sbert = {"max_seq_length": self.max_doc_length, "do_lower_case": False}
        (folder / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2) + "\n")
        (folder / "config_sentence_transformers.json").write_text(json.dumps({"similarity_fn_name": "dot"}) + "\n")


def build_student(kind: StudentKind, path: str, init_layers: int | None, max_query_length: int,
                  max_doc_length: int, pooling: Pooling = "cls") -> Student:
    if kind == "cross":
        return CrossStudent(path, init_layers, max_query_length, max_doc_length)
    return BiStudent(path, init_layers, max_query_length, max_doc_length, pooling)
