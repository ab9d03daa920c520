"""source=random: r ~ U[0, 1], re-drawn every controller.hold steps (ATESD's window, no learning).

python -m harness.run method=random profile=smoke
"""

from __future__ import annotations

import random
from typing import Any

from harness.config.fields import ConfigError
from harness.registry import Component, register
from harness.sources.base import ExposureSource


class RandomExposure(ExposureSource):
    """r ~ U[0, 1], re-drawn every `hold` steps (the controller's window, without learning)."""

    def __init__(self, total_steps: int, hold: int, seed: int) -> None:
        super().__init__(total_steps)
        if hold < 1:
            raise ConfigError(f"controller.hold={hold!r} is invalid: >= 1")
        self.hold = hold
        self.rng = random.Random(seed)
        self.r = self.rng.random()

    def current(self) -> float:
        return self.r

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        if step % self.hold == 0:
            self.r = self.rng.random()
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "r": self.r, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.r = state["step"], state["r"]
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))


# It reads the controller's hold window (controller.hold), so its runs carry that section.
register(Component(kind="source", name="random", label="Random r", rank=4, method_part="random",
                   uses=("controller",),
                   build=lambda cfg, evaluator: RandomExposure(cfg.train.steps, cfg.controller.hold,
                                                               cfg.seed)))
