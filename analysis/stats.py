"""Statistics the tables and figures report: t confidence intervals, monotone trends, Spearman rho.

python -c "from analysis.stats import mean_ci; print(mean_ci([0.1, 0.2, 0.4]))"

Few runs (2-3 seeds, 5 exposures) are the normal case here, so intervals use Student t
with n - 1 degrees of freedom and rank correlations an exact permutation p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width, n): mean ± t_{(1+level)/2, n-1} * sd / sqrt(n); half-width NaN for n < 2."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n < 2:
        return float(x[0]), math.nan, 1
    half = stats.t.ppf((1 + level) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def monotone(values: list[float]) -> str:
    """'increasing', 'decreasing' or '' (strict, in the order given)."""
    d = np.diff(values)
    return "increasing" if len(d) and (d > 0).all() else "decreasing" if len(d) and (d < 0).all() else ""


def spearman_with_permutation_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rho and its two-sided permutation p-value: exact when n! <= 9999 pairings.

    The t-approximation scipy reports for spearmanr is meaningless at a handful of runs
    (rho = 1 on 5 points gives p ~ 1e-24; the exact value is 2/120). Above 9999 pairings the
    p is a Monte Carlo estimate from a fixed generator; the points are sorted first so that the
    same runs give the same p whatever order they were collected in.
    """
    order = np.lexsort((np.asarray(y, dtype=float), np.asarray(x, dtype=float)))
    x, y = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]

    def rho_of(y_perm: np.ndarray) -> float:
        return stats.spearmanr(x, y_perm).statistic

    res = stats.permutation_test((y,), rho_of, permutation_type="pairings", n_resamples=9999,
                                 alternative="two-sided", rng=0)
    return float(rho_of(y)), float(res.pvalue)
