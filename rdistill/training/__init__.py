"""Training students by distillation (``rdistill train``): losses, group batches and the training loop."""

from rdistill.training.losses import LOSSES, NEEDS_TEACHER
from rdistill.training.trainer import TrainConfig, TrainResult, train

__all__ = ["LOSSES", "NEEDS_TEACHER", "TrainConfig", "TrainResult", "train"]
