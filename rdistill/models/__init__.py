"""Hugging Face models as rdistill uses them: bi-encoders and cross-encoders, loaded quietly, run fast.

One module a job:

- :mod:`~rdistill.models.resolve`: a name to a model folder (packaged offline copies first), and what the folder
  says (kind, sentence-transformers settings, ONNX or PyTorch); ``torch_checkpoint`` for training.
- :mod:`~rdistill.models.encoders`: text to model input (one rule for teacher, student and inference),
  :class:`BiEncoder` and :class:`CrossEncoder`.
- :mod:`~rdistill.models.engines`: the table of engines that run a folder (:data:`ENGINES`) and ``load_model``;
  each engine a module (:mod:`~rdistill.models.torch_engine`, :mod:`~rdistill.models.onnx_engine`).
- :mod:`~rdistill.models.rebuild`: models made from other models, cached: ONNX export, int8 graphs, an ONNX BERT
  rebuilt as a PyTorch checkpoint.

Every name is importable from ``rdistill.models`` as before the split. Importing this package imports torch and
transformers (silenced first), so callers import it inside functions, never at a light module's top.
"""

import os

# Silence transformers before it is imported anywhere: its per-load report and progress bars are noise for users.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import transformers  # noqa: E402

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

from rdistill.models.encoders import (  # noqa: E402
    BiEncoder,
    CrossEncoder,
    cross_encoder_scores,
    cut_texts,
    encode_pairs,
    encode_texts,
    length_order,
    load_tokenizer,
    pool,
)
from rdistill.models.engines import ENGINES, Engine, choose_engine, load_model, resolve_device  # noqa: E402
from rdistill.models.onnx_engine import OnnxModel, native_bf16_cpu, onnx_is_quantised  # noqa: E402
from rdistill.models.rebuild import dequantise_onnx, export_onnx, int8_graph  # noqa: E402
from rdistill.models.resolve import (  # noqa: E402
    PACKAGED_MINILM,
    PACKAGED_ONNX,
    TORCH_WEIGHTS,
    Kind,
    PackagedOnnx,
    Pooling,
    SentenceTransformerSettings,
    check_head,
    detect_kind,
    loading,
    onnx_file,
    packaged_onnx,
    resolve_model,
    torch_checkpoint,
)
from rdistill.models.torch_engine import CpuBf16, _load_torch, resolve_dtype  # noqa: E402
from rdistill.progress import progress  # noqa: E402 - re-exported: stages import it from here

__all__ = [
    "ENGINES", "PACKAGED_MINILM", "PACKAGED_ONNX", "TORCH_WEIGHTS", "BiEncoder", "CpuBf16", "CrossEncoder", "Engine",
    "Kind", "OnnxModel", "PackagedOnnx", "Pooling", "SentenceTransformerSettings", "_load_torch", "check_head",
    "choose_engine", "cross_encoder_scores", "cut_texts", "dequantise_onnx", "detect_kind", "encode_pairs",
    "encode_texts", "export_onnx", "int8_graph", "length_order", "load_model", "load_tokenizer", "loading",
    "native_bf16_cpu", "onnx_file", "onnx_is_quantised", "packaged_onnx", "pool", "progress", "resolve_device",
    "resolve_dtype", "resolve_model", "torch_checkpoint",
]
