"""The numbers the claims report reads from collected runs: which runs a comparison means,
per-run scores, final mismatch points, first-step probe points, training trajectories.

python -c "from analysis.claim_data import Select; help(Select)"

A side of a comparison is a Select: method name (runinfo's `method_name`, e.g. opsd, atesd,
grpo), tag (None: untagged) and, for fixed-exposure methods, r. Scores are Average@k in
percent per run: per suite and their MEAN (analysis/tables.py's definition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.cli import AnalysisError
from analysis.collect import run_info
from analysis.tables import MEAN
from analysis.tables import run_scores as table_scores
from harness.runs.runinfo import ST

QUARTERS = 4  # the trajectory is told as the mean of each quarter of training
RUN_KEYS = ["run", "method_name", "tag", "exposure_source", "exposure", "seed"]


@dataclass(frozen=True)
class Select:
    """One side of a comparison: runs of one method name, tag (None: untagged) and r (None: any)."""

    label: str
    method_name: str
    tag: str | None = None
    exposure: float | None = None

    def mask(self, df: pd.DataFrame) -> pd.Series:
        m = df["method_name"] == self.method_name
        m &= df["tag"].isna() if self.tag is None else df["tag"] == self.tag
        if self.exposure is not None:
            m &= np.isclose(df["exposure"].astype(float), self.exposure)
        return m

    def values(self, scores: pd.DataFrame, column: str) -> list[float]:
        """The column's value of every selected finished run (one per seed)."""
        return scores.loc[self.mask(scores), column].dropna().tolist() if len(scores) else []

    def describe(self) -> str:
        """The run names it stands for, as a reader would look for them."""
        tag = f"-{self.tag}" if self.tag else ""
        r = f"-r{self.exposure:g}" if self.exposure is not None else ""
        r = r or ("-r<r>" if self.method_name == "opsd" else "")
        return f"{self.method_name}{tag}{r}-s<seed> run"

    def name_in(self, scores: pd.DataFrame) -> str:
        """The label, with the r the runs used when the Select leaves r open (the tuned r)."""
        rs = sorted(set(scores.loc[self.mask(scores), "exposure"].dropna())) if len(scores) else []
        return f"{self.label} ({', '.join(f'r = {r:g}' for r in rs)})" if self.exposure is None and rs \
            else self.label


def run_scores(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(one row per finished run with an eval.json: RUN_KEYS, each suite and MEAN in %, suites)."""
    try:
        wide, suites, _ = table_scores(runs)
    except AnalysisError:  # nothing evaluated yet: every score-based comparison is "not run"
        return pd.DataFrame(columns=[*RUN_KEYS, MEAN]), []
    info = run_info(runs)[RUN_KEYS]
    return wide.drop(columns="method").merge(info, on="run"), suites


def fixed_mismatch(info: pd.DataFrame) -> pd.DataFrame:
    """exposure, seed and final KL(S||T) of every finished, untagged fixed-exposure OPSD run."""
    done = info[(info["state"] == "done") & (info["exposure_source"] == "fixed") & info["tag"].isna()
                & (info["method_name"] == "opsd") & (info["train_steps"] > 0)]
    return done[["exposure", "seed", f"final_{ST}"]].rename(columns={f"final_{ST}": ST}).dropna()


def probe_points(info: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """(probe_exposure, KL(S||T)) at each finished OPSD r = 1 run's first probed step, and that step."""
    runs = info.loc[(info["state"] == "done") & (info["method"] == "opsd-r1"), "run"]
    if not len(metrics) or "probe_exposure" not in metrics.columns:
        return pd.DataFrame(columns=["probe_exposure", ST]), None
    rows = metrics[(metrics["kind"] == "probe") & metrics["run"].isin(runs)]
    if rows.empty:
        return pd.DataFrame(columns=["probe_exposure", ST]), None
    first = rows[rows["step"] == rows.groupby("run")["step"].transform("min")]
    return first[["probe_exposure", ST]].dropna().reset_index(drop=True), int(first["step"].min())


def quarter_means(rows: pd.DataFrame, key: str) -> list[float]:
    """The mean of `key` over each quarter of one run's train rows, in step order."""
    values = rows.sort_values("step")[key].to_numpy(dtype=float) if key in rows.columns else np.array([])
    if len(values) < QUARTERS:
        return [math.nan] * QUARTERS
    return [float(np.nanmean(part)) if np.isfinite(part).any() else math.nan
            for part in np.array_split(values, QUARTERS)]


def trajectory(scores: pd.DataFrame, metrics: pd.DataFrame, side: Select) -> list[str]:
    """['KL Q1 → Q4', 'teacher entropy Q1 → Q4'] averaged over the side's runs ('-' without runs)."""
    names = scores.loc[side.mask(scores), "run"].tolist() if len(scores) else []
    train = metrics[(metrics["kind"] == "train") & metrics["run"].isin(names)] if len(metrics) else metrics
    out = []
    for key in (ST, "teacher_entropy"):
        per_run = [quarter_means(g, key) for _, g in train.groupby("run")] if len(train) else []
        if not per_run or np.isnan(per_run).all():
            out.append("-")
            continue
        means = np.nanmean(np.array(per_run), axis=0)
        out.append(" → ".join(f"{m:.3f}" if key != ST else f"{m:.4f}" for m in means))
    return out
