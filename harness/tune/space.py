"""make tune's search space and how a trial becomes runs: exposure r (and optionally train.lr).

python -m pytest -q tests/test_tune.py -k space      # the pure parts, no run launched

A trial is OPSD at one fixed exposure r in [0, 1], drawn on a 1e-4 grid (the run name
carries r to 4 decimals, so the value the sampler is told is the value that was run),
and with `lr_range` set, train.lr log-uniform in it, rounded to 3 significant digits for
the same reason. Each trial is one run per seed, tagged so it never shares a folder with
a normal run: `opsd-tune-r0.4132-s0` (with lr: `opsd-tune_lr0.000316-r0.4132-s0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.config.gap import effective_tag
from harness.config.schema import ConfigError, RunConfig, run_name

EXPOSURE = "exposure"
LR = "train.lr"
R_STEP = 1e-4  # the run name's 4 decimals
TAG = "tune"


@dataclass(frozen=True)
class Space:
    """What a study searches: r in [0, 1] always, train.lr in lr_range when given."""

    lr_range: tuple[float, float] | None = None

    def suggest(self, trial) -> dict[str, float]:
        """The trial's parameters, as run (optuna.Trial or anything with suggest_float)."""
        params = {EXPOSURE: round(trial.suggest_float(EXPOSURE, 0.0, 1.0, step=R_STEP), 4)}
        if self.lr_range:
            params[LR] = float(f"{trial.suggest_float(LR, *self.lr_range, log=True):.3g}")
        return params


def parse_lr_range(text: str) -> tuple[float, float] | None:
    """'1e-5,1e-3' -> (1e-5, 1e-3); '' -> None (lr not tuned); ConfigError otherwise."""
    if not text.strip():
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--lr-range={text!r} is invalid: two numbers low,high (e.g. 1e-5,1e-3)") from None
    if not 0 < lo < hi:
        raise ConfigError(f"--lr-range={text!r} is invalid: needs 0 < low < high")
    return lo, hi


def lr_text(lr: float) -> str:
    """lr without '-' or '+' (a tag allows letters, digits, _ and .): 0.000316."""
    return f"{lr:.12f}".rstrip("0").rstrip(".")


def tag_of(params: dict[str, float]) -> str:
    return f"{TAG}_lr{lr_text(params[LR])}" if LR in params else TAG


def run_names(params: dict[str, float], seeds: Sequence[int], cfg: RunConfig | None = None) -> list[str]:
    """The trial's run folder names, one per seed (harness.config.schema.run_name's rule). cfg:
    the study's composed config, whose gap, reference control and empty reference join the tag as
    they do in every run's name (opsd-tune_horizon2-r0.5-s0: a study at a gap level)."""
    tag = tag_of(params)
    if cfg is not None:
        tag = effective_tag(tag, cfg.gap, cfg.reference, cfg.task.empty_reference) or tag
    return [run_name("opsd", "fixed", params[EXPOSURE], s, tag) for s in seeds]


def grid(params: dict[str, float], seed: int) -> dict:
    """One run of a trial as a hydra.sweeper.grids entry (nested: Hydra's command-line
    dicts take no dotted keys; harness/front/plan.py's grid_dims flattens them)."""
    point: dict = {"exposure": params[EXPOSURE], "tag": tag_of(params), "seed": seed}
    if LR in params:
        point["train"] = {"lr": params[LR]}
    return point


def grids_override(points: Sequence[dict]) -> str:
    """`hydra.sweeper.grids=[{...},...]` in Hydra's override grammar."""
    def spell(value) -> str:
        if isinstance(value, dict):
            return "{" + ",".join(f"{k}:{spell(v)}" for k, v in value.items()) + "}"
        return repr(value) if isinstance(value, float) else str(value)

    return "hydra.sweeper.grids=[" + ",".join(spell(p) for p in points) + "]"
