"""loss=sdar: GRPO + sdar.coef x the sigmoid-gated OPSD divergence.

python -m harness.run method=sdar exposure=0.75 profile=smoke

Its formulas: harness/losses/student.py; what it adds to GRPO's step: SDARLoss below (the
interface: harness/losses/base.py), called by harness/trainers/rl.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config.fields import F, require
from harness.losses.base import GRPOSideLoss
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


class SDARLoss(GRPOSideLoss):
    """c sum_t(g_t D_t) / the step's tokens on each micro-batch (harness/DESIGN.md, SDAR): summed
    over the step's micro-batches it is c mean_t(g_t D_t); the gate is detached. Its statistics
    are token-weighted over the step's micro-batches."""

    def batch_start(self, trainer: Any) -> None:
        self.sums: dict[str, float] = {}

    def extra_loss(self, trainer: Any, model: Any, inputs: dict[str, Any]) -> Any:
        from harness.losses.chunked import COL, chunked_divergence
        from harness.losses.hidden_states import lm_head

        sc, n = self.cfg.sdar, trainer.step_loss_tokens
        sel_B_C = inputs["completion_mask"].bool()
        h_t = trainer.teacher_hidden(inputs["teacher_input_ids"], inputs["teacher_attention_mask"],
                                     inputs["completion_ids"].shape[1])
        gd_sum, st_N_K = chunked_divergence(trainer.student_hidden(model, inputs)[sel_B_C], h_t[sel_B_C],
                                            inputs["completion_ids"][sel_B_C], lm_head(model),
                                            trainer.spec(gate_beta=sc.gate_beta),
                                            lm_head(trainer.teacher_model))
        term = sc.coef * gd_sum / n
        for key, value in (("sdar_gate", st_N_K[:, COL["weight"]].sum().item() / n),
                           ("sdar_term", term.item()),
                           ("distill_loss", st_N_K[:, COL["divergence"]].sum().item() / n)):
            self.sums[key] = self.sums.get(key, 0.0) + value
        trainer.step_stats.update(self.sums)
        return term


register(Component(kind="loss", name="sdar", label="SDAR", rank=8, method_part="sdar", trainer="rl",
                   config_key="sdar", config=SDARConfig, uses=("grpo",), build=SDARLoss))
