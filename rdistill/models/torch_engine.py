"""The PyTorch engine: a folder of PyTorch weights through transformers, in fp32, bf16 or fp16.

On the CPU, bf16 is fp32 weights under bf16 autocast (:class:`CpuBf16`); elsewhere the weights are cast.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers

from rdistill.errors import UsageError
from rdistill.models.resolve import Kind, check_head, loading

INSTALL = "PyTorch models need torch and transformers: pip install -e ."


def load(path: str, kind: Kind, device: torch.device, dtype: str | None, allow_new_head: bool) -> tuple[str, Any]:
    """The folder's model at ``dtype`` on ``device``, and the engine's label (recorded in the encoders' settings)."""
    wanted = resolve_dtype(dtype, device)
    if wanted == torch.bfloat16 and device.type == "cpu":
        model = _load_torch(path, kind, torch.float32, allow_new_head).to(device).eval()
        return "torch-bf16-autocast", CpuBf16(model)
    model = _load_torch(path, kind, wanted, allow_new_head).to(device).eval()
    # The engine is part of an embedding cache's key (settings()): a bf16 or fp16 model's embeddings are not fp32's.
    return ("torch" if wanted == torch.float32 else f"torch-{str(wanted).removeprefix('torch.')}"), model


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
