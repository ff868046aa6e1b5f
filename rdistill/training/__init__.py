"""Training students by distillation (``rdistill train``): losses, group batches and the training loop.

The training loop (and torch with it) is imported on first use of ``train``, ``TrainConfig`` or ``TrainResult``:
`rdistill train --help` reads the losses' table (:mod:`rdistill.training.losses`) without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rdistill.training.losses import LOSSES, Loss

if TYPE_CHECKING:
    from rdistill.training.trainer import TrainConfig, TrainResult, train

__all__ = ["LOSSES", "Loss", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in ("TrainConfig", "TrainResult", "train"):
        from rdistill.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'rdistill.training' has no attribute {name!r}")
