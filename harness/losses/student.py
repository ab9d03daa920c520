"""Student-side losses on top of GRPO: the AntiSD advantage and gate, the SDAR gate and term.

python -m pytest -q tests/test_student_losses.py

Pure functions of per-token tensors (and one small state machine), so the formulas are
tested against direct computations; harness/trainers/rl.py applies them. Sources
(harness/DESIGN.md, "GRPO, AntiSD and SDAR"): AntiSD arXiv 2605.11609 as one public
reimplementation states it; SDAR arXiv 2605.15155 (ZJU-REAL/SDAR's defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)


def token_gap(teacher_logp_B_C: torch.Tensor, student_logp_B_C: torch.Tensor) -> torch.Tensor:
    """gap_t = log p_T(y_t) - log p_S(y_t) of the sampled tokens, detached (both papers' u_t)."""
    return (teacher_logp_B_C - student_logp_B_C).detach()


def antisd_advantage(gap_B_C: torch.Tensor) -> torch.Tensor:
    """A_t = -1/2 (softplus(u_t) - log 2): 0 at u = 0, negative where the teacher likes the
    token more than the student (u > 0), positive but below (1/2) log 2 where it likes it less."""
    return -0.5 * (F.softplus(gap_B_C) - LOG2)


def sdar_gate(gap_B_C: torch.Tensor, gate_beta: float) -> torch.Tensor:
    """g_t = sigmoid(beta_g gap_t), detached: the OPSD pull is kept where the teacher agrees."""
    return torch.sigmoid(gate_beta * gap_B_C.detach())


def sdar_term(gate_B_C: torch.Tensor, divergence_B_C: torch.Tensor,
              mask_B_C: torch.Tensor) -> torch.Tensor:
    """mean over completion tokens of g_t D_t (the gate carries no gradient)."""
    m = mask_B_C.to(divergence_B_C.dtype)
    return (gate_B_C.detach() * divergence_B_C * m).sum() / m.sum().clamp(min=1.0)


def masked_median(values_B_C: torch.Tensor, mask_B_C: torch.Tensor) -> float:
    """Median over the real completion tokens (the gate's statistic of the teacher entropy)."""
    kept = values_B_C[mask_B_C.bool()]
    return float(kept.median()) if kept.numel() else float("nan")


@dataclass
class EntropyGate:
    """AntiSD's gate with hysteresis (a Schmitt trigger).

    The first `warmup_steps` steps record the teacher's median entropy (the term stays on);
    their mean is the reference level H0. Then the term turns off when the entropy falls
    below off_fraction x H0 and on again only once it rises above on_fraction x H0, so a
    value between the two thresholds keeps the state it had.
    """

    warmup_steps: int = 5
    off_fraction: float = 0.93
    on_fraction: float = 0.97
    warmup: list[float] = field(default_factory=list)
    reference: float | None = None
    on: bool = True

    def update(self, median_entropy: float) -> bool:
        """Feed one step's teacher median entropy; returns whether the term applies now."""
        if self.reference is None:
            self.warmup.append(median_entropy)
            if len(self.warmup) == self.warmup_steps:
                self.reference = sum(self.warmup) / len(self.warmup)
            return self.on
        if self.on and median_entropy < self.off_fraction * self.reference:
            self.on = False
        elif not self.on and median_entropy > self.on_fraction * self.reference:
            self.on = True
        return self.on

    def state_dict(self) -> dict:
        return {"warmup": list(self.warmup), "reference": self.reference, "on": self.on}

    def load_state_dict(self, state: dict) -> None:
        self.warmup, self.reference, self.on = list(state["warmup"]), state["reference"], state["on"]
