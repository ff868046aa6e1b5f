"""The paper's four training losses, per query, computed in fp32 whatever the model's dtype.

``s`` are the student's scores of a batch of groups, shape [B, G]; ``t`` the teacher's, same shape; column 0 holds
the positive. ``mask`` (bool, [B, G]) marks real documents when groups in a batch differ in size; column 0 is always
real. Each function returns one loss per query ([B]), so callers can average over queries across gradient
accumulation and data-parallel ranks and get exactly the mean over the global batch.

:data:`LOSSES` is the one table of losses: a row holds the function and everything the trainer and `rdistill
train` ask of a loss's name. The module imports torch only inside the functions, so that the command's --help
(read off the table) stays as fast as every other command's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LossFn = Callable[["torch.Tensor", "torch.Tensor | None", "torch.Tensor | None", float], "torch.Tensor"]


def _full_mask(s: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    import torch

    return torch.ones_like(s, dtype=torch.bool) if mask is None else mask.to(s.device)


def _masked_log_softmax(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Padding gets -inf before the softmax, so it carries no probability; its log-prob is zeroed afterwards so that
    # 0 * -inf never turns into NaN in a sum.
    import torch

    logp = torch.log_softmax(x.masked_fill(~mask, float("-inf")), dim=-1)
    return logp.masked_fill(~mask, 0.0)


def lce(s: torch.Tensor, t: torch.Tensor | None = None, mask: torch.Tensor | None = None,
        temperature: float = 1.0) -> torch.Tensor:
    """Localised contrastive estimation: cross-entropy of softmax(s) against the positive in column 0."""
    s = s.float()
    return -_masked_log_softmax(s, _full_mask(s, mask))[:, 0]


def marginmse(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
              temperature: float = 1.0) -> torch.Tensor:
    """Margin-MSE: mean over negatives i >= 1 of ((s0 - si) - (t0 - ti))^2."""
    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)[:, 1:].float()
    diff = (s[:, :1] - s[:, 1:]) - (t[:, :1] - t[:, 1:])
    return (diff.square() * m).sum(1) / m.sum(1).clamp(min=1.0)


def ranknet(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
            temperature: float = 1.0) -> torch.Tensor:
    """RankNet: mean over pairs i < j of BCE-with-logits(si - sj, 1[ti > tj])."""
    import torch
    import torch.nn.functional as F

    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    g = s.shape[1]
    upper = torch.triu(torch.ones(g, g, dtype=torch.bool, device=s.device), diagonal=1)
    pairs = (upper & m[:, :, None] & m[:, None, :]).float()
    logits = s[:, :, None] - s[:, None, :]
    target = (t[:, :, None] > t[:, None, :]).float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1.0)


def kl(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
       temperature: float = 1.0) -> torch.Tensor:
    """KL(softmax(t / T) || softmax(s / T)) per query (the batch mean is taken by the caller)."""
    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    log_q = _masked_log_softmax(s / temperature, m)
    log_p = _masked_log_softmax(t / temperature, m)
    return (log_p.exp() * (log_p - log_q) * m).sum(1)


@dataclass(frozen=True)
class Loss:
    """One row of :data:`LOSSES`: the function, and what training asks of the loss."""

    fn: LossFn
    help: str  # its entry under "Losses" in `rdistill train --help`
    needs_teacher: bool  # learns from the groups' teacher scores (groups with "scores": null are refused)
    needs_positive: bool  # column 0 must hold a judged positive (the others may rank any list)
    in_batch: bool = False  # can take other queries' documents as extra negatives (--in-batch-negatives)

    def __call__(self, s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
                 temperature: float = 1.0) -> torch.Tensor:
        return self.fn(s, t, mask, temperature)


# The losses by name, in the order `rdistill train --help` lists them. A new loss is one function and one row.
LOSSES: dict[str, Loss] = {
    "lce": Loss(lce, "localised contrastive estimation: cross-entropy of the positive (labels only)",
                needs_teacher=False, needs_positive=True, in_batch=True),
    "marginmse": Loss(marginmse, "Margin-MSE: the student's positive-negative margins regress the teacher's",
                      needs_teacher=True, needs_positive=True),
    "ranknet": Loss(ranknet, "RankNet: each pair of documents ordered as the teacher orders them",
                    needs_teacher=True, needs_positive=False),
    "kl": Loss(kl, "KL divergence of the student's softmax from the teacher's, at --temperature",
               needs_teacher=True, needs_positive=False),
}


def losses_help(indent: str = "") -> str:
    """The "Losses" paragraph of `rdistill train --help`, one entry a row of :data:`LOSSES`."""
    width = max(map(len, LOSSES)) + 2
    return "\n".join(f"{indent}  {name:<{width}}{row.help}" for name, row in LOSSES.items())


def loss_names(keep: Callable[[Loss], bool] = lambda row: True, conj: str = "or") -> str:
    """The names of the losses ``keep`` accepts, as a sentence would list them ("a, b or c")."""
    names = [name for name, row in LOSSES.items() if keep(row)]
    return f" {conj} ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else ""
