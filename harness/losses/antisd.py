"""loss=antisd: GRPO with the bounded AntiSD per-token advantage, gated by the teacher's entropy.

python -m harness.run method=antisd exposure=0.5 profile=smoke

Its formulas: harness/losses/student.py; the trainer: harness/trainers/rl.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.fields import F, require
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


register(Component(kind="loss", name="antisd", label="AntiSD", rank=7, method_part="antisd", build="rl",
                   config_key="antisd", config=AntiSDConfig, uses=("grpo",)))
