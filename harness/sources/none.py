"""source=none: no teacher, so nothing asks for an exposure (loss=grpo).

python -m harness.run method=grpo profile=smoke
"""

from __future__ import annotations

from harness.registry import Component, register
from harness.sources.base import ExposureSource


class NoExposure(ExposureSource):
    """source none (loss=grpo): there is no teacher, so nothing asks for an exposure."""

    def current(self) -> float:
        raise RuntimeError("method.exposure_source=none: this run has no teacher to expose")


register(Component(kind="source", name="none", rank=0, method_part="", has_teacher=False,
                   build=lambda cfg, evaluator: NoExposure(cfg.train.steps)))
