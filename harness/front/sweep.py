"""`make sweep`: a spelling of one Hydra multirun (harness/front/grid_sweeper.py runs it).

python -m harness.front.sweep --exposures 0,0.5,1 --seeds 0 [--method M] [--launcher slurm] \
    [--experiment X] -- [overrides]

is `python -m harness.run -m method=M exposure=0,0.5,1 seed=0 launcher=... [experiment=X] [overrides]`:
with --experiment the preset's grids replace --method/--exposures (--seeds still replaces the
preset's seeds). Before Hydra starts, the root config is composed once with each swept key
at its first value, so a missing group option or an unknown key fails in one line (exit 2)
as every other bad value does; the sweeper then checks every run's config.
"""

from __future__ import annotations

import argparse
import sys

from harness.config.schema import ConfigError
from harness.config.settings import compose_raw, fail
from harness.runs.identity import DEFAULT_RESULTS


def multirun_overrides(a: argparse.Namespace) -> list[str]:
    """The Hydra overrides this command stands for."""
    out = [f"results={a.results}", f"launcher={a.launcher}"]
    if a.experiment:
        out.append(f"experiment={a.experiment}")
    else:
        out += [f"method={a.method}", f"exposure={a.exposures}"]
    if a.seeds:
        out.append(f"seed={a.seeds}")
    return out + list(a.overrides)


def check_root(overrides: list[str]) -> None:
    """Compose the root config at each swept key's first value: Hydra's own errors, one line."""
    from harness.front.plan import command_line_dims

    first = [items[0] for items in command_line_dims(overrides).values() if items]
    raw = compose_raw(first)
    if not raw.results:
        raise ConfigError("RESULTS='' is empty; e.g. results/runs")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposures", default="0,0.25,0.5,0.75,1.0")
    ap.add_argument("--seeds", default="", help="default: 0, or the preset's seeds")
    ap.add_argument("--method", default="opsd")
    ap.add_argument("--results", default=DEFAULT_RESULTS)
    ap.add_argument("--launcher", default="local")
    ap.add_argument("--experiment", default="")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    overrides = multirun_overrides(a)
    try:
        check_root(overrides)
    except ConfigError as err:
        fail(err)
    from harness.run import main as hydra_app

    print("python -m harness.run -m " + " ".join(overrides), flush=True)
    sys.argv = ["harness.run", "-m", *overrides]
    hydra_app()


if __name__ == "__main__":
    main(sys.argv[1:])
