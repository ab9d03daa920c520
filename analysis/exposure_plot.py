"""Exposure over training (batch mean and spread, per method and seed) and, for per-problem
sources, the final exposure against each problem's difficulty.

python analysis/exposure_plot.py [--results results/runs] [--out DIR]

Trajectories: every trained run whose source is not a fixed exposure, one line per run
(colour: method; the band: +- the batch's spread `exposure_spread`, 0 for sources that give
the whole batch one r). Difficulty: from the `kind: exposure` rows of per-problem sources,
each run's last exposure per number of reference steps (`ref_steps`; the synthetic task's
operations), then mean and range over seeds per method. Writes DIR/figures/
exposure_trajectories.{png,pdf}, DIR/figures/exposure_by_difficulty.{png,pdf} and
DIR/tables/exposure_by_difficulty.md (default DIR: the results root).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cli import AnalysisError, cli, parse
from analysis.collect import collect, run_info
from analysis.style import FIG_WIDTH, pyplot, save


def trajectories(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """step, exposure, exposure_spread per train row of every run whose exposure moves."""
    info = run_info(runs)
    moving = info[info["exposure_source"].notna() & info["exposure_source"].ne("fixed")
                  & info["exposure_source"].ne("none")]
    rows = metrics[(metrics["kind"] == "train") & metrics["run"].isin(moving["run"])]
    if rows.empty or "exposure" not in rows:
        raise AnalysisError("no run whose exposure moves (every source here is fixed or none)")
    spread = rows["exposure_spread"] if "exposure_spread" in rows else pd.Series(0.0, index=rows.index)
    rows = rows.assign(exposure_spread=spread.fillna(0.0))  # runs from before the spread was logged
    keep = moving[["run", "method", "label", "seed"]]
    return rows[["run", "step", "exposure", "exposure_spread"]].merge(keep, on="run")


def final_by_difficulty(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """method, label, ref_steps, mean / min / max over seeds of each run's last exposure there."""
    rows = metrics[metrics["kind"] == "exposure"] if "kind" in metrics else metrics.iloc[:0]
    if rows.empty or "ref_steps" not in rows:
        raise AnalysisError("no per-problem exposure rows (kind exposure): no per-problem source ran")
    last = rows.sort_values("step").groupby(["run", "ref_steps"], as_index=False).last()
    last = last.merge(run_info(runs)[["run", "method", "label", "seed"]], on="run")
    per_run = last.groupby(["method", "label", "run", "ref_steps"], as_index=False)["exposure"].mean()
    return (per_run.groupby(["method", "label", "ref_steps"])["exposure"]
            .agg(["mean", "min", "max", "count"]).reset_index().rename(columns={"count": "seeds"}))


def draw_trajectories(traj: pd.DataFrame, out: Path) -> list[Path]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 3.0))
    colors = dict(zip(sorted(traj["method"].unique()), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 9))
    for _, one in traj.groupby("run"):
        one = one.sort_values("step")
        c = colors[one["method"].iloc[0]]
        label = f"{one['label'].iloc[0]} (s{one['seed'].iloc[0]})"
        ax.plot(one["step"], one["exposure"], color=c, lw=1, label=label)
        ax.fill_between(one["step"], one["exposure"] - one["exposure_spread"],
                        one["exposure"] + one["exposure_spread"], color=c, alpha=0.15, lw=0)
    ax.set(xlabel="optimiser step", ylabel="exposure r (batch mean ± spread)", ylim=(-0.02, 1.02))
    ax.legend(fontsize=6, ncol=2, loc="best")
    paths = save(fig, out)
    plt.close(fig)
    return paths


def draw_by_difficulty(table: pd.DataFrame, out: Path) -> list[Path]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH / 2, 2.6))
    for label, one in table.groupby("label"):
        one = one.sort_values("ref_steps")
        ax.errorbar(one["ref_steps"], one["mean"], yerr=[one["mean"] - one["min"], one["max"] - one["mean"]],
                    marker="o", capsize=3, label=label)
    ax.set(xlabel="reference steps (operations)", ylabel="final exposure r", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    paths = save(fig, out)
    plt.close(fig)
    return paths


def write_exposure(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path) -> list[Path]:
    """Both figures and the difficulty table; a part with nothing to show is left out
    (AnalysisError only when neither has anything)."""
    paths: list[Path] = []
    problems = []
    figures = out / "figures"
    for make in (lambda: draw_trajectories(trajectories(runs, metrics), figures / "exposure_trajectories"),
                 lambda: by_difficulty(runs, metrics, out)):
        try:
            paths += make()
        except AnalysisError as err:
            problems.append(str(err))
    if not paths:
        raise AnalysisError("; ".join(problems))
    return paths


def by_difficulty(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path) -> list[Path]:
    table = final_by_difficulty(runs, metrics)
    md = out / "tables" / "exposure_by_difficulty.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| method | reference steps | final r (mean) | min | max | seeds |", "|---|---|---|---|---|---|"]
    lines += [f"| {t.label} | {int(t.ref_steps)} | {t.mean:.3f} | {t.min:.3f} | {t.max:.3f} | {t.seeds} |"
              for t in table.itertuples()]
    md.write_text("\n".join(lines) + "\n")
    return [*draw_by_difficulty(table, out / "figures" / "exposure_by_difficulty"), md]


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="folder receiving figures/ and tables/ (default: the results root)")
    col = collect(a.results, refresh=a.refresh)
    out = Path(a.out) if a.out else Path(a.results)
    print("wrote " + ", ".join(map(str, write_exposure(col.runs, col.metrics, out))))


if __name__ == "__main__":
    cli(main)
