"""Students in training: a cross-encoder or a bi-encoder built from a Hugging Face checkpoint, scored through
rdistill.models so that training and inference (``score-teacher``, ``retrieve --dense``) see identical tokens, and
saved as folders those commands load directly.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
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
    """What the trainer needs from a student: its module, group scores with gradients, and saving.

    ``group_scores`` gets each group's document texts and ids; a student that never reads a document's text
    (``needs_texts`` False: its documents are fixed embeddings) is given empty text lists."""

    kind: StudentKind
    model: torch.nn.Module
    tokenizer: Any
    needs_texts = True

    def __init__(self, max_query_length: int, max_doc_length: int) -> None:
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length

    def group_scores(self, module: torch.nn.Module, queries: Sequence[str], groups: Sequence[Sequence[str]],
                     device: torch.device, in_batch: bool = False,
                     doc_ids: Sequence[Sequence[str]] = ()) -> tuple[torch.Tensor, torch.Tensor]:
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
                     device: torch.device, in_batch: bool = False,
                     doc_ids: Sequence[Sequence[str]] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = [len(g) for g in groups]
        qs = [q for q, g in zip(queries, groups, strict=True) for _ in g]
        ds = [d for g in groups for d in g]
        batch = encode_pairs(self.tokenizer, qs, ds, self.max_query_length, self.max_doc_length)
        logits = module(**{k: v.to(device) for k, v in batch.items()}).logits
        return _pad(cross_encoder_scores(logits), sizes)


    def save(self, folder: Path) -> None:
        """Save the student as the field's single-logit cross-encoder (see :func:`single_logit`), with the length
        sentence-transformers' CrossEncoder cuts a pair to: rdistill's two limits plus the pair's special tokens."""
        model = single_logit(self.model)
        model.save_pretrained(folder)  # type: ignore[operator]
        tokenizer = copy.copy(self.tokenizer)
        tokenizer.model_max_length = (self.max_query_length + self.max_doc_length
                                      + tokenizer.num_special_tokens_to_add(pair=True))
        tokenizer.save_pretrained(folder)


# What sentence-transformers' CrossEncoder applies to a 1-logit head in predict(): sigmoid(logit1 - logit0) is the
# 2-label head's softmax P(relevant), so CrossEncoder.predict returns the probability the student was trained on.
ST_ACTIVATION = "torch.nn.modules.activation.Sigmoid"


def single_logit(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of a 2-label classifier with its last linear layer folded into one logit, logit1 - logit0.

    rdistill scores a 2-label head by log_softmax(logits)[1] = -softplus(logit0 - logit1), a strictly increasing
    function of logit1 - logit0; the field's rerankers (ms-marco cross-encoders, sentence-transformers'
    CrossEncoder, text-ranking services) expect one logit, higher = more relevant. Rows (w1 - w0, b1 - b0) compute
    that difference exactly up to float rounding, so the saved model ranks as the trained one. Training itself
    (and its checkpoints) keeps the 2-label head; a 1-logit model is returned as it is.
    """
    config: Any = model.config
    if config.num_labels != 2:
        return model
    heads = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == 2]
    if not heads:
        raise UsageError("the cross student has 2 labels but no 2-output linear layer to fold into one logit")
    out = copy.deepcopy(model)
    head = out.get_submodule(heads[-1])  # the last one: the layer that writes the logits
    assert isinstance(head, torch.nn.Linear)
    folded = torch.nn.Linear(head.in_features, 1, bias=head.bias is not None, dtype=head.weight.dtype)
    with torch.no_grad():
        w = head.weight.double()
        folded.weight.copy_((w[1] - w[0]).unsqueeze(0))
        if head.bias is not None:
            b = head.bias.double()
            folded.bias.copy_((b[1] - b[0]).unsqueeze(0))
    parent, _, leaf = heads[-1].rpartition(".")
    setattr(out.get_submodule(parent) if parent else out, leaf, folded)
    out.config.num_labels = 1  # type: ignore[union-attr]
    out.config.problem_type = None  # type: ignore[union-attr]
    out.config.sentence_transformers = {"activation_fn": ST_ACTIVATION}  # type: ignore[union-attr]
    return out


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
                     device: torch.device, in_batch: bool = False,
                     doc_ids: Sequence[Sequence[str]] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = [len(g) for g in (doc_ids or groups)]
        q = self._embed(module, queries, self.max_query_length, device)
        d = self._documents(module, groups, doc_ids, device)
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

    def _documents(self, module: torch.nn.Module, groups: Sequence[Sequence[str]], doc_ids: Sequence[Sequence[str]],
                   device: torch.device) -> torch.Tensor:
        """The documents' embeddings, flat in group order: the tied encoder's, with gradients."""
        return self._embed(module, [x for g in groups for x in g], self.max_doc_length, device)

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


class FrozenDocStudent(BiStudent):
    """A bi-encoder whose document tower stays the initial model (rdistill.towers): documents are rows of the
    corpus's dense index under that model, computed once and shared with a bi-encoder teacher of the same settings;
    only the query tower trains, so a step encodes only the batch's queries."""

    needs_texts = False

    def __init__(self, path: str, model: str, corpus: str, init_layers: int | None = None,
                 max_query_length: int = 30, max_doc_length: int | None = None, index: str | None = None) -> None:
        from rdistill.retrieval.dense import corpus_embeddings
        from rdistill.towers import DocumentTower

        self.tower, encoder = DocumentTower.of(model, max_doc_length)
        super().__init__(path, init_layers, max_query_length, self.tower.max_length,
                         self.tower.pooling)  # type: ignore[arg-type]
        self.index, self.rows = corpus_embeddings(corpus, encoder, index)
        del encoder  # its embeddings are all it was needed for

    def _documents(self, module: torch.nn.Module, groups: Sequence[Sequence[str]], doc_ids: Sequence[Sequence[str]],
                   device: torch.device) -> torch.Tensor:
        rows = self.rows.rows([d for g in doc_ids for d in g])
        return torch.from_numpy(np.asarray(self.index.embeddings[rows], dtype=np.float32)).to(device)

    def save(self, folder: Path) -> None:
        super().save(folder)
        # The query tower is the saved model; sentence-transformers reads it with the query length.
        sbert = {"max_seq_length": self.max_query_length, "do_lower_case": False}
        (folder / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2) + "\n")
        self.tower.save(folder)


def build_student(kind: StudentKind, path: str, init_layers: int | None, max_query_length: int,
                  max_doc_length: int, pooling: Pooling = "cls", frozen_documents: str | None = None,
                  corpus: str = "", index: str | None = None) -> Student:
    """``frozen_documents``: the model (as named) whose embeddings stand for the documents (bi only)."""
    if kind == "cross":
        return CrossStudent(path, init_layers, max_query_length, max_doc_length)
    if frozen_documents is not None:
        return FrozenDocStudent(path, frozen_documents, corpus, init_layers, max_query_length, max_doc_length, index)
    return BiStudent(path, init_layers, max_query_length, max_doc_length, pooling)
