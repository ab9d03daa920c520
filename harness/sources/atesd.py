"""source=atesd: the ATESD controller's registration (its config: controller_config.py).

python -m harness.run method=atesd profile=smoke

The controller itself: harness/sources/controller.py (the Beta policy: reinforce.py; its
rewards: learning_progress.py, paper_reward.py). Imported lazily by `build`, so reading the
registry (config validation, the sweep front) loads no torch.
"""

from __future__ import annotations

from typing import Any

from harness.registry import Component, register
from harness.sources.controller_config import ControllerConfig


def build(cfg: Any, evaluator: Any = None) -> Any:
    from harness.sources.controller import ControllerExposure

    return ControllerExposure(cfg, evaluator)


register(Component(kind="source", name="controller", option="atesd", label="ATESD", rank=2,
                   method_part="atesd", config_key="controller", config=ControllerConfig, build=build))
