"""TRL 1.16's fused divergence kernel (trl.kernels.chunked_divergence) against ours at Qwen3's vocabulary.

python -m pytest -q tests/test_trl_kernel.py

loss.kernel=trl takes the loss and its gradient from TRL's kernel (Triton on CUDA; here its torch
fallback) and the statistics from a gradient-free pass of ours: the same loss, gradients and
statistics as loss.kernel=harness, within float tolerance.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.config.fields import ConfigError
from harness.config.settings import compose
from harness.losses.chunked import DivergenceSpec, chunked_divergence, kernel_of, spec_of

V = 151936


@pytest.mark.parametrize("beta", [pytest.param(0.0, marks=pytest.mark.slow), 0.5,
                                  pytest.param(1.0, marks=pytest.mark.slow)])
def test_trl_kernel_equals_ours_at_real_vocab(beta):
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, V, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, 16, generator=g) * 0.5)
    h_s0 = torch.randn(48, 16, generator=g)
    h_t, ids = torch.randn(48, 16, generator=g), torch.randint(0, V, (48,), generator=g)
    ours_spec = DivergenceSpec(beta=beta, temperature=1.1, block=32)
    out = {}
    for kernel in ("harness", "trl"):
        h_s = h_s0.clone().requires_grad_(True)
        head.weight.grad = None
        loss, stats = chunked_divergence(h_s, h_t, ids, head, replace(ours_spec, kernel=kernel))
        loss.backward()
        out[kernel] = (loss.detach(), stats, h_s.grad.clone(), head.weight.grad.clone())
    (l_o, st_o, gh_o, gw_o), (l_t, st_t, gh_t, gw_t) = out["harness"], out["trl"]
    assert l_o.item() > 0
    torch.testing.assert_close(l_t, l_o, rtol=5e-4, atol=1e-5)
    torch.testing.assert_close(gh_t, gh_o, rtol=5e-4, atol=1e-6)
    torch.testing.assert_close(gw_t, gw_o, rtol=5e-4, atol=1e-6)
    torch.testing.assert_close(st_t, st_o)  # the same gradient-free statistics pass


def test_auto_takes_trl_only_on_cuda_where_it_computes_the_loss(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert kernel_of("auto", "full", None, None) == "trl"
    assert kernel_of("auto", "topk", None, None) == "harness"
    assert kernel_of("auto", "full", 0.05, None) == "harness"
    assert kernel_of("trl", "full", None, 5.0) == "harness"  # SDAR's gated term stays ours
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert kernel_of("auto", "full", None, None) == "harness"
    assert spec_of(compose(["profile=smoke", "loss.kernel=trl"]).loss, V).kernel == "trl"


def test_trl_kernel_with_a_clip_or_topk_is_one_line():
    for extra in ("loss.clip=0.05", "loss.support=topk"):
        with pytest.raises(ConfigError, match="loss.kernel"):
            compose(["loss.kernel=trl", extra])


def test_the_gpu_checks_side_by_side_row_runs_here():
    """make gpu-check's kernel row (harness/bench/kernel.py on_device): on the CPU its tiny point,
    the same code that times both kernels at the 1.7B hidden size in bf16 on CUDA."""
    from harness.bench.kernel import on_device

    row = on_device(cuda=False, rounds=1)
    assert row["vocab"] == V and set(row["seconds"]) == {"harness", "trl"}
    assert row["ratio_trl_over_harness"] > 0
    assert row["loss"]["trl"] == pytest.approx(row["loss"]["harness"], rel=5e-4)
