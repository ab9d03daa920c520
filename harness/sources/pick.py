"""Where the exposure comes from: fixed, hand schedule, random per window, ATESD controller, none.

python -m pytest -q tests/test_formulas.py   # sources are exercised by the run tests

What a source is asked and told: harness/sources/base.py. `make_source` picks
the source of cfg.method.exposure_source; in a run of several processes it is wrapped so
that rank 0 decides for all (harness/sources/shared.py).
"""

from __future__ import annotations

import random
from typing import Any

from harness.compute.distributed import world
from harness.config.schema import SCHEDULES, ConfigError, RunConfig
from harness.sources.base import ExposureSource


class FixedExposure(ExposureSource):
    def __init__(self, total_steps: int, r: float) -> None:
        super().__init__(total_steps)
        self.r = r

    def current(self) -> float:
        return self.r


class ScheduleExposure(ExposureSource):
    """Hand schedules: linear 0->1, linear 1->0, or a step from `low` to `high` at `at`."""

    def __init__(self, total_steps: int, kind: str, low: float = 0.0, high: float = 1.0,
                 at: float = 0.5) -> None:
        super().__init__(total_steps)
        if kind not in SCHEDULES:
            raise ConfigError(f"schedule.kind={kind!r} is invalid: one of {SCHEDULES}")
        self.kind, self.low, self.high, self.at = kind, low, high, at

    def current(self) -> float:
        t = self.step / max(1, self.total_steps - 1)
        if self.kind == "linear_up":
            return self.low + (self.high - self.low) * t
        if self.kind == "linear_down":
            return self.high - (self.high - self.low) * t
        return self.low if t < self.at else self.high


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


class NoExposure(ExposureSource):
    """source none (loss=grpo): there is no teacher, so nothing asks for an exposure."""

    def current(self) -> float:
        raise RuntimeError("method.exposure_source=none: this run has no teacher to expose")


def make_source(cfg: RunConfig, evaluator=None) -> ExposureSource:
    """cfg's source; with several processes, rank 0's decides for every rank."""
    source = pick_source(cfg, evaluator)
    if world()[1] <= 1:  # one process: the source itself, nothing in between
        return source
    from harness.sources.shared import MainRankSource

    return MainRankSource(source)


def pick_source(cfg: RunConfig, evaluator=None) -> ExposureSource:
    src, steps = cfg.method.exposure_source, cfg.train.steps
    if src == "none":
        return NoExposure(steps)
    if src == "fixed":
        return FixedExposure(steps, cfg.exposure)
    if src == "schedule":
        s = cfg.schedule
        return ScheduleExposure(steps, s.kind, s.low, s.high, s.at)
    if src == "random":  # the controller's hold window, without learning
        return RandomExposure(steps, cfg.controller.hold, cfg.seed)
    from harness.sources.controller import ControllerExposure  # ATESD

    return ControllerExposure(cfg, evaluator)
