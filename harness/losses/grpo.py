"""loss=grpo: TRL's GRPO with the task's correctness reward and no teacher (grpo.*).

python -m harness.run method=grpo profile=smoke

The trainer: harness/trainers/rl.py. AntiSD and SDAR build on it and read grpo.* too.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.fields import F, require
from harness.registry import Component, register


@dataclass
class RLConfig:
    """The RL part of loss=grpo|antisd|sdar (harness/trainers/rl.py, TRL GRPOTrainer)."""

    group_size: int = F(8, "rollouts per problem (GRPO's group): a step samples "
                           "problems_per_step x group_size rollouts")
    problems_per_step: int | None = F(None, "problems per step; null: train.prompts_per_step // "
                                            "group_size (at least 1), the rollouts per step of OPSD "
                                            "(one rollout a problem): an equal sampling budget")
    epsilon: float = F(0.2, "PPO-style clip range of the importance ratio")
    scale_rewards: str = F("group", "advantage scaling: group (divide by the group's reward std), "
                                    "batch, or none")

    def __post_init__(self) -> None:
        require(self.group_size >= 2, "grpo.group_size", self.group_size, ">= 2 (a group baseline)")
        require(self.problems_per_step is None or self.problems_per_step >= 1,
                "grpo.problems_per_step", self.problems_per_step, ">= 1 or null")
        require(self.epsilon > 0, "grpo.epsilon", self.epsilon, "> 0")
        require(self.scale_rewards in ("group", "batch", "none"), "grpo.scale_rewards",
                self.scale_rewards, "group, batch or none")

    def problems(self, prompts_per_step: int) -> int:
        """Problems a step: problems_per_step, or OPSD's rollouts per step shared into groups."""
        return self.problems_per_step or max(1, prompts_per_step // self.group_size)


register(Component(kind="loss", name="grpo", label="GRPO", rank=6, method_part="grpo", trainer="rl",
                   config_key="grpo", config=RLConfig, has_teacher=False))
