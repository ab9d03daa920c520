"""The pre-registered rules (analysis/prereg.py, analysis/PREREGISTRATION.md) applied to claims
(a), (b), (c), (g-a), (g-b), (g-c) and (g-ref): which runs each contrast pairs, per seed.

python -m analysis.prereg_report      # on the committed run tables (analysis/prereg_report.py)

Every function reads a frame with one row per finished run: method_name, tag, exposure, seed
and the endpoint column (MEAN: mean Average@k over suites in %, or the final KL), as
analysis/claim_data.py run_scores and analysis/gap_data.py map_scores give from run folders
and analysis/summary_runs.py from committed run tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claim_data import Select
from analysis.prereg import (
    EXCLUDED_EXPOSURES,
    HEAD,
    NON_INFERIORITY_MARGIN,
    PLAN,
    PairedTest,
    PreregVerdict,
    contrast_row,
    decide,
    paired_test,
)
from analysis.tables import MEAN


def seed_values(frame: pd.DataFrame, column: str) -> dict[int, float]:
    """{seed: value} of the frame's runs (a seed with several runs: their mean, which the plan
    does not expect; the fixed-r and method selections give one run per seed)."""
    rows = frame[["seed", column]].dropna()
    return {int(s): float(g[column].mean()) for s, g in rows.groupby("seed")}


def at_exposure(frame: pd.DataFrame, r: float) -> pd.DataFrame:
    return frame[np.isclose(frame["exposure"].astype(float), r)]


def rising_tests(points: pd.DataFrame, column: str, where: str = "") -> list[PairedTest]:
    """Claim (a): each adjacent pair of exposures, KL(r_next) - KL(r) per seed, margin 0."""
    rs = sorted(points["exposure"].dropna().astype(float).unique())
    prefix = f"{where}: " if where else ""
    def at(r: float) -> dict[int, float]:
        return seed_values(at_exposure(points, r), column)

    tests = [paired_test(at(b), at(a), 0.0, f"{prefix}KL r = {b:g} − r = {a:g}") for a, b in zip(rs, rs[1:])]
    for t in tests:
        t.digits = 4
    return tests


def full_not_best_tests(fixed: pd.DataFrame, where: str = "") -> list[PairedTest]:
    """Claim (b): each r in (0, 1) (r = 0 left out: no training) minus r = 1 on the mean, margin 0."""
    rs = sorted(r for r in fixed["exposure"].dropna().astype(float).unique()
                if r < 1.0 and not any(np.isclose(r, x) for x in EXCLUDED_EXPOSURES))
    full = seed_values(at_exposure(fixed, 1.0), MEAN)
    prefix = f"{where}: " if where else ""
    return [paired_test(seed_values(at_exposure(fixed, r), MEAN), full, 0.0, f"{prefix}r = {r:g} − r = 1")
            for r in rs]


def beats_tests(scores: pd.DataFrame, variant: Select, tuned: Select, opsd_full: Select,
                grpo: Select) -> list[PairedTest]:
    """Claim (c): ATESD − tuned r (non-inferiority, deciding), − OPSD r = 1 and − GRPO (secondary)."""
    mine = seed_values(scores[variant.mask(scores)], MEAN)
    plan = ((tuned, -NON_INFERIORITY_MARGIN, True), (opsd_full, 0.0, False), (grpo, 0.0, False))
    return [paired_test(mine, seed_values(scores[side.mask(scores)], MEAN), margin,
                        f"{variant.label} − {side.label}", decides)
            for side, margin, decides in plan]


def content_tests(own: pd.DataFrame, shuffled: pd.DataFrame, level: str) -> list[PairedTest]:
    """Claim (g-ref): own − shuffled reference at each r that has shuffled runs, margin 0."""
    rs = sorted(shuffled["exposure"].dropna().astype(float).unique())
    return [paired_test(seed_values(at_exposure(own, r), MEAN), seed_values(at_exposure(shuffled, r), MEAN),
                        0.0, f"{level}, r = {r:g}: own − shuffled") for r in rs]


# ---- a claim's verdict and its lines ---------------------------------------------------------------
def prereg_claim(key: str, tests: list[PairedTest]) -> PreregVerdict:
    return decide(key, tests, PLAN[key.split()[0]].combine)


def prereg_lines(v: PreregVerdict) -> list[str]:
    """The pre-registered verdict, the plan's primary contrast and one row per test (Markdown)."""
    plan = PLAN[v.key.split()[0]]
    rows = [contrast_row(t) for t in v.tests]
    return [f"**Pre-registered verdict (analysis/PREREGISTRATION.md): {v.summary()}.** Endpoint: "
            f"{plan.endpoint}; contrasts: {plan.primary}"
            + (f"; {plan.note}" if plan.note else "") + ".", "",
            "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD),
            *("| " + " | ".join(r) + " |" for r in rows)]
