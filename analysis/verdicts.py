"""The verdict rules of the claims report: a Welch interval for a difference of means, and
holds / does not hold / inconclusive / not run from the numbers, each rule said in RULES.

python -c "from analysis.verdicts import welch_diff; print(welch_diff([70, 72, 71], [60, 65, 61]))"

Why Welch and not paired by seed: two methods' runs with one seed share the seed number,
not a trajectory (different exposures or losses draw different rollouts from the first
step), so they are independent samples with possibly unequal spreads; Welch also keeps
every run when a seed is missing on one side. Alpha is 0.05 throughout (95% intervals,
permutation p < 0.05).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
ALPHA = 0.05

RULES = {
    "diff": "the 95% Welch interval of the difference lies above 0 (the paper's direction): holds; "
            "below 0: does not hold; it contains 0, or a side has fewer than 2 runs: inconclusive; "
            "a side has no finished run: not run",
    "monotone": "holds when the mean final KL(S||T) rises strictly from each exposure to the next AND "
                "Spearman rho > 0 with permutation p < 0.05 over the runs; does not hold when rho < 0 "
                "with p < 0.05, or when some higher exposure is lower than some lower one with the 95% "
                "Welch interval of that difference below 0; otherwise inconclusive",
    "full_not_best": "per view (the mean over suites, and each suite): holds when some r < 1 beats "
                     "r = 1 with the 95% Welch interval of (r - [r = 1]) above 0; does not hold when every "
                     "r < 1 is below r = 1 with that interval below 0 (r = 1 reliably best); otherwise "
                     "inconclusive. The claim holds when some view holds, does not hold when every view "
                     "does not hold, and is inconclusive otherwise",
    "collapse": "per exposure: holds when the 95% Welch interval of (live - base teacher) Average@12 lies "
                "below 0 AND the live runs' mean is below the untrained base model's; does not hold "
                "when that interval lies above 0, or the live runs' own 95% interval lies above the base "
                "model (the live teacher improved the student); otherwise inconclusive",
    "all": "over its comparisons that were run: holds when every one holds, does not hold when one "
           "does not hold, otherwise inconclusive; not run when none was run",
}


@dataclass
class Diff:
    """mean(a) - mean(b) and the half-width of its 95% Welch interval (NaN: a side has < 2 runs)."""

    diff: float
    half: float
    n_a: int
    n_b: int

    @property
    def low(self) -> float:
        return self.diff - self.half

    @property
    def high(self) -> float:
        return self.diff + self.half

    @property
    def run(self) -> bool:
        return self.n_a > 0 and self.n_b > 0


def _clean(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)


def welch_diff(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Diff:
    """Welch's t interval for mean(a) - mean(b): se^2 = s_a^2/n_a + s_b^2/n_b, dof by
    Welch-Satterthwaite (Welch 1947); both sides constant: the interval is the point itself."""
    x, y = _clean(a), _clean(b)
    if not len(x) or not len(y):
        return Diff(math.nan, math.nan, len(x), len(y))
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Diff(diff, math.nan, len(x), len(y))
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    if se == 0:
        return Diff(diff, 0.0, len(x), len(y))
    dof = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    return Diff(diff, float(stats.t.ppf((1 + level) / 2, dof) * se), len(x), len(y))


def diff_verdict(d: Diff) -> str:
    """RULES['diff'], for a difference taken in the paper's direction (positive = as claimed)."""
    if not d.run:
        return NOT_RUN
    if math.isnan(d.half):
        return INCONCLUSIVE
    return HOLDS if d.low > 0 else FAILS if d.high < 0 else INCONCLUSIVE


def monotone_verdict(means: Sequence[float], rho: float, p: float, drops: Sequence[Diff]) -> str:
    """RULES['monotone']: means in exposure order; drops: Welch (higher r - lower r) of every pair."""
    if len(means) < 2:
        return NOT_RUN
    if (not math.isnan(rho) and rho < 0 and p < ALPHA) or any(d.high < 0 for d in drops):
        return FAILS
    rising = all(b > a for a, b in zip(means, means[1:]))
    return HOLDS if rising and not math.isnan(rho) and rho > 0 and p < ALPHA else INCONCLUSIVE


def full_not_best_verdict(others_minus_full: Sequence[Diff]) -> str:
    """RULES['full_not_best'] for one view: the differences (r - [r = 1]) of every r < 1."""
    run = [d for d in others_minus_full if d.run]
    if not run:
        return NOT_RUN
    if any(diff_verdict(d) == HOLDS for d in run):
        return HOLDS
    return FAILS if all(diff_verdict(d) == FAILS for d in run) else INCONCLUSIVE


def any_view_verdict(views: Sequence[str]) -> str:
    """RULES['full_not_best'], over the views: holds if one holds, fails if all fail."""
    run = [v for v in views if v != NOT_RUN]
    if not run:
        return NOT_RUN
    return HOLDS if HOLDS in run else FAILS if all(v == FAILS for v in run) else INCONCLUSIVE


def collapse_verdict(live_minus_base: Diff, live_mean: float, live_half: float, base_model: float) -> str:
    """RULES['collapse'] at one exposure (base_model: the untrained model's score, NaN if unknown)."""
    if not live_minus_base.run:
        return NOT_RUN
    improved = not math.isnan(live_half) and not math.isnan(base_model) and live_mean - live_half > base_model
    if live_minus_base.low > 0 or improved:  # NaN (one run a side) compares False
        return FAILS
    below_base = not math.isnan(base_model) and live_mean < base_model
    return HOLDS if live_minus_base.high < 0 and below_base else INCONCLUSIVE


def all_verdict(verdicts: Sequence[str]) -> str:
    """RULES['all']."""
    run = [v for v in verdicts if v != NOT_RUN]
    if not run:
        return NOT_RUN
    return FAILS if FAILS in run else HOLDS if all(v == HOLDS for v in run) else INCONCLUSIVE
