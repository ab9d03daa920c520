"""Registers with Hydra's ConfigStore what sweeps/config.yaml composes from code.

python -c "import harness.config.hydra_store"     # imported by harness.config.settings and harness.run

- `run_defaults`: every key of a run with its default, generated from the dataclasses of
  harness/config/schema.py, so the yaml under sweeps/ only selects groups and resizes. The node is
  stored untyped on purpose: validation stays in `to_run_config`, which gives every bad
  value (command line, yaml, sweep point) the same one-line error naming it.
- `${harness.tuned_exposure:<results>,<study>}`: the best r of a make tune study
  (sweeps/ablation/fixed_tuned.yaml; harness/tune/results.py).
- `hydra/sweeper: grid`: the config of harness/front/grid_sweeper.py, the one sweep engine (the
  class itself is registered by harness.run, the Hydra app, when it imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from harness.compute.distributed import register_resolvers
from harness.config.schema import RunConfig
from harness.registry import section_owners

SWEEPER_TARGET = "hydra_plugins.harness_grid.GridSweeper"


@dataclass
class GridSweeperConf:
    _target_: str = SWEEPER_TARGET
    # Experiment presets list their grids here; each is crossed with the command line's
    # overrides and the union is launched as one job array (harness/front/plan.py).
    grids: list[Any] = field(default_factory=list)


def run_defaults() -> dict:
    """The default config as a plain dict (dataclass defaults, no types attached), with every
    registered component's section at its defaults (a run keeps the ones it uses)."""
    out: dict = OmegaConf.to_container(OmegaConf.structured(RunConfig))  # type: ignore[assignment]
    for key, cls in section_owners().items():
        out[key] = OmegaConf.to_container(OmegaConf.structured(cls))
    return out


def tuned_exposure(results: str, study: str) -> float:
    """${harness.tuned_exposure:<results>,<study>}: a make tune study's best r (ablation=fixed_tuned)."""
    from harness.tune.results import tuned_exposure as best_r

    return best_r(str(results), str(study))


def register() -> None:
    register_resolvers()  # ${harness.ranks:...} in sweeps/launcher/*.yaml
    OmegaConf.register_new_resolver("harness.tuned_exposure", tuned_exposure, replace=True)
    store = ConfigStore.instance()
    store.store(name="run_defaults", node=run_defaults())
    store.store(group="hydra/sweeper", name="grid", node=GridSweeperConf)


register()
