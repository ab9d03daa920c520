"""Unit tests of every formula: Average@k, pass@k, exposure cut, divergences.

python -m pytest -q tests/test_formulas.py
"""

import math

import pytest
import torch

from harness.evaluation.metrics_math import average_at_k, mean_pass_at_k, pass_at_k
from harness.losses.divergences import entropy, generalized_jsd, kl, masked_mean
from harness.prompts.cut import cut_steps, cut_tokens, prefix_length
from harness.prompts.templates import PromptTemplates


def test_average_at_k_by_hand():
    rows = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]  # per-problem 0.5, 0.25, 0
    mean, se = average_at_k(rows)
    assert mean == pytest.approx(0.25)
    sd = math.sqrt(((0.25) ** 2 + 0 + 0.25**2) / 2)
    assert se == pytest.approx(sd / math.sqrt(3))
    assert average_at_k([[1, 0]]) == (0.5, 0.0)


def test_pass_at_k_by_hand():
    assert pass_at_k(12, 0, 4) == 0.0
    assert pass_at_k(12, 12, 1) == 1.0
    assert pass_at_k(12, 3, 1) == pytest.approx(3 / 12)
    # 1 - C(9,4)/C(12,4) = 1 - 126/495
    assert pass_at_k(12, 3, 4) == pytest.approx(1 - 126 / 495)
    assert pass_at_k(4, 1, 4) == 1.0
    assert mean_pass_at_k([[1, 0, 0, 0], [0, 0, 0, 0]], 1) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_prefix_length_is_ceil_and_robust():
    assert prefix_length(0.0, 26) == 0
    assert prefix_length(1.0, 26) == 26
    assert prefix_length(0.25, 26) == 7  # ceil(6.5)
    assert prefix_length(0.1, 30) == 3  # float 0.1*30 = 3.0000000000000004 must not give 4
    with pytest.raises(ValueError, match=r"exposure=1.5 is invalid"):
        prefix_length(1.5, 10)


def test_cut_monotone_and_endpoints():
    ids = list(range(26))
    lengths = [len(cut_tokens(ids, r / 20)) for r in range(21)]
    assert lengths[0] == 0 and lengths[-1] == 26
    assert all(a <= b for a, b in zip(lengths, lengths[1:]))
    assert cut_steps(["a ;", "b ;", "ans c"], 0.5) == ["a ;", "b ;"]


def test_r0_teacher_context_is_student_context():
    tpl = PromptTemplates()
    assert tpl.teacher_prompt("1 + 2", "") == tpl.student_prompt("1 + 2")
    assert tpl.teacher_prompt("1 + 2", "1 + 2 = 3").startswith("ref : 1 + 2 = 3 |")


def _logits(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g)


def test_kl_and_entropy_direct():
    p, q = _logits()
    P, Q = p.softmax(-1), q.softmax(-1)
    assert torch.allclose(kl(p, q), (P * (P.log() - Q.log())).sum(-1), atol=1e-6)
    assert torch.allclose(entropy(p), -(P * P.log()).sum(-1), atol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.25, 0.5, 1.0])
def test_generalized_jsd_direct(beta):
    t, s = _logits(1)
    T, S = t.softmax(-1), s.softmax(-1)
    if beta == 0.0:
        want = (T * (T.log() - S.log())).sum(-1)  # forward KL(T||S)
    elif beta == 1.0:
        want = (S * (S.log() - T.log())).sum(-1)  # reverse KL(S||T)
    else:
        M = beta * T + (1 - beta) * S
        want = beta * (T * (T.log() - M.log())).sum(-1) + (1 - beta) * (S * (S.log() - M.log())).sum(-1)
    assert torch.allclose(generalized_jsd(t, s, beta), want, atol=1e-6)


def test_jsd_topk_support_and_gradient_only_into_student():
    t, s = _logits(2)
    s.requires_grad_(True)
    t.requires_grad_(True)
    k = 3
    idx = t.topk(k, -1).indices
    T = t.gather(-1, idx).softmax(-1)
    S = s.gather(-1, idx).softmax(-1)
    M = 0.5 * T + 0.5 * S
    want = 0.5 * (T * (T.log() - M.log())).sum(-1) + 0.5 * (S * (S.log() - M.log())).sum(-1)
    got = generalized_jsd(t, s, 0.5, "topk", k)
    assert torch.allclose(got, want, atol=1e-6)
    got.sum().backward()
    assert t.grad is None and s.grad is not None


def test_jsd_zero_when_equal_and_masked_mean():
    t, _ = _logits(3)
    assert generalized_jsd(t, t.clone(), 0.5).abs().max() < 1e-6
    v = torch.tensor([[1.0, 2.0, 100.0]])
    m = torch.tensor([[1, 1, 0]])
    assert masked_mean(v, m).item() == pytest.approx(1.5)
