"""Each training loss against a case computed by hand (and with the math module, not torch), the listwise losses
also against their published formulas restated below in plain Python loops on random groups (ties, large scores,
unequal lengths), plus the properties the trainer relies on: one loss per query, fp32 whatever the input dtype,
padding that changes nothing."""

from __future__ import annotations

import math

import pytest
import torch

from rdistill.training.losses import LOSSES, adrmse, kl, lambdaloss, lce, listmle, marginmse, ranknet

# One group: the positive first. Chosen so the hand arithmetic stays short.
S = torch.tensor([[2.0, 1.0, 0.0]])
T = torch.tensor([[3.0, 1.0, 2.0]])


def test_lce_by_hand() -> None:
    # -log(e^2 / (e^2 + e^1 + e^0)) = log(1 + e^-1 + e^-2)
    expected = math.log(1 + math.exp(-1) + math.exp(-2))
    assert lce(S).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.4076059644, abs=1e-9)


def test_marginmse_by_hand() -> None:
    # i=1: (2-1) - (3-1) = -1; i=2: (2-0) - (3-2) = 1; mean of squares = 1
    assert marginmse(S, T).item() == pytest.approx(1.0, abs=1e-7)
    # a student whose margins equal the teacher's has no loss, whatever its offset
    assert marginmse(T + 5.0, T).item() == pytest.approx(0.0, abs=1e-6)


def test_ranknet_by_hand() -> None:
    # pairs (0,1): x=1, y=1 -> log(1+e^-1); (0,2): x=2, y=1 -> log(1+e^-2); (1,2): x=1, y=0 (1 > 2 is false)
    # -> log(1+e^1); the mean of the three
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-2)) + math.log1p(math.exp(1))) / 3
    assert ranknet(S, T).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.5844838, abs=1e-6)


def _softmax(xs: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in xs)
    return [math.exp(x) / z for x in xs]


def test_kl_by_hand() -> None:
    # softmax([3,1,2]) and softmax([2,1,0]) hold the same three numbers, so every log ratio is 0, -1 or +1:
    # KL = p1 * (-1) + p2 * (+1) with p = softmax(t)
    p = _softmax([3.0, 1.0, 2.0])
    assert kl(S, T).item() == pytest.approx(p[2] - p[1], abs=1e-6)
    assert p[2] - p[1] == pytest.approx(0.1546979, abs=1e-6)


def test_kl_temperature_by_hand() -> None:
    temp = 2.0
    p = _softmax([x / temp for x in T[0].tolist()])
    q = _softmax([x / temp for x in S[0].tolist()])
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    # Hinton's T^2 factor (issue 28): the softened loss is scaled back up so its gradient keeps its size as T grows.
    assert kl(S, T, temperature=temp).item() == pytest.approx(temp ** 2 * expected, abs=1e-6)
    assert kl(T, T).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("name", list(LOSSES))
def test_one_loss_per_query_in_fp32(name: str) -> None:
    s = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    t = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    out = LOSSES[name](s, t, None, 1.0)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # the batch is independent per query
    assert out[1].item() == pytest.approx(LOSSES[name](s[1:2], t[1:2], None, 1.0).item(), abs=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_padding_changes_nothing(name: str) -> None:
    # A group of 3 padded to 5 columns (with junk in the padding) scores as the group of 3 alone.
    s = torch.tensor([[2.0, 1.0, 0.0, 9.0, -9.0]], requires_grad=True)
    t = torch.tensor([[3.0, 1.0, 2.0, 7.0, 7.0]])
    mask = torch.tensor([[True, True, True, False, False]])
    padded = LOSSES[name](s, t, mask, 1.5)
    alone = LOSSES[name](s[:, :3], t[:, :3], None, 1.5)
    assert padded.item() == pytest.approx(alone.item(), abs=1e-6)
    padded.sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and (s.grad[0, 3:] == 0).all()


def test_kl_gradient_keeps_its_size_as_temperature_grows() -> None:
    # Without T^2 the gradient shrinks like 1/T^2; with it, it tends to ((s - mean s) - (t - mean t)) / G at large T
    # (Hinton et al.): here -(1, 0, -1) / 3, whose absolute values sum to 2/3, at T = 10 and T = 100 alike.
    t = torch.tensor([[1.0, 0.0, -1.0]])
    sizes = []
    for temp in (10.0, 100.0):
        s = torch.zeros(1, 3, requires_grad=True)
        kl(s, t, temperature=temp).sum().backward()
        assert s.grad is not None
        sizes.append(s.grad.abs().sum().item())
    assert sizes[1] == pytest.approx(sizes[0], rel=0.02) and sizes[0] == pytest.approx(2 / 3, rel=0.02)


# ------------------------------------------------------------------------------- listwise losses, by hand


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def test_listmle_by_hand() -> None:
    # teacher order: doc0 (3), doc2 (2), doc1 (1); student scores 2, 0, 1 in that order:
    # [lse(2,0,1) - 2] + [lse(0,1) - 0] + [lse(1) - 1] = log(1 + e^-1 + e^-2) + log(1 + e)
    expected = math.log(1 + math.exp(-1) + math.exp(-2)) + math.log(1 + math.e)
    assert listmle(S, T).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(1.7208675, abs=1e-6)


def test_listmle_ties_invent_no_order() -> None:
    # doc0 and doc1 tie at the top: each competes against all three (Breslow), doc2 against itself alone:
    # 2 lse(1, 0, 2) - 1 - 0 + 0, whichever way the file orders the tied pair
    s, t = torch.tensor([[1.0, 0.0, 2.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    lse = math.log(math.e + 1 + math.e ** 2)
    assert listmle(s, t).item() == pytest.approx(2 * lse - 1, abs=1e-6)
    assert listmle(s[:, [1, 0, 2]], t).item() == pytest.approx(2 * lse - 1, abs=1e-6)


def test_lambdaloss_by_hand() -> None:
    # labels y = softmax(3, 1, 2); the student ranks doc0, doc1, doc2 at 1, 2, 3; the teacher orders every pair:
    # (doc0 over doc1, ranks 1-2), (doc0 over doc2, ranks 1-3), (doc2 over doc1, ranks 3-2).
    y0, y1, y2 = _softmax([3.0, 1.0, 2.0])
    max_dcg = (2 ** y0 - 1) / math.log2(2) + (2 ** y2 - 1) / math.log2(3) + (2 ** y1 - 1) / math.log2(4)
    g0, g1, g2 = ((2 ** y - 1) / max_dcg for y in (y0, y1, y2))
    d1 = 1 / math.log2(2) - 1 / math.log2(3)  # delta for ranks one apart
    d2 = 1 / math.log2(3) - 1 / math.log2(4)  # two apart
    expected = -(d1 * abs(g0 - g1) * math.log2(_sigmoid(2 - 1)) + d2 * abs(g0 - g2) * math.log2(_sigmoid(2 - 0))
                 + d1 * abs(g2 - g1) * math.log2(_sigmoid(0 - 1)))
    assert lambdaloss(S, T).item() == pytest.approx(expected, abs=1e-6)
    # a group the teacher ties throughout holds no pair: nothing to learn, no invented order
    assert lambdaloss(S, torch.full_like(T, 4.0)).item() == 0.0


def test_adrmse_by_hand() -> None:
    # teacher ranks of (3, 1, 2): 1, 3, 2; approximate ranks 1 + sum over the others of sigmoid(s_j - s_i)
    a0 = 1 + _sigmoid(1 - 2) + _sigmoid(0 - 2)
    a1 = 1 + _sigmoid(2 - 1) + _sigmoid(0 - 1)  # = 2
    a2 = 1 + _sigmoid(2 - 0) + _sigmoid(1 - 0)
    expected = ((a0 - 1) ** 2 / math.log2(2) + (a1 - 3) ** 2 / math.log2(4) + (a2 - 2) ** 2 / math.log2(3)) / 3
    assert adrmse(S, T).item() == pytest.approx(expected, abs=1e-6)
    assert a1 == pytest.approx(2.0) and expected == pytest.approx(0.2956185, abs=1e-6)
    # alpha sharpens the sigmoid: at alpha 3, doc1's approximate rank is 1 + sigmoid(3) + sigmoid(-3) = 2 still
    b0 = 1 + _sigmoid(3 * (1 - 2)) + _sigmoid(3 * (0 - 2))
    b2 = 1 + _sigmoid(3 * 2) + _sigmoid(3 * 1)
    sharp = ((b0 - 1) ** 2 + (2 - 3) ** 2 / 2 + (b2 - 2) ** 2 / math.log2(3)) / 3
    assert adrmse(S, T, alpha=3.0).item() == pytest.approx(sharp, abs=1e-6)


def test_adrmse_all_ties_share_the_mean_rank() -> None:
    # every teacher score ties: each document's rank is (1 + 4) / 2 = 2.5; a student that ties them too has
    # approximate ranks 1 + 3 * 0.5 = 2.5 and no loss; any other student has some
    t = torch.full((1, 4), 7.0)
    assert adrmse(torch.zeros(1, 4), t).item() == pytest.approx(0.0, abs=1e-7)
    s = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    a0 = 1 + 3 * _sigmoid(-1.0)
    a_rest = 1 + _sigmoid(1.0) + 2 * 0.5
    expected = ((a0 - 2.5) ** 2 + 3 * (a_rest - 2.5) ** 2) / 4 / math.log2(3.5)
    assert adrmse(s, t).item() == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------- the published formulas, restated in plain Python loops


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _lse(xs: list[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def ref_listmle(s: list[float], t: list[float]) -> float:
    """Xia et al. (2008): -log P(teacher's order) under Plackett-Luce on s; ties (Breslow): a tied block's members
    each see the whole block still in the running."""
    total = 0.0
    for i in range(len(s)):
        running = [s[j] for j in range(len(s)) if t[j] <= t[i]]
        total += _lse(running) - s[i]
    return total


def ref_lambdaloss(s: list[float], t: list[float]) -> float:
    """Wang et al. (2018), NDCG-Loss2: -sum over pairs with y_i > y_j of log2(sigmoid(s_i - s_j)^(delta_ij |G_i -
    G_j|)), ranks by the student (ties in list order), y = softmax(t), G = (2^y - 1) / maxDCG."""
    top = max(t)
    z = sum(math.exp(x - top) for x in t)
    y = [math.exp(x - top) / z for x in t]
    order = sorted(range(len(s)), key=lambda i: -s[i])  # stable: ties keep list order
    ideal = sorted(y, reverse=True)
    max_dcg = sum((2 ** g - 1) / math.log2(1 + r) for r, g in enumerate(ideal, start=1))
    loss = 0.0
    for a, i in enumerate(order):
        for b, j in enumerate(order):
            if y[i] > y[j]:
                gap = abs(a - b)
                delta = abs(1 / math.log2(1 + gap) - 1 / math.log2(2 + gap))
                weight = delta * abs((2 ** y[i] - 1) - (2 ** y[j] - 1)) / max_dcg
                loss -= weight * _log_sigmoid(s[i] - s[j]) / math.log(2)
    return loss


def ref_adrmse(s: list[float], t: list[float], alpha: float = 1.0) -> float:
    """Schlatt et al. (2024): mean over documents of (approximate rank - teacher rank)^2 / log2(1 + teacher rank),
    approximate rank 1 + sum_{j != i} sigmoid(alpha (s_j - s_i)), teacher ranks averaged over ties."""
    n = len(s)
    total = 0.0
    for i in range(n):
        approx = 1 + sum(_sigmoid(alpha * (s[j] - s[i])) for j in range(n) if j != i)
        above = sum(1 for j in range(n) if t[j] > t[i])
        tied = sum(1 for j in range(n) if j != i and t[j] == t[i])
        rank = above + 1 + tied / 2  # the mean of ranks above+1 .. above+1+tied
        total += (approx - rank) ** 2 / math.log2(1 + rank)
    return total / n


REFERENCES = {"listmle": ref_listmle, "lambdaloss": ref_lambdaloss, "adrmse": ref_adrmse}


def _random_batch(seed: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Groups of 2 to 9 documents padded to 9 (junk in the padding), teacher scores drawn from a few values (so
    ties are common), student scores with a few exact ties, both times ``scale``."""
    import random

    rng = random.Random(seed)
    rows = 6
    s = torch.full((rows, 9), 123.0)
    t = torch.full((rows, 9), -55.0)
    mask = torch.zeros(rows, 9, dtype=torch.bool)
    for b in range(rows):
        n = rng.randint(2, 9)
        mask[b, :n] = True
        ts = [float(rng.choice([-2, -1, 0, 1, 3])) * scale for _ in range(n)]
        ss = [rng.gauss(0, 1) * scale for _ in range(n)]
        if n > 2:
            ss[-1] = ss[0]  # a tie in the student's ranking
        t[b, :n], s[b, :n] = torch.tensor(ts), torch.tensor(ss)
    return s, t, mask


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("seed", range(4))
def test_listwise_losses_equal_the_published_formulas(name: str, scale: float, seed: int) -> None:
    s, t, mask = _random_batch(seed, scale)
    got = LOSSES[name](s, t, mask, 1.0)
    assert torch.isfinite(got).all()
    for b in range(s.shape[0]):
        n = int(mask[b].sum())
        # the reference sees float32's values in double precision, so only the arithmetic differs
        want = REFERENCES[name](s[b, :n].double().tolist(), t[b, :n].double().tolist())
        assert got[b].item() == pytest.approx(want, rel=1e-4, abs=1e-4), (b, n)


def test_adrmse_alpha_equals_the_formula() -> None:
    s, t, mask = _random_batch(7, 1.0)
    got = adrmse(s, t, mask, alpha=2.5)
    for b in range(s.shape[0]):
        n = int(mask[b].sum())
        want = ref_adrmse(s[b, :n].double().tolist(), t[b, :n].double().tolist(), alpha=2.5)
        assert got[b].item() == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_listwise_gradients_are_finite_with_large_scores(name: str) -> None:
    s, t, mask = _random_batch(3, 1e4)
    s.requires_grad_(True)
    LOSSES[name](s, t, mask, 1.0).sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and (s.grad[~mask] == 0).all()
