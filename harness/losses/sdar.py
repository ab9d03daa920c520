"""loss=sdar: GRPO + sdar.coef x the sigmoid-gated OPSD divergence.

python -m harness.run method=sdar exposure=0.75 profile=smoke

Its formulas: harness/losses/student.py; the trainer: harness/trainers/rl.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.fields import F, require
from harness.registry import Component, register


@dataclass
class SDARConfig:
    """loss=sdar: L_GRPO + coef x mean_t(g_t D_t), g_t = sigmoid(gate_beta x gap_t) detached
    (harness/DESIGN.md, SDAR; D_t the OPSD divergence with loss.beta / loss.support)."""

    coef: float = F(0.01, "weight c of the gated distillation term")
    gate_beta: float = F(5.0, "sharpness beta_g of the sigmoid gate on gap_t = log p_T - log p_S")

    def __post_init__(self) -> None:
        require(self.coef >= 0, "sdar.coef", self.coef, ">= 0")
        require(self.gate_beta > 0, "sdar.gate_beta", self.gate_beta, "> 0")


register(Component(kind="loss", name="sdar", label="SDAR", rank=8, method_part="sdar", build="rl",
                   config_key="sdar", config=SDARConfig, uses=("grpo",)))
