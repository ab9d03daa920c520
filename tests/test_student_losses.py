"""The AntiSD advantage and gate and the SDAR gate/term against direct computations.

python -m pytest -q tests/test_student_losses.py
"""

from __future__ import annotations

import math

import torch

from harness.losses.student import (
    EntropyGate,
    antisd_advantage,
    masked_median,
    sdar_gate,
    sdar_term,
    token_gap,
)


def test_antisd_advantage_is_zero_at_zero_gap_signed_and_bounded():
    u = torch.linspace(-30.0, 30.0, 601, dtype=torch.float64)
    a = antisd_advantage(u)
    direct = torch.tensor([-0.5 * (math.log1p(math.exp(x)) - math.log(2)) for x in u.tolist()],
                          dtype=a.dtype)
    assert torch.allclose(a, direct, atol=1e-6)
    assert antisd_advantage(torch.zeros(3)).abs().max() == 0
    assert (a[u > 0] < 0).all() and (a[u < 0] > 0).all()
    assert a.max() < 0.5 * math.log(2) and a.max() > 0.5 * math.log(2) - 1e-6  # the bound, approached
    assert torch.all(a[1:] <= a[:-1])  # monotone: the more the teacher likes a token, the lower


def test_token_gap_is_detached():
    t = torch.tensor([[-1.0, -2.0]])
    s = torch.tensor([[-1.5, -0.5]], requires_grad=True)
    gap = token_gap(t, s)
    assert not gap.requires_grad and torch.equal(gap, torch.tensor([[0.5, -1.5]]))


def test_sdar_gate_and_term():
    gap = torch.tensor([[0.0, 1.0, -1.0]])
    g = sdar_gate(gap, 5.0)
    assert torch.allclose(g, torch.tensor([[0.5, 1 / (1 + math.exp(-5)), 1 / (1 + math.exp(5))]]))
    d = torch.tensor([[2.0, 4.0, 8.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0]])
    term = sdar_term(g, d, mask)
    assert math.isclose(term.item(), (0.5 * 2.0 + g[0, 1].item() * 4.0) / 2, rel_tol=1e-6)
    term.backward()  # gradient through D only, scaled by the (constant) gate
    assert torch.allclose(d.grad, torch.tensor([[0.25, g[0, 1].item() / 2, 0.0]]))


def test_masked_median_keeps_real_tokens_only():
    v = torch.tensor([[1.0, 100.0, 3.0], [2.0, 100.0, 100.0]])
    m = torch.tensor([[1, 0, 1], [1, 0, 0]])
    assert masked_median(v, m) == 2.0


def test_entropy_gate_hysteresis_on_a_hand_made_sequence():
    gate = EntropyGate(warmup_steps=2, off_fraction=0.9, on_fraction=0.95)
    # warm-up 1.0, 1.0 -> H0 = 1; off below 0.9, on above 0.95
    seq = [1.0, 1.0, 0.92, 0.89, 0.93, 0.94, 0.96, 0.91, 0.899]
    want = [True, True, True, False, False, False, True, True, False]
    assert [gate.update(h) for h in seq] == want
    assert gate.reference == 1.0
    again = EntropyGate(warmup_steps=2, off_fraction=0.9, on_fraction=0.95)
    again.load_state_dict(gate.state_dict())
    assert again.update(0.94) is False and again.update(0.951) is True
