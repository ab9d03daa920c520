"""loss=antisd: GRPO with the bounded AntiSD per-token advantage, gated by the teacher's entropy.

python -m harness.run method=antisd exposure=0.5 profile=smoke

Its formulas: harness/losses/student.py; what it adds to GRPO's step: AntiSDLoss below (the
interface: harness/losses/base.py), called by harness/trainers/rl.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config.fields import F, require
from harness.losses.base import GRPOSideLoss
from harness.registry import Component, register


@dataclass
class AntiSDConfig:
    """loss=antisd: per-token advantage -1/2 (softplus(u_t) - log 2), u_t = log p_T - log p_S
    (harness/DESIGN.md, "GRPO, AntiSD and SDAR"), added with weight `lam`; off while the teacher's
    median entropy is low."""

    lam: float = F(0.5, "weight of the per-token advantage (0: plain GRPO)")
    warmup_steps: int = F(5, "steps whose teacher median entropy calibrates the gate (term on)")
    off_fraction: float = F(0.93, "gate turns off when the median entropy < off_fraction x warm-up level")
    on_fraction: float = F(0.97, "gate turns on again when it recovers > on_fraction x warm-up level")

    def __post_init__(self) -> None:
        require(self.lam >= 0, "antisd.lam", self.lam, ">= 0")
        require(self.warmup_steps >= 1, "antisd.warmup_steps", self.warmup_steps, ">= 1")
        require(0 < self.off_fraction <= self.on_fraction, "antisd.on_fraction", self.on_fraction,
                f">= antisd.off_fraction ({self.off_fraction}) > 0 (hysteresis)")


class AntiSDLoss(GRPOSideLoss):
    """A_i + lambda A_t per token while the gate is on (the gate sees this batch's teacher median
    entropy first), A_i alone while it is off; the gate's state travels in each checkpoint."""

    state_file = "antisd_gate.json"

    def __init__(self, cfg: Any) -> None:
        from harness.losses.student import EntropyGate  # torch: loaded when a run trains

        super().__init__(cfg)
        a = cfg.antisd
        self.gate = EntropyGate(a.warmup_steps, a.off_fraction, a.on_fraction)

    def advantages(self, trainer: Any, out: dict[str, Any], stats_B_C_K: Any) -> Any:
        from harness.losses.chunked import COL
        from harness.losses.divergences import masked_mean
        from harness.losses.student import antisd_advantage, masked_median, token_gap

        m_B_C = out["completion_mask"]
        # the gap at the sampling temperature: the policy GRPO trains is the one sampled at it
        gap_B_C = token_gap(stats_B_C_K[..., COL["teacher_logp_y"]], stats_B_C_K[..., COL["student_logp_y"]])
        median = masked_median(stats_B_C_K[..., COL["teacher_entropy"]], m_B_C)
        on = self.gate.update(median)
        term_B_C = self.cfg.antisd.lam * antisd_advantage(gap_B_C) * float(on) * m_B_C
        trainer.step_stats.update({"antisd_gate": float(on), "teacher_entropy_median": median,
                                   "antisd_gate_reference": self.gate.reference,
                                   "antisd_term": masked_mean(term_B_C.abs(), m_B_C).item()})
        return out["advantages"].unsqueeze(1) + term_B_C

    def state_dict(self) -> dict[str, Any]:
        return self.gate.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gate.load_state_dict(state)


register(Component(kind="loss", name="antisd", label="AntiSD", rank=7, method_part="antisd", trainer="rl",
                   config_key="antisd", config=AntiSDConfig, uses=("grpo",), build=AntiSDLoss))
