"""Teacher-student divergence and every per-token statistic, block by block from final hidden states.

python -m pytest -q tests/test_chunked.py      # same numbers and gradients as harness/losses/divergences.py

At Qwen3's vocabulary (151,936) one fp32 logits row of 2,048 tokens is 1.2 GB, so the
batch-wide logits tensors the loss used to hold (student, teacher, their log-softmaxes at
two temperatures, KL both ways, two entropies, the confidence: ~17 of them) cannot exist at
the paper's sizes. Here the caller hands over the final hidden states h_N_H of the N loss
tokens (student with gradient, teacher without) and the LM head; each block of
`block_tokens(V, chunk_mb)` tokens gets its logits, one log-softmax per side and
temperature, the divergence and the statistics, and - when the student needs a gradient -
its gradient, taken right there (the idea of Liger-Kernel's fused linear JSD: the
gradient w.r.t. h and the head weight is computed in the forward, so nothing V-wide is
kept for the backward). Only N x H gradients and N x K statistics outlive a block.

Per token (columns of `STATS`): KL(S||T), KL(T||S), both entropies and the student's
top-1 probability at temperature 1 (the logged mismatch); log p_S(y), log p_T(y) of the
sampled token at the training temperature (AntiSD's and SDAR's gap); the divergence D
itself; and the token's weight (1, or SDAR's gate sigmoid(beta_g gap)). The loss is
sum_i weight_i D_i: callers divide by the step's loss-token count (micro-batches add up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.losses.divergences import _gjsd_from_logprobs

STATS = ("mismatch_kl_st", "mismatch_kl_ts", "teacher_entropy", "student_entropy",
         "student_confidence", "student_logp_y", "teacher_logp_y", "divergence", "weight")
COL = {name: i for i, name in enumerate(STATS)}
Head = tuple[torch.Tensor, "torch.Tensor | None"]  # (weight_V_H, bias_V) of an LM head, detached


def block_tokens(vocab_size: int, chunk_mb: float) -> int:
    """Tokens per block: one fp32 [tokens x V] tensor of at most chunk_mb MB (at least 1)."""
    return max(1, int(chunk_mb * 2**20 // (4 * vocab_size)))


@dataclass(frozen=True)
class DivergenceSpec:
    """What a block computes: loss.beta / support / topk at the sampling temperature, and
    gate_beta (SDAR) when each token's weight is its detached gate; block = tokens per block."""

    beta: float
    temperature: float = 1.0
    support: str = "full"
    topk: int = 16
    gate_beta: float | None = None
    block: int = 1024
    loss: bool = True  # False: statistics only (the probe), D is not computed (reads 0)
    clip: float | None = None  # loss.clip: each vocabulary entry's term of D clamped at it
    kernel: str = "harness"  # the loss and its gradient: harness (forward_blocks) or trl (TRL's kernel)


def _loss_terms(z_t_n_V: torch.Tensor, z_s_n_V: torch.Tensor, lp_t_n_V: torch.Tensor,
                lp_s_n_V: torch.Tensor, spec: DivergenceSpec) -> torch.Tensor:
    """D per token at the sampling temperature: z are logits / T, lp their log-softmax."""
    if spec.support == "full":
        return _gjsd_from_logprobs(lp_t_n_V, lp_s_n_V, spec.beta, spec.clip)
    if spec.support != "topk":
        raise ValueError(f"loss.support={spec.support!r} is not full or topk")
    idx_n_K = z_t_n_V.topk(min(spec.topk, z_t_n_V.shape[-1]), dim=-1).indices
    return _gjsd_from_logprobs(torch.log_softmax(z_t_n_V.gather(-1, idx_n_K), -1),
                               torch.log_softmax(z_s_n_V.gather(-1, idx_n_K), -1), spec.beta, spec.clip)


def _mismatch_stats(lp_s1_n_V: torch.Tensor, lp_t1_n_V: torch.Tensor) -> list[torch.Tensor]:
    """KL(S||T), KL(T||S), H(T), H(S), max p_S per token, all at temperature 1."""
    p_s, p_t = lp_s1_n_V.exp(), lp_t1_n_V.exp()
    return [(p_s * (lp_s1_n_V - lp_t1_n_V)).sum(-1), (p_t * (lp_t1_n_V - lp_s1_n_V)).sum(-1),
            -(p_t * lp_t1_n_V).sum(-1), -(p_s * lp_s1_n_V).sum(-1), p_s.amax(-1)]


def _block(h_s_n_H: torch.Tensor, h_t_n_H: torch.Tensor, ids_n: torch.Tensor, weight_V_H: torch.Tensor,
           bias_V: torch.Tensor | None, teacher_head: Head,
           spec: DivergenceSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_i w_i D_i with its graph back to h_s / weight, stats_n_K detached) of one block."""
    acc = torch.promote_types(h_s_n_H.dtype, torch.float32)  # softmaxes in fp32 at least
    z_s1 = F.linear(h_s_n_H, weight_V_H, bias_V).to(acc)
    with torch.no_grad():
        z_t1 = F.linear(h_t_n_H, *teacher_head).to(acc)
    T = spec.temperature
    lp_s1, lp_t1 = torch.log_softmax(z_s1, -1), torch.log_softmax(z_t1, -1)
    z_s, z_t = (z_s1, z_t1) if T == 1.0 else (z_s1 / T, z_t1 / T)
    lp_s, lp_t = (lp_s1, lp_t1) if T == 1.0 else (torch.log_softmax(z_s, -1), torch.log_softmax(z_t, -1))
    d_n = _loss_terms(z_t, z_s, lp_t, lp_s, spec) if spec.loss else torch.zeros_like(lp_s[:, 0])
    with torch.no_grad():
        logp_s_y = lp_s.gather(-1, ids_n[:, None]).squeeze(-1)
        logp_t_y = lp_t.gather(-1, ids_n[:, None]).squeeze(-1)
        if spec.gate_beta is None:
            w_n = torch.ones_like(d_n)
        else:  # SDAR: g = sigmoid(beta_g (log p_T(y) - log p_S(y))), detached
            w_n = torch.sigmoid(spec.gate_beta * (logp_t_y - logp_s_y))
        stats = torch.stack([*_mismatch_stats(lp_s1.detach(), lp_t1), logp_s_y, logp_t_y,
                             d_n.detach(), w_n], -1)
    return (w_n * d_n).sum(), stats


def forward_blocks(h_s_N_H: torch.Tensor, h_t_N_H: torch.Tensor, ids_N: torch.Tensor,
                   weight_V_H: torch.Tensor, bias_V: torch.Tensor | None, teacher_head: Head,
                   spec: DivergenceSpec, want_h: bool, want_w: bool):
    """Every block in turn: (loss sum, stats_N_K, dloss/dh_s_N_H or None, dloss/dW or None)."""
    n_tok = h_s_N_H.shape[0]
    grad_h = torch.zeros_like(h_s_N_H) if want_h else None
    acc = torch.promote_types(weight_V_H.dtype, torch.float32)  # bf16 weights: sum in fp32
    grad_w = torch.zeros(weight_V_H.shape, dtype=acc, device=weight_V_H.device) if want_w else None
    total = torch.zeros((), dtype=torch.promote_types(h_s_N_H.dtype, torch.float32), device=h_s_N_H.device)
    stats = []
    for start in range(0, n_tok, spec.block):
        h = h_s_N_H[start:start + spec.block].detach().requires_grad_(want_h)
        w = weight_V_H.detach().requires_grad_(want_w)
        with torch.enable_grad() if (want_h or want_w) else torch.no_grad():
            part, st = _block(h, h_t_N_H[start:start + spec.block], ids_N[start:start + spec.block],
                              w, bias_V, teacher_head, spec)
            if want_h or want_w:
                wanted = [x for x, on in ((h, want_h), (w, want_w)) if on]
                grads = list(torch.autograd.grad(part, wanted))
                if want_h:
                    grad_h[start:start + spec.block] = grads.pop(0)
                if want_w:
                    grad_w += grads.pop(0).to(acc)
        total += part.detach()
        stats.append(st)
    empty = torch.zeros(0, len(STATS), device=h_s_N_H.device)
    return total, torch.cat(stats) if stats else empty, grad_h, grad_w


class _ChunkedDivergence(torch.autograd.Function):
    """Autograd face of forward_blocks: the gradients are taken in the forward, block by block,
    and the backward only scales them by the incoming gradient of the loss sum."""

    @staticmethod
    def forward(ctx, h_s_N_H, h_t_N_H, ids_N, weight_V_H, bias_V, teacher_head, spec):
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        total, stats, grad_h, grad_w = forward_blocks(h_s_N_H, h_t_N_H, ids_N, weight_V_H, bias_V,
                                                      teacher_head, spec, want_h, want_w)
        ctx.grad_w_dtype, ctx.h_dtype = weight_V_H.dtype, h_s_N_H.dtype
        ctx.save_for_backward(*(g for g in (grad_h, grad_w) if g is not None))
        ctx.has = (want_h, want_w)
        ctx.mark_non_differentiable(stats)
        return total, stats

    @staticmethod
    def backward(ctx, grad_total, _grad_stats):
        saved = list(ctx.saved_tensors)
        want_h, want_w = ctx.has
        grad_h = (saved.pop(0) * grad_total).to(ctx.h_dtype) if want_h else None
        grad_w = (saved.pop(0) * grad_total).to(ctx.grad_w_dtype) if want_w else None
        return grad_h, None, None, grad_w, None, None, None


def chunked_divergence(h_s_N_H: torch.Tensor, h_t_N_H: torch.Tensor, ids_N: torch.Tensor,
                       head: torch.nn.Module, spec: DivergenceSpec,
                       teacher_head: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_i w_i D_i, stats_N_K): h are final hidden states of the N loss tokens (student
    with its graph, teacher detached), ids_N the sampled tokens, head the student's LM head (a
    Linear; its weight gets a gradient when it trains, e.g. tied embeddings in full
    fine-tuning), teacher_head the teacher's (None: the same module, e.g. LoRA or live)."""
    t_head = head if teacher_head is None else teacher_head
    t_pair = (t_head.weight.detach(), None if getattr(t_head, "bias", None) is None else t_head.bias.detach())
    bias = getattr(head, "bias", None)
    if not torch.is_grad_enabled() or not spec.loss:  # the probe, the GRPO-side statistics: no gradient
        s_pair = (head.weight.detach(), None if bias is None else bias.detach())
        total, stats, _, _ = forward_blocks(h_s_N_H.detach(), h_t_N_H.detach(), ids_N, *s_pair, t_pair, spec,
                                            False, False)
        return total, stats
    if spec.kernel == "trl":
        return trl_divergence(h_s_N_H, h_t_N_H, ids_N, head, t_pair, spec)
    return _ChunkedDivergence.apply(h_s_N_H, h_t_N_H.detach(), ids_N, head.weight, bias, t_pair, spec)


def trl_divergence(h_s_N_H: torch.Tensor, h_t_N_H: torch.Tensor, ids_N: torch.Tensor, head: torch.nn.Module,
                   t_pair: Head, spec: DivergenceSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_i D_i, stats_N_K) with the loss and its gradient from TRL 1.16's fused kernel
    (trl/kernels/chunked_divergence.py: Triton on CUDA, torch tiles elsewhere; the same generalized
    JSD, M = beta T + (1 - beta) S, both sides at the sampling temperature), and the statistics
    TRL's kernel does not give (KL both ways, entropies, sampled-token log-probs) from a
    gradient-free pass of forward_blocks. Full vocabulary, no clip, no SDAR gate: loss.kernel=trl
    is refused with those (harness/config/train.py), loss.kernel=auto leaves them to ours."""
    from trl.kernels.chunked_divergence import ChunkedDivergenceFunction

    bias = getattr(head, "bias", None)
    d_N, _ = ChunkedDivergenceFunction.apply(h_s_N_H, head.weight, bias, h_t_N_H.detach(), *t_pair,
                                             spec.beta, spec.temperature)
    with torch.no_grad():
        s_pair = (head.weight.detach(), None if bias is None else bias.detach())
        _, stats, _, _ = forward_blocks(h_s_N_H.detach(), h_t_N_H.detach(), ids_N, *s_pair, t_pair, spec,
                                        False, False)
    return d_N.sum(), stats


def token_means(stats_N_K: torch.Tensor, names: tuple[str, ...] = STATS[:5]) -> dict[str, torch.Tensor]:
    """Sums over tokens of the named columns (callers divide by the token count)."""
    return {name: stats_N_K[:, COL[name]].sum() for name in names}


def kernel_of(choice: str, support: str, clip: float | None, gate_beta: float | None) -> str:
    """loss.kernel resolved: auto takes TRL's kernel on CUDA where it computes the step's loss
    (full vocabulary, no clip, no SDAR gate), ours otherwise (on a CPU both are torch tiles and
    ours needs one pass less: tests/test_trl_kernel.py, make bench ARGS="--only kernel")."""
    trl_can = support == "full" and clip is None and gate_beta is None
    if choice != "auto":  # trl is refused with support/clip at config time; SDAR's gate is ours
        return choice if trl_can else "harness"
    return "trl" if trl_can and torch.cuda.is_available() else "harness"


def spec_of(loss_cfg, vocab_size: int, temperature: float = 1.0,
            gate_beta: float | None = None) -> DivergenceSpec:
    """The DivergenceSpec of a run's loss config (loss.beta / support / topk / chunk_mb / clip / kernel)."""
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    clip = getattr(loss_cfg, "clip", None)
    kernel = kernel_of(getattr(loss_cfg, "kernel", "harness"), loss_cfg.support, clip, gate_beta)
    return DivergenceSpec(beta=loss_cfg.beta, temperature=temperature, support=loss_cfg.support,
                          topk=loss_cfg.topk, gate_beta=gate_beta,
                          block=block_tokens(vocab_size, loss_cfg.chunk_mb), clip=clip, kernel=kernel)
