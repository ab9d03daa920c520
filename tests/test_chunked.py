"""The chunked divergence equals the batch-wide one (harness/losses/divergences.py): values,
statistics, gradients.

python -m pytest -q tests/test_chunked.py
"""

from __future__ import annotations

import pytest
import torch

from harness.losses.chunked import COL, DivergenceSpec, _ChunkedDivergence, block_tokens, chunked_divergence
from harness.losses.divergences import entropy, generalized_jsd, kl


def reference(h_s, h_t, ids, head, spec):
    """Today's batch-wide path: full logits, harness.losses.divergences, autograd."""
    z_s1, z_t1 = head(h_s), head(h_t).detach()
    T = spec.temperature
    d = generalized_jsd(z_t1 / T, z_s1 / T, spec.beta, spec.support, spec.topk)
    lp_s, lp_t = torch.log_softmax(z_s1 / T, -1), torch.log_softmax(z_t1 / T, -1)
    ls_y = lp_s.gather(-1, ids[:, None]).squeeze(-1)
    lt_y = lp_t.gather(-1, ids[:, None]).squeeze(-1)
    gate = None if spec.gate_beta is None else torch.sigmoid(spec.gate_beta * (lt_y - ls_y)).detach()
    w = torch.ones_like(d) if gate is None else gate
    s, t = z_s1.detach(), z_t1
    stats = {"mismatch_kl_st": kl(s, t), "mismatch_kl_ts": kl(t, s), "teacher_entropy": entropy(t),
             "student_entropy": entropy(s), "student_confidence": s.softmax(-1).amax(-1),
             "student_logp_y": ls_y.detach(), "teacher_logp_y": lt_y, "divergence": d.detach(), "weight": w}
    return (w * d).sum(), stats


def setup(seed=0, n=37, hid=8, vocab=50):
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(hid, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hid, generator=g))
    h_s = torch.randn(n, hid, generator=g, requires_grad=True)
    h_t = torch.randn(n, hid, generator=g)
    ids = torch.randint(0, vocab, (n,), generator=g)
    return head, h_s, h_t, ids


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("support", ["full", "topk"])
@pytest.mark.parametrize("temperature", [1.0, 1.1])
@pytest.mark.parametrize("gate_beta", [None, 5.0])
def test_same_numbers_and_gradients(beta, support, temperature, gate_beta):
    head, h_s, h_t, ids = setup()
    spec = DivergenceSpec(beta=beta, temperature=temperature, support=support, topk=7,
                          gate_beta=gate_beta, block=5)  # 37 tokens: 8 blocks, the last of 2
    ref_loss, ref_stats = reference(h_s, h_t, ids, head, spec)
    g_h_ref, g_w_ref = torch.autograd.grad(ref_loss, (h_s, head.weight))
    loss, stats = chunked_divergence(h_s, h_t, ids, head, spec)
    g_h, g_w = torch.autograd.grad(loss * 0.37, (h_s, head.weight))  # the backward scales
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    for name, col in COL.items():
        torch.testing.assert_close(stats[:, col], ref_stats[name], rtol=1e-5, atol=1e-5, msg=name)
    torch.testing.assert_close(g_h, 0.37 * g_h_ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(g_w, 0.37 * g_w_ref, rtol=1e-4, atol=1e-6)


def test_frozen_head_and_no_grad():
    head, h_s, h_t, ids = setup()
    head.weight.requires_grad_(False)
    spec = DivergenceSpec(beta=0.5, block=4)
    loss, _ = chunked_divergence(h_s, h_t, ids, head, spec)
    (g_h,) = torch.autograd.grad(loss, (h_s,))
    ref_loss, _ = reference(h_s, h_t, ids, head, spec)
    torch.testing.assert_close(g_h, torch.autograd.grad(ref_loss, (h_s,))[0], rtol=1e-4, atol=1e-6)
    with torch.no_grad():  # the probe's use: statistics only, nothing kept for a backward
        loss2, stats = chunked_divergence(h_s, h_t, ids, head, spec)
    assert not loss2.requires_grad and stats.shape == (37, len(COL))


def test_gradcheck_double():
    """torch.autograd.gradcheck in float64 on the student's hidden states, two blocks (the head
    weight's gradient is checked against autograd above: a finite difference of the weight
    would also move the teacher, and one of h the SDAR gate, both held fixed by design)."""
    head, h_s, h_t, ids = setup(n=6, hid=3, vocab=5)
    w = head.double().weight.detach()
    h_s = h_s.detach().double().requires_grad_(True)
    for spec in (DivergenceSpec(beta=0.5, temperature=1.1, block=4),
                 DivergenceSpec(beta=0.0, support="topk", topk=3, block=4)):
        assert torch.autograd.gradcheck(
            lambda h, spec=spec: _ChunkedDivergence.apply(h, h_t.double(), ids, w, None, (w, None), spec)[0],
            (h_s,), eps=1e-6, atol=1e-5)


def test_block_tokens_at_real_vocab():
    assert block_tokens(151_936, 64.0) == 110  # 110 x 151,936 x 4 bytes <= 64 MiB
    assert block_tokens(117, 64.0) > 100_000  # the embedded default: one block
    assert block_tokens(10**9, 1.0) == 1


def test_teacher_head_of_its_own():
    """A frozen copy teacher (teacher.mode=base without LoRA) has its own head weights."""
    head, h_s, h_t, ids = setup()
    t_head = torch.nn.Linear(8, 50, bias=False)
    spec = DivergenceSpec(beta=0.5, block=6)
    loss, stats = chunked_divergence(h_s, h_t, ids, head, spec, teacher_head=t_head)
    ref = generalized_jsd(t_head(h_t).detach(), head(h_s), 0.5).sum()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats[:, COL["mismatch_kl_st"]], kl(head(h_s).detach(), t_head(h_t).detach()),
                               rtol=1e-5, atol=1e-5)


def test_statistics_only_spec_gives_the_same_statistics():
    """loss=False (the probe): the mismatch columns as with the loss, D not computed."""
    head, h_s, h_t, ids = setup()
    _, full = chunked_divergence(h_s, h_t, ids, head, DivergenceSpec(beta=0.5, block=5))
    total, stats = chunked_divergence(h_s, h_t, ids, head, DivergenceSpec(beta=0.5, block=5, loss=False))
    keep = [COL[k] for k in ("mismatch_kl_st", "mismatch_kl_ts", "teacher_entropy", "student_logp_y")]
    torch.testing.assert_close(stats[:, keep], full[:, keep])
    assert float(total) == 0.0 and not stats.requires_grad
