"""The exposure sources the policy test bed runs, each built from the real config path.

python -m harness.policybed --sources atesd,random   # a subset

Every source is composed as a run would compose it (harness/config/settings.py compose, with
the same sweeps/ablation/*.yaml overrides) and built by its registered builder
(harness/sources/pick.py), so the bed runs exactly what `python -m harness.run <overrides>`
would. ATESD alone is built by hand, to hand it the simulated student's measures
(harness/sources/controller.py Measures). The default profile's train.steps and
controller.hold give the decision budget (150 steps, one decision per 5: 30 decisions).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from harness.config.settings import compose
from harness.policybed.adapter import SimMeasures
from harness.policybed.student import SimStudent
from harness.sources.base import ExposureSource
from harness.sources.controller import ControllerExposure
from harness.sources.pick import pick_source

# bed name -> the run's overrides (sweeps/): what a real run of this source is composed with
SOURCES: dict[str, tuple[str, ...]] = {
    "atesd": ("method=atesd",),
    "atesd[paper_controller]": ("ablation=paper_controller",),
    "atesd[paper_reward]": ("ablation=paper_reward",),
    "atesd[bandit]": ("ablation=bandit",),
    "atesd[lr0]": ("ablation=frozen_policy",),
    "atesd[shuffled]": ("ablation=shuffled_rewards",),
    "random": ("method=random",),
    "random[initial_beta]": ("ablation=initial_beta",),
    "schedule[linear_up]": ("ablation=linear_up",),
    "schedule[linear_down]": ("ablation=linear_down",),
    "schedule[step]": ("ablation=step",),
    "target_mismatch": ("source=target_mismatch",),
    "per_problem": ("source=per_problem",),
    **{f"fixed r={r:g}": (f"exposure={r}",) for r in (0.0, 0.25, 0.5, 0.75, 1.0)},
}
LEARNING_CONTROLS = ("atesd[lr0]", "atesd[shuffled]", "random[initial_beta]")


@cache
def config(name: str, extra: tuple[str, ...] = ()) -> Any:
    """The RunConfig of bed source `name` (seed 0), plus any extra overrides."""
    return compose([*SOURCES[name], *extra])


def build(name: str, student: SimStudent, extra: tuple[str, ...] = ()) -> ExposureSource:
    """Bed source `name` for a run of `student` (its seed is the run's seed)."""
    cfg = replace(config(name, extra), seed=student.seed)
    if cfg.method.exposure_source == "controller":
        return ControllerExposure(cfg, None, SimMeasures(student))
    return pick_source(cfg)


def total_steps(name: str = "atesd", extra: tuple[str, ...] = ()) -> int:
    return config(name, extra).train.steps


def hold(extra: tuple[str, ...] = ()) -> int:
    """The default run's decision window: steps per ATESD decision."""
    return config("atesd", extra).controller.hold
