"""source=schedule: a hand-written exposure schedule over training progress t/T (schedule.*).

python -m harness.run method=schedule schedule.kind=step profile=smoke
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config.fields import ConfigError, F, in_unit, require
from harness.registry import Component, register
from harness.sources.base import ExposureSource

SCHEDULES = ("linear_up", "linear_down", "step")


@dataclass
class ScheduleConfig:
    """Hand-written exposure schedules (method=schedule), over training progress t/T."""

    kind: str = F("linear_up", f"one of {SCHEDULES}: low->high, high->low, or low then high at `at`")
    low: float = F(0.0, "exposure at the low end")
    high: float = F(1.0, "exposure at the high end")
    at: float = F(0.5, "step: share of training after which the exposure jumps to `high`")

    def __post_init__(self) -> None:
        require(self.kind in SCHEDULES, "schedule.kind", self.kind, f"one of {SCHEDULES}")
        in_unit("schedule.low", self.low)
        in_unit("schedule.high", self.high)
        in_unit("schedule.at", self.at)


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


def build(cfg: Any, evaluator: Any = None) -> ScheduleExposure:
    s = cfg.schedule
    return ScheduleExposure(cfg.train.steps, s.kind, s.low, s.high, s.at)


register(Component(kind="source", name="schedule", label="Schedule", rank=5, method_part="schedule",
                   config_key="schedule", config=ScheduleConfig, build=build))
