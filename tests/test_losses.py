"""Each training loss against a case computed by hand (and with the math module, not torch), plus the properties
the trainer relies on: one loss per query, fp32 whatever the input dtype, padding that changes nothing."""

from __future__ import annotations

import math

import pytest
import torch

from rdistill.training.losses import LOSSES, kl, lce, marginmse, ranknet

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
    assert kl(S, T, temperature=temp).item() == pytest.approx(expected, abs=1e-6)
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
