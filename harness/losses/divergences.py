"""Divergences between teacher and student next-token distributions, per token.

python -c "import harness.losses.divergences as L, torch; print(L.kl(torch.randn(2,3,5), torch.randn(2,3,5)))"

All functions take logits_B_T_V and return per-token values_B_T; masking and
averaging over completion tokens is the caller's (`masked_mean`).
"""

from __future__ import annotations

import math

import torch


def kl(p_logits_B_T_V: torch.Tensor, q_logits_B_T_V: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per token, full support."""
    logp = torch.log_softmax(p_logits_B_T_V, dim=-1)
    logq = torch.log_softmax(q_logits_B_T_V, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def entropy(logits_B_T_V: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits_B_T_V, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def _gjsd_pointwise(logp_t: torch.Tensor, logp_s: torch.Tensor, beta: float) -> torch.Tensor:
    """The generalized JSD's terms per vocabulary entry (they sum to D over the last dim)."""
    if beta == 0.0:
        return logp_t.exp() * (logp_t - logp_s)
    if beta == 1.0:
        return logp_s.exp() * (logp_s - logp_t)
    logm = torch.logsumexp(torch.stack([logp_t + math.log(beta), logp_s + math.log(1 - beta)]), 0)
    return beta * logp_t.exp() * (logp_t - logm) + (1 - beta) * logp_s.exp() * (logp_s - logm)


def _gjsd_from_logprobs(logp_t: torch.Tensor, logp_s: torch.Tensor, beta: float,
                        clip: float | None = None) -> torch.Tensor:
    """Generalized JSD (GKD, Agarwal et al. 2024): M = beta T + (1-beta) S,
    D = beta KL(T||M) + (1-beta) KL(S||M); the limits beta=0 / 1 are taken as the plain
    KLs forward KL(T||S) / reverse KL(S||T), as in TRL's GKD/SDFT trainers.

    clip (loss.clip): D = sum_v min(d_v, clip) over the per-entry terms d_v, so that a few
    vocabulary entries of a few tokens (a "so", a "Wait") cannot dominate a step; a clipped
    entry passes no gradient. The public OPSD implementations clip per vocabulary entry at
    0.05-0.06 (the OPSD repo's --jsd_token_clip, verl's OPSD clip_tau, miles' opsd_kl_clip).
    Formula read in siyan-zhao/OPSD opsd_trainer.py, generalized_jsd_loss: the pointwise
    F.kl_div(..., reduction="none") terms [B, T, V] (beta 0 / 1 / mixture as here) are clamped
    with max=token_clip before the reduction, i.e. per entry, not per token's sum; only the
    upper side is clamped (a negative entry, p_T < p_S in forward KL, stays). miles' OPSD
    example does the same on its forward-KL terms (terms.clamp(max=opsd_kl_clip).sum(-1))."""
    if clip is None:
        if beta == 0.0:
            return (logp_t.exp() * (logp_t - logp_s)).sum(-1)
        if beta == 1.0:
            return (logp_s.exp() * (logp_s - logp_t)).sum(-1)
        logm = torch.logsumexp(torch.stack([logp_t + math.log(beta), logp_s + math.log(1 - beta)]), 0)
        kl_tm = (logp_t.exp() * (logp_t - logm)).sum(-1)
        kl_sm = (logp_s.exp() * (logp_s - logm)).sum(-1)
        return beta * kl_tm + (1 - beta) * kl_sm
    return _gjsd_pointwise(logp_t, logp_s, beta).clamp(max=clip).sum(-1)


def generalized_jsd(teacher_logits_B_T_V: torch.Tensor, student_logits_B_T_V: torch.Tensor,
                    beta: float, support: str = "full", topk: int = 16,
                    clip: float | None = None) -> torch.Tensor:
    """Per-token D(p_T, p_S); gradient flows only into the student (teacher detached).

    support="topk": both distributions restricted to the teacher's top-k tokens and
    renormalised there.
    """
    t = teacher_logits_B_T_V.detach()
    s = student_logits_B_T_V
    if support == "topk":
        k = min(topk, t.shape[-1])
        idx_B_T_K = t.topk(k, dim=-1).indices
        t = t.gather(-1, idx_B_T_K)
        s = s.gather(-1, idx_B_T_K)
    elif support != "full":
        raise ValueError(f"loss.support={support!r} is not full or topk")
    return _gjsd_from_logprobs(torch.log_softmax(t, -1), torch.log_softmax(s, -1), beta, clip)


def masked_mean(values_B_T: torch.Tensor, mask_B_T: torch.Tensor) -> torch.Tensor:
    """Sum over real completion tokens / their count (tokens, not sequences, weigh equally)."""
    m = mask_B_T.to(values_B_T.dtype)
    return (values_B_T * m).sum() / m.sum().clamp(min=1.0)
