"""A sweep's runs: the preset's grids crossed with the command line, composed and checked once.

python -m harness.run -m method=opsd exposure=0,0.5,1 seed=0,1      # planned here, launched by grid_sweeper

Pure of Hydra's launching: `plan` takes a compose function, so it is unit-tested directly.
Rules, in order:
- each grid of `hydra.sweeper.grids` (none: one empty grid) is crossed with the command
  line's overrides; a key on the command line replaces the grid's values for it (SEEDS=4
  over a preset's seeds);
- a method that chooses its own exposure or has none (exposure_source != fixed: atesd,
  schedule, random, grpo) ignores the exposure grid: its points lose `exposure=` and the copies merge;
- two points with one run name and different configs are refused;
- the `base` run (the untrained base model's evaluation) is one more job;
- every run folder that holds another config's run, and a missing base model, are refused.
A refusal is a ConfigError: one line, before anything is written or launched.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from harness.config.schema import ConfigError, RunConfig, as_dict
from harness.registry import get

# Keys that pick a trained run; the base run is composed without them.
# eval.validation (make tune's objective) too: the tune's base run is the sweeps' base run.
RUN_ONLY_KEYS = ("method", "source", "loss", "exposure", "seed", "ablation", "tag", "name",
                 "eval.validation", "gap.kind", "gap.level", "gap.share", "reference")


@dataclass
class Job:
    overrides: list[str]
    cfg: RunConfig


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def command_line_dims(arguments: Sequence[str]) -> dict[str, list[str]]:
    """{key: ["key=v1", "key=v2", ...]} of the command line, in its order."""
    dims: dict[str, list[str]] = {}
    try:
        parsed = OverridesParser.create().parse_overrides(list(arguments))
    except Exception as err:  # Hydra's grammar errors: keep the line that names the override
        raise ConfigError(str(err).splitlines()[0]) from None
    for ov in parsed:
        key = ov.get_key_element()
        if not ov.is_sweep_override():
            dims[key] = [f"{key}={ov.get_value_element_as_str()}"]
        elif ov.is_discrete_sweep():
            dims[key] = [f"{key}={v}" for v in ov.sweep_string_iterator()]
        else:
            raise ConfigError(f"{ov.input_line}: only comma lists, choice() and range() sweep")
    return dims


def grid_dims(grid: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """A preset grid {key: value or [values]} as override lists; a nested dict is a dotted
    key ({train: {lr: 1e-4}} is train.lr: Hydra's command-line dicts take no dotted keys)."""
    out: dict[str, list[str]] = {}
    for k, vals in grid.items():
        if isinstance(vals, dict):
            out.update(grid_dims(vals, f"{prefix}{k}."))
            continue
        values = vals if isinstance(vals, list) else [vals]
        out[prefix + k] = [f"{prefix}{k}={value_text(v)}" for v in values]
    return out


def points(grids: Sequence[dict[str, Any]], arguments: Sequence[str]) -> list[list[str]]:
    """Override lists of every grid point (command line over grid), grids in order."""
    cli = command_line_dims(arguments)
    out = []
    for grid in grids or [{}]:
        dims = grid_dims(grid)
        for key, items in cli.items():
            dims.pop(key.lstrip("+~"), None)
            dims[key] = items
        out += [list(combo) for combo in itertools.product(*dims.values())]
    return out


def base_overrides(point: list[str]) -> list[str]:
    return [o for o in point if key_of(o) not in RUN_ONLY_KEYS] + ["method=base"]


def plan(grids: Sequence[dict[str, Any]], arguments: Sequence[str],
         compose: Callable[[list[str]], RunConfig]) -> list[Job]:
    """The sweep's jobs, trained runs in grid order then the base run; ConfigError on any refusal."""
    jobs: dict[str, Job] = {}
    all_points = points(grids, arguments)
    for point in [*all_points, base_overrides(all_points[0])]:
        cfg = compose(point)
        if not get("source", cfg.method.exposure_source).fixed_exposure and \
                any(key_of(o) == "exposure" for o in point):
            point = [o for o in point if key_of(o) != "exposure"]
            cfg = compose(point)
        name = cfg.run_name
        if name in jobs and as_dict(jobs[name].cfg) != as_dict(cfg):
            raise ConfigError(f"run names collide: {name} stands for two configs "
                              f"({' '.join(jobs[name].overrides)} | {' '.join(point)}); "
                              "give one a tag=<label> or name=<folder>")
        jobs.setdefault(name, Job(point, cfg))
    check_folders_and_base([j.cfg for j in jobs.values()])
    return list(jobs.values())


def check_folders_and_base(cfgs: list[RunConfig]) -> None:
    from harness.front.preflight import check_all
    from harness.memory.plan import refuse_unfit
    from harness.models.base_identity import base_key, resolve_base
    from harness.runs.rundir import refuse_config_conflict

    for cfg in cfgs:  # a folder holding another config's run would be skipped or resumed
        refuse_config_conflict(cfg)
        refuse_unfit(cfg)  # a CUDA point whose memory plan exceeds launcher.gpu_mem_gb
    check_all(cfgs)  # bad data sizes, fields, files, model config, tokenizer: one line each
    for cfg in {base_key(c): c for c in cfgs}.values():  # a missing base model: refused here
        resolve_base(cfg)
