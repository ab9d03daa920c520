"""`make sweep`: validate the grid, build the base model, launch a Hydra multirun, print the table.

python -m harness.sweep --exposures 0,0.5,1 --seeds 0 [--launcher slurm] [--experiment X] -- [overrides]

Every grid point's config is composed and validated before anything launches, so
a bad value fails with one line and no run folder. Runs go through Hydra's
submitit launcher (local processes, or SLURM with --launcher slurm); finished runs
are skipped. The base model's own evaluation is the `base` run of the results root.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from harness.config import ConfigError, RunConfig
from harness.rundir import refuse_config_conflict
from harness.settings import compose, compose_raw, compose_resolved, fail

LAUNCHERS = ("local", "slurm")


def parse_exposures(text: str) -> list[float]:
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        raise ConfigError(f"EXPOSURES={text!r} is empty or has an empty item; e.g. 0,0.5,1")
    out = []
    for x in items:
        try:
            r = float(x)
        except ValueError:
            raise ConfigError(f"exposure {x!r} is not a number") from None
        if math.isnan(r) or not 0.0 <= r <= 1.0:
            raise ConfigError(f"exposure {x!r} is outside [0, 1]")
        out.append(r)
    return out


def parse_seeds(text: str) -> list[int]:
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x.isdigit() for x in items):
        raise ConfigError(f"SEEDS={text!r} must be non-negative integers, e.g. 0,1,2")
    return [int(x) for x in items]


def fmt(values: list) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def groups_from_experiment(name: str, extra: list[str]) -> list[list[str]]:
    """One override list per `experiment_grid` group of sweeps/experiment/<name>.yaml."""
    raw = compose_raw([f"experiment={name}", *extra])
    grid = raw.get("experiment_grid")
    if not grid:
        raise ConfigError(f"experiment={name!r} has no experiment_grid")
    groups = []
    for g in grid:
        ov = []
        for k, v in dict(g).items():
            vals = list(v) if OmegaConf.is_list(v) else [v]
            ov.append(f"{k}={fmt(vals)}")
        groups.append(ov)
    return groups


def expand(group: list[str]) -> list[list[str]]:
    """All single-valued override lists of a comma-swept group (for validation)."""
    points: list[list[str]] = [[]]
    for ov in group:
        key, _, vals = ov.partition("=")
        points = [p + [f"{key}={v}"] for p in points for v in vals.split(",")]
    return points


def validate(groups: list[list[str]], common: list[str]) -> list[RunConfig]:
    cfgs = [compose([*common, *p]) for g in groups for p in expand(g)]
    names = [c.run_name for c in cfgs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"run names collide: {sorted(dup)} (give each group a distinct name/tag)")
    for c in cfgs:  # a folder holding another config's run would be skipped or resumed
        refuse_config_conflict(c)
    from harness.base import base_key, resolve_base

    for key in {base_key(c): c for c in cfgs}.values():  # a missing base model: refused here
        resolve_base(key)
    return cfgs


def launch(group: list[str], common: list[str], results: str) -> int:
    """Run one group as a Hydra multirun, with a progress bar over its run folders."""
    from harness.progress import watch

    cmd = [sys.executable, "-m", "harness.run", "-m", *common, *group]
    print("launch:", " ".join(cmd[3:]), flush=True)
    print(f"  job logs: {results}/.hydra/multirun-*/.submitit/", flush=True)
    cfgs = [compose([*common, *p]) for p in expand(group)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)  # Hydra's lines would break the bar
    return watch(proc, [(Path(c.results) / c.run_name, c.train.steps) for c in cfgs])


def build_groups(a: argparse.Namespace, common: list[str]) -> list[list[str]]:
    """Override lists, one per multirun: the experiment preset's groups, or the exposure grid."""
    if a.experiment:
        groups = groups_from_experiment(a.experiment, common)
        if a.seeds:  # SEEDS=... replaces the preset's seed lists (e.g. one seed for a quick look)
            seeds = fmt(parse_seeds(a.seeds))
            groups = [[ov for ov in g if not ov.startswith("seed=")] + [f"seed={seeds}"] for g in groups]
        return groups
    exposures, seeds = parse_exposures(a.exposures), parse_seeds(a.seeds or "0")
    if compose([*common, f"method={a.method}"]).method.exposure_source != "fixed":
        # atesd, schedule, random choose their own exposure: EXPOSURES would only make
        # runs with colliding names (the exposure is not in them).
        return [[f"method={a.method}", f"seed={fmt(seeds)}"]]
    return [[f"method={a.method}", f"exposure={fmt(exposures)}", f"seed={fmt(seeds)}"]]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposures", default="0,0.25,0.5,0.75,1.0")
    ap.add_argument("--seeds", default="", help="default 0; with --experiment: the preset's seeds")
    ap.add_argument("--method", default="opsd")
    ap.add_argument("--results", default="results/runs")
    ap.add_argument("--launcher", default="local")
    ap.add_argument("--experiment", default="")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    t0 = time.time()
    try:
        if a.launcher not in LAUNCHERS:
            raise ConfigError(f"LAUNCHER={a.launcher!r} is not one of {LAUNCHERS}")
        common = [f"results={a.results}", f"launcher={a.launcher}", *a.overrides]
        groups = build_groups(a, common)
        cfgs = validate(groups + [["method=base"]], common)
    except ConfigError as err:
        fail(err)
    from harness.run import run

    # The base run shares the jobs' base config: it builds a missing base model (where that
    # is allowed) once, before the jobs start and would serialise on its lock.
    run(*compose_resolved([*common, "method=base"]))
    codes = [launch(g, common, a.results) for g in groups]
    from harness.summary import print_summary

    rows = print_summary(Path(a.results), [c.run_name for c in cfgs])
    print(f"sweep finished in {time.time() - t0:.0f} s; run folders under {a.results}; "
          f"figures and tables: make figures RESULTS={a.results}")
    if any(codes) or any(r["state"] != "done" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
