"""loss.clip: OPSD's per-entry clipping of the divergence, against a brute-force loop.

python -m pytest -q tests/test_loss_clip.py
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.config.fields import ConfigError
from harness.config.settings import compose
from harness.losses.chunked import COL, DivergenceSpec, chunked_divergence, spec_of
from harness.losses.divergences import generalized_jsd


def brute(t_V: list[float], s_V: list[float], beta: float, clip: float) -> float:
    """sum_v min(d_v, clip), d_v the generalized JSD's term of entry v, by plain Python."""
    zt, zs = math.log(sum(math.exp(x) for x in t_V)), math.log(sum(math.exp(x) for x in s_V))
    total = 0.0
    for a, b in zip(t_V, s_V, strict=True):
        pt, ps = math.exp(a - zt), math.exp(b - zs)
        if beta == 0.0:
            d = pt * math.log(pt / ps)
        elif beta == 1.0:
            d = ps * math.log(ps / pt)
        else:
            m = beta * pt + (1 - beta) * ps
            d = beta * pt * math.log(pt / m) + (1 - beta) * ps * math.log(ps / m)
        total += min(d, clip)
    return total


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_clipped_divergence_equals_the_brute_force_sum(beta):
    g = torch.Generator().manual_seed(1)
    t, s = torch.randn(5, 40, generator=g) * 3, torch.randn(5, 40, generator=g) * 3
    got = generalized_jsd(t, s, beta, clip=0.05)
    want = [brute(t[i].tolist(), s[i].tolist(), beta, 0.05) for i in range(5)]
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)
    unclipped = generalized_jsd(t, s, beta)
    assert (got < unclipped - 1e-3).all()  # these logits have entries above 0.05: the clip bites
    assert torch.allclose(generalized_jsd(t, s, beta, clip=1e9), unclipped, atol=1e-5)


def test_a_clipped_entry_passes_no_gradient():
    t = torch.tensor([[4.0, 0.0, 0.0, 0.0]])
    s = torch.tensor([[0.0, 0.0, 0.0, 4.0]], requires_grad=True)
    generalized_jsd(t, s, 0.5, clip=1e-6).sum().backward()
    assert torch.count_nonzero(s.grad) == 0  # every entry's term is above 1e-6: all clipped


def test_the_chunked_loss_clips_as_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(8, 500, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(500, 8, generator=g) * 2)
    h_s = torch.randn(30, 8, generator=g, requires_grad=True)
    h_t, ids = torch.randn(30, 8, generator=g), torch.randint(0, 500, (30,), generator=g)
    spec = DivergenceSpec(beta=0.5, temperature=1.1, block=7, clip=0.01)
    loss, stats = chunked_divergence(h_s, h_t, ids, head, spec)
    ref = generalized_jsd(head(h_t).detach() / 1.1, head(h_s) / 1.1, 0.5, clip=0.01).sum()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats[:, COL["divergence"]].sum(), ref.detach(), rtol=1e-5, atol=1e-6)
    (g_h,) = torch.autograd.grad(loss, (h_s,))
    torch.testing.assert_close(g_h, torch.autograd.grad(ref, (h_s,))[0], rtol=1e-4, atol=1e-6)


def test_clip_is_off_by_default_on_at_0_05_in_the_paper_presets_and_checked():
    assert compose(["profile=smoke"]).loss.clip is None
    for preset in ("paper_qwen3_1p7b", "paper_qwen3_4b", "paper_qwen3_8b"):
        cfg = compose([f"experiment={preset}"])
        assert cfg.loss.clip == 0.05 and spec_of(cfg.loss, 151936).clip == 0.05
    with pytest.raises(ConfigError, match="loss.clip"):
        compose(["loss.clip=-1"])
