"""source=random: r ~ U[0, 1], re-drawn every controller.hold steps (ATESD's window, no learning).

python -m harness.run method=random profile=smoke      # ablation=initial_beta: r ~ the initial Beta

controller.random_draw=initial_beta draws r from the ATESD policy's initial Beta(1 + log 2,
1 + log 2) instead: the control that isolates learning (a controller that learns nothing
behaves like it, not like U[0, 1]).
"""

from __future__ import annotations

import random
from typing import Any

from harness.config.fields import ConfigError
from harness.registry import Component, register
from harness.sources.base import ExposureSource
from harness.sources.controller_config import INITIAL_AB, RANDOM_DRAWS


class RandomExposure(ExposureSource):
    """r ~ U[0, 1] (or the controller's initial Beta), re-drawn every `hold` steps (the
    controller's window, without learning)."""

    def __init__(self, total_steps: int, hold: int, seed: int, draw: str = "uniform") -> None:
        super().__init__(total_steps)
        if hold < 1:
            raise ConfigError(f"controller.hold={hold!r} is invalid: >= 1")
        if draw not in RANDOM_DRAWS:
            raise ConfigError(f"controller.random_draw={draw!r} is invalid: one of {RANDOM_DRAWS}")
        self.hold, self.draw_kind = hold, draw
        self.rng = random.Random(seed)
        self.r = self.draw()

    def draw(self) -> float:
        if self.draw_kind == "initial_beta":
            return self.rng.betavariate(INITIAL_AB, INITIAL_AB)
        return self.rng.random()

    def current(self) -> float:
        return self.r

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        if step % self.hold == 0:
            self.r = self.draw()
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
                                                               cfg.seed, cfg.controller.random_draw)))
