"""The training losses, per query, computed in fp32 whatever the model's dtype: the paper's four (lce, marginmse,
ranknet, kl) and three listwise ones (listmle, lambdaloss, adrmse).

``s`` are the student's scores of a batch of groups, shape [B, G]; ``t`` the teacher's, same shape; column 0 holds
the positive (for the losses that need one; a positive-free list is just a list). ``mask`` (bool, [B, G]) marks
real documents when groups in a batch differ in size; column 0 is always real, and padding never enters a loss:
no mean, sum, softmax, rank or pair counts it. Each function returns one loss per query ([B]), so callers can
average over queries across gradient accumulation and data-parallel ranks and get exactly the mean over the global
batch.

:data:`LOSSES` is the one table of losses: a row holds the function and everything the trainer and `rdistill
train` ask of a loss's name. The module imports torch only inside the functions, so that the command's --help
(read off the table) stays as fast as every other command's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rdistill.schema import POSITIVE_KINDS

if TYPE_CHECKING:
    import torch

# (s, t, mask, temperature, **options named by the row) -> one loss per query
LossFn = Callable[..., "torch.Tensor"]


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
    """T^2 * KL(softmax(t / T) || softmax(s / T)) per query (the batch mean is taken by the caller).

    The T^2 factor is Hinton et al.'s (2015): softening by T shrinks the gradient by 1/T^2, and the factor restores
    it, so changing --temperature changes the target's shape, not the effective learning rate (sentence-transformers
    and most distillation code do the same). At T = 1 it is the plain KL divergence.
    """
    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    log_q = _masked_log_softmax(s / temperature, m)
    log_p = _masked_log_softmax(t / temperature, m)
    return temperature ** 2 * (log_p.exp() * (log_p - log_q) * m).sum(1)


def _pair_mask(m: torch.Tensor) -> torch.Tensor:
    """[B, G, G]: both documents real."""
    return m[:, :, None] & m[:, None, :]


def listmle(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
            temperature: float = 1.0) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): the negative log Plackett-Luce likelihood of the teacher's order under the student.

    Per query, the sum over documents i of logsumexp(s_j over the documents j the teacher does not rank above i)
    minus s_i. Without ties that is Xia's formula term for term. Documents the teacher ties take Breslow's
    convention (as Cox's partial likelihood does): each competes against the whole tied block, so the loss invents
    no order between them, and it is the same whatever their order in the file.
    """
    import torch

    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    # [B, i, j]: j is still in the running when i is drawn; i itself always is, so each row has a finite logsumexp.
    eye = torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
    allowed = ((t[:, None, :] <= t[:, :, None]) & m[:, None, :]) | eye
    lse = s[:, None, :].expand_as(allowed).masked_fill(~allowed, float("-inf")).logsumexp(-1)
    return torch.where(m, lse - s, 0.0).sum(1)


def lambdaloss(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
    """LambdaLoss with the NDCG-Loss2 weights (Wang et al. 2018), the teacher's softmax as graded labels.

    Labels y = softmax(t) over the group (shift-free, so a log-probability or a logit teacher both give labels in
    [0, 1]); gains G_i = (2^y_i - 1) / maxDCG. Positions are the student's ranks (ties in file order); for every
    pair the teacher orders, y_i > y_j, the loss adds -log2(sigmoid(s_i - s_j)) * delta_ij * |G_i - G_j|, with
    delta_ij = |1 / log2(1 + |r_i - r_j|) - 1 / log2(2 + |r_i - r_j|)|. One sum per query.
    """
    import math

    import torch
    import torch.nn.functional as F

    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    n = s.shape[1]
    y = _masked_log_softmax(t, m).exp() * m
    # The student's ranking: padding last (it never enters a pair), ties kept in file order.
    order = s.detach().masked_fill(~m, float("-inf")).sort(dim=1, descending=True, stable=True).indices
    s_r, y_r, m_r = s.gather(1, order), y.gather(1, order), m.gather(1, order)
    discount = torch.log2(torch.arange(2, n + 2, device=s.device, dtype=torch.float32))  # log2(1 + rank)
    ideal = y.sort(dim=1, descending=True).values
    max_dcg = ((2 ** ideal - 1) / discount).sum(1).clamp(min=torch.finfo(torch.float32).tiny)
    gain = (2 ** y_r - 1) / max_dcg[:, None]
    ranks = torch.arange(n, device=s.device, dtype=torch.float32)
    gap = (ranks[:, None] - ranks[None, :]).abs()
    delta = ((1 / torch.log2(1 + gap)) - 1 / torch.log2(2 + gap)).abs().masked_fill(gap == 0, 0.0)
    weight = delta[None] * (gain[:, :, None] - gain[:, None, :]).abs()
    pairs = (y_r[:, :, None] > y_r[:, None, :]) & _pair_mask(m_r)
    log2_sigmoid = F.logsigmoid(s_r[:, :, None] - s_r[:, None, :]) / math.log(2)
    return -torch.where(pairs, weight * log2_sigmoid, 0.0).sum((1, 2))


def teacher_ranks(t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Each real document's rank by the teacher (1 = best), a tied block sharing the mean of the ranks it spans."""
    higher = ((t[:, None, :] > t[:, :, None]) & m[:, None, :]).sum(-1)
    tied = ((t[:, None, :] == t[:, :, None]) & m[:, None, :]).sum(-1) - 1  # others with the same score
    return 1 + higher.float() + tied.clamp(min=0).float() / 2


def adrmse(s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None, temperature: float = 1.0,
           alpha: float = 1.0) -> torch.Tensor:
    """ADR-MSE (Schlatt et al., Rank-DistiLLM, arXiv 2405.07920): approximate ranks against the teacher's.

    The student's approximate rank of i is 1 + sum over the other real documents j of sigmoid(alpha (s_j - s_i));
    the teacher's rank r_i averages ties; the loss is the mean over the real documents of
    (approx_i - r_i)^2 / log2(1 + r_i): one mean per query, padding never in it.
    """
    import torch

    assert t is not None
    s, t = s.float(), t.float().to(s.device)
    m = _full_mask(s, mask)
    eye = torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
    others = _pair_mask(m) & ~eye
    approx = 1 + torch.where(others, torch.sigmoid(alpha * (s[:, None, :] - s[:, :, None])), 0.0).sum(-1)
    ranks = teacher_ranks(t, m)
    per_doc = (approx - ranks).square() / torch.log2(1 + ranks)
    return torch.where(m, per_doc, 0.0).sum(1) / m.sum(1).clamp(min=1)


@dataclass(frozen=True)
class Loss:
    """One row of :data:`LOSSES`: the function, and what training asks of the loss."""

    fn: LossFn
    help: str  # its entry under "Losses" in `rdistill train --help`
    needs_teacher: bool  # learns from the groups' teacher scores (groups with "scores": null are refused)
    needs_positive: bool  # column 0 must hold a positive: positive-free groups ("positives": "none") are refused
    in_batch: bool = False  # can take other queries' documents as extra negatives (--in-batch-negatives)
    judged_only: bool = False  # learns from labels: a pseudo positive (the teacher's top document) is refused too
    options: tuple[str, ...] = ()  # TrainConfig fields passed to fn by name (besides the temperature)
    uses_temperature: bool = False  # reads --temperature (recorded on the model card only then)
    formula: str = ""  # what the loss computes, recorded in rdistill_train.json

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of group (schema.POSITIVE_KINDS) the loss trains on."""
        if self.judged_only:
            return ("judged",)
        return ("judged", "pseudo") if self.needs_positive else POSITIVE_KINDS

    def __call__(self, s: torch.Tensor, t: torch.Tensor | None, mask: torch.Tensor | None = None,
                 temperature: float = 1.0, **options: float) -> torch.Tensor:
        return self.fn(s, t, mask, temperature, **options)


# The losses by name, in the order `rdistill train --help` lists them. A new loss is one function and one row.
LOSSES: dict[str, Loss] = {
    "lce": Loss(lce, "localised contrastive estimation: cross-entropy of the positive (labels only)",
                needs_teacher=False, needs_positive=True, in_batch=True, judged_only=True,
                formula="-log softmax(s)[0]"),
    "marginmse": Loss(marginmse, "Margin-MSE: the student's positive-negative margins regress the teacher's",
                      needs_teacher=True, needs_positive=True, in_batch=True,
                      formula="mean_i>=1 ((s0 - si) - (t0 - ti))^2"),
    "ranknet": Loss(ranknet, "RankNet: each pair of documents ordered as the teacher orders them",
                    needs_teacher=True, needs_positive=False, in_batch=True,
                    formula="mean_i<j BCE-with-logits(si - sj, 1[ti > tj])"),
    "kl": Loss(kl, "KL divergence of the student's softmax from the teacher's at --temperature T, times T^2",
               needs_teacher=True, needs_positive=False, in_batch=True, uses_temperature=True,
               formula="T^2 * KL(softmax(t/T) || softmax(s/T)) (Hinton's T^2: the gradient keeps its size as T "
               "changes)"),
    "listmle": Loss(listmle, "ListMLE: likelihood of the teacher's order under the student (ties: Breslow)",
                    needs_teacher=True, needs_positive=False, in_batch=True,
                    formula="sum_i logsumexp(s_j : t_j <= t_i) - s_i"),
    "lambdaloss": Loss(lambdaloss, "LambdaLoss, NDCG-Loss2 weights: pairs weighted by their NDCG change, labels "
                       "softmax(t)",
                       needs_teacher=True, needs_positive=False, in_batch=True,
                       formula="-sum_{yi > yj} delta_ij |Gi - Gj| log2 sigmoid(si - sj), y = softmax(t), "
                       "G = (2^y - 1) / maxDCG, ranks by s"),
    "adrmse": Loss(adrmse, "ADR-MSE: approximate ranks regress the teacher's, weighted 1 / log2(1 + rank)",
                   needs_teacher=True, needs_positive=False, in_batch=True, options=("alpha",),
                   formula="mean_i (1 + sum_j!=i sigmoid(alpha (sj - si)) - r_i)^2 / log2(1 + r_i), r = teacher "
                   "ranks, ties averaged"),
}


def losses_help(indent: str = "") -> str:
    """The "Losses" paragraph of `rdistill train --help`, one entry a row of :data:`LOSSES`."""
    width = max(map(len, LOSSES)) + 2
    return "\n".join(f"{indent}  {name:<{width}}{row.help}" for name, row in LOSSES.items())


def kinds_help() -> str:
    """Which losses take which kind of group ("positives" in the groups file), read off :data:`LOSSES`."""
    parts = []
    for kinds, what in ((("judged",), "judged groups only"), (("judged", "pseudo"), "judged or pseudo-positive "
                        "groups"), (POSITIVE_KINDS, "any group, positive-free lists too")):
        names = loss_names(lambda row, k=kinds: row.kinds == k, "and")  # type: ignore[misc]
        if names:
            parts.append(f"{names}: {what}")
    return "; ".join(parts) + "."


def loss_names(keep: Callable[[Loss], bool] = lambda row: True, conj: str = "or") -> str:
    """The names of the losses ``keep`` accepts, as a sentence would list them ("a, b or c")."""
    names = [name for name, row in LOSSES.items() if keep(row)]
    return f" {conj} ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else ""
