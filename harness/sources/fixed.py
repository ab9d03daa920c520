"""source=fixed: one exposure r (the run's `exposure=`) for every problem at every step.

python -m harness.run source=fixed exposure=0.5 profile=smoke
"""

from __future__ import annotations

from harness.registry import Component, register
from harness.sources.base import ExposureSource


class FixedExposure(ExposureSource):
    def __init__(self, total_steps: int, r: float) -> None:
        super().__init__(total_steps)
        self.r = r

    def current(self) -> float:
        return self.r


register(Component(kind="source", name="fixed", label="Fixed", rank=1, method_part="", fixed_exposure=True,
                   build=lambda cfg, evaluator: FixedExposure(cfg.train.steps, cfg.exposure)))
