"""make tune: an Optuna study of the fixed exposure r; every trial is a normal run of the sweep engine.

python -m harness.tune.study --trials 20 [--seeds 0] [--study NAME] [--results DIR] [--launcher slurm] \
    [--batch N] [--sampler-seed 0] [--lr-range 1e-5,1e-3] -- [overrides, e.g. profile=smoke]

Optuna (>= 4, used directly with ask/tell; harness/DESIGN.md "Dependency behaviour": the Hydra Optuna
plugin pins optuna < 3, whose SQLite storage breaks on SQLAlchemy 2) with a seeded TPE
sampler and SQLite storage at <results>/tune/<study>.db. Each round asks a batch of
trials (--batch, default launcher.max_parallel), launches their runs as one Hydra
multirun (`python -m harness.run -m ...`, harness/front/grid_sweeper.py: the same launcher,
progress bar and closing table as make sweep), reads each trial's validation
Average@k (val.json, never the test suites) and tells it. --trials is the study's total:
a second call with a larger number resumes the study and adds the difference; a trial
left unfinished by a dead call is launched again first, and a trial whose runs are
done is read, never re-run. Outputs: <study>.md / .csv (trials table) and
<study>.best.yaml (what ablation=fixed_tuned reads), printed at the end too.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.config.schema import ConfigError, RunConfig
from harness.config.settings import fail
from harness.runs.identity import DEFAULT_RESULTS
from harness.runs.runlock import exclusive
from harness.tune.loop import Setup, run_study
from harness.tune.results import study_paths
from harness.tune.space import R_STEP, Space, parse_lr_range

UNCAPPED_BATCH = 4  # trials per round when launcher.max_parallel is 0 (SLURM: no local cap)
# Keys the tune sets itself; in the overrides they would break a trial's identity.
OWN_KEYS = ("method", "exposure", "seed", "tag", "name", "ablation", "experiment",
            "eval.validation", "results", "launcher", "force")


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds={text!r} is invalid: comma-separated integers >= 0") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds={text!r} is invalid: distinct integers >= 0, at least one")
    return seeds


def parse_starts(text: str) -> list[float]:
    """--start: comma-separated exposures in [0, 1] on the search's step (R_STEP)."""
    try:
        starts = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--start={text!r} is invalid: comma-separated exposures in [0, 1]") from None
    for r in starts:
        if not 0.0 <= r <= 1.0 or abs(r / R_STEP - round(r / R_STEP)) > 1e-9:
            raise ConfigError(f"--start={text!r} is invalid: {r:g} is not in [0, 1] on a {R_STEP:g} step")
    return starts


def check_overrides(overrides: list[str], lr_tuned: bool = False) -> None:
    from harness.front.plan import command_line_dims, key_of

    for key, items in command_line_dims(overrides).items():
        if key_of(key) in OWN_KEYS or (lr_tuned and key_of(key) == "train.lr"):
            raise ConfigError(f"{items[0]}: make tune sets {key_of(key)} itself "
                              "(--seeds, --results, --launcher; r and --lr-range are what it searches)")
        if len(items) > 1:
            raise ConfigError(f"{key}={','.join(i.split('=', 1)[1] for i in items)}: "
                              "a trial is one setting; sweep nothing but r")


def probe_config(s: Setup) -> RunConfig:
    """One trial's config (r = 0.5, first seed): every bad override fails here, in one line."""
    from harness.config.settings import compose
    from harness.models.base_identity import resolve_base

    cfg = compose([*s.fixed_overrides(), "exposure=0.5", f"seed={s.seeds[0]}", "tag=tune"])
    resolve_base(cfg)  # a missing base model: refused before the study is touched
    return cfg


def make_setup(a: argparse.Namespace) -> Setup:
    require_positive = {"--trials": a.trials, "--batch": a.batch if a.batch is not None else 1}
    for name, value in require_positive.items():
        if value < 1:
            raise ConfigError(f"{name}={value} is invalid: >= 1")
    lr_range = parse_lr_range(a.lr_range)
    check_overrides(a.overrides, lr_tuned=lr_range is not None)
    s = Setup(a.results, a.study, parse_seeds(a.seeds), Space(lr_range),
              a.batch or 0, a.trials, a.sampler_seed, a.launcher, list(a.overrides),
              parse_starts(a.start))
    if not s.results:
        raise ConfigError("--results='' is empty; e.g. results/runs")
    cfg = probe_config(s)
    s.cfg = cfg  # a gap level or reference control names the trials' runs (harness/tune/space.py run_names)
    s.study = s.study or f"fixed_{cfg.profile}"
    if not s.study.replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"--study={s.study!r} is invalid: letters, digits, _ and . only")
    s.batch = s.batch or cfg.launcher.max_parallel or UNCAPPED_BATCH
    return s


@contextlib.contextmanager
def study_lock(path: Path) -> Iterator[None]:
    """One live make tune per study: a second one is refused (it would ask the same trials)."""
    def refuse(holder: str) -> None:
        raise ConfigError(f"{path}: study held by a live make tune ({holder})")

    with exclusive(path, on_busy=refuse):
        yield


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="the study's total number of trials")
    ap.add_argument("--seeds", default="0", help="run seeds of every trial (objective: their mean)")
    ap.add_argument("--study", default="", help="study name (default fixed_<profile>)")
    ap.add_argument("--results", default=DEFAULT_RESULTS)
    ap.add_argument("--launcher", default="local")
    ap.add_argument("--batch", type=int, help="trials per multirun (default launcher.max_parallel)")
    ap.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler")
    ap.add_argument("--start", default="0,0.25,0.5,0.75,1",
                    help="exposures tried first, before TPE's own (each not yet in the study; '' for none)")
    ap.add_argument("--lr-range", default="", help="also tune train.lr, log-uniform in low,high")
    ap.add_argument("overrides", nargs="*", help="hydra overrides of every trial, e.g. profile=smoke")
    a = ap.parse_args(argv)
    try:
        s = make_setup(a)
        with study_lock(study_paths(s.results, s.study)["lock"]):
            code = run_study(s)
    except ConfigError as err:
        fail(err)
    except KeyboardInterrupt:  # the batch's trials stay unfinished in the study
        print("interrupted: the next make tune launches the unfinished trials again", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
