"""The ATESD controller over training: its Beta policy and the exposure it sampled, per window.

python analysis/controller_plot.py [--results results/runs] [--out FILE]

One panel per adaptive method with controller rows in metrics.jsonl (ATESD and its
controller ablations; harness/sources/controller.py, kind "controller", one row per hold
window). Per seed: the policy's Beta(a, b) mean a / (a + b) at each decision, held
over its window (line), a band of ± one Beta standard deviation
sqrt(ab / ((a + b)^2 (a + b + 1))) around it, and the exposure r actually sampled
for the window (dots, at the window's middle). Window k covers optimiser steps
(end of window k - 1, end of window k]. Seeds are colors, later seeds drawn thinner
on top (all seeds start from the same Beta); runs that are not done are dashed
(failed) or dotted (running or killed).
Writes FILE.png and FILE.pdf (default <results>/figures/controller) and prints where;
with no controller rows it prints one line saying so and writes nothing (exit 0).

Beside it, FILE_diagnostics.png/.pdf: did the policy learn? One row per method, one column
per diagnostic, one line per seed, over decisions k: the policy mean a / (a + b) with the
sampled r; its concentration a + b (the initial Beta's 2 + 2 log 2 dashed: a policy that
learns narrows); the reward R of each credited decision (at the decision it scores) and its
advantage; and the reward SNR (ctrl_reward_snr, harness/sources/reinforce.py reward_snr) with
what pure noise gives, sqrt(2 / (n - 4)), dashed: a reward that carries the exposure's effect
sits well above it. Runs written before these were logged show what their rows hold.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import pandas as pd

from analysis.cli import AnalysisError, cli, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.curves import STATE_STYLE, row_major
from analysis.labels import methods
from analysis.style import FIG_WIDTH, pyplot, save, stem_of, subtitle

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_NAME = "controller"
WINDOW_COLUMNS = ["run", "method", "label", "seed", "state", "window", "start", "step",
                  "ctrl_r", "ctrl_a", "ctrl_b", "beta_mean", "beta_sd"]
SEED_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
NCOLS = 3  # panels per row
NO_ROWS = "no ATESD run: no controller rows in metrics.jsonl"
DIAGNOSTIC_COLUMNS = ["run", "method", "label", "seed", "state", "window", "credited", "ctrl_r",
                      "policy_mean", "concentration", "reward", "advantage", "snr"]
INITIAL_CONCENTRATION = 2 * (1 + np.log(2))  # the policy's initial Beta(1 + log 2, 1 + log 2)
MIN_SNR_DECISIONS = 6  # harness/sources/reinforce.py: the SNR is logged from the 6th credited decision


class NoControllerRows(AnalysisError):
    """No run has controller rows: the figure is skipped, which is not an error."""


def beta_mean_sd(a: np.ndarray | float, b: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Mean a / (a + b) and standard deviation sqrt(ab / ((a + b)^2 (a + b + 1))) of Beta(a, b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = a + b
    return a / total, np.sqrt(a * b / (total**2 * (total + 1)))


def controller_windows(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run x hold window, exactly what is plotted (WINDOW_COLUMNS), in step order.

    start: the step the window began after (the previous window's end, 0 for the first);
    step: its last step (the controller row's step); beta_*: of the decision that chose ctrl_r.
    """
    rows = metrics[metrics["kind"] == "controller"] if "ctrl_a" in metrics.columns else metrics.iloc[:0]
    if rows.empty:
        raise NoControllerRows(NO_ROWS)
    info = run_info(runs)[["run", "method", "label", "seed", "state"]]
    out = rows[["run", "window", "step", "ctrl_r", "ctrl_a", "ctrl_b"]].merge(info, on="run", how="inner")
    out = out.sort_values(["run", "step"]).reset_index(drop=True)
    out["start"] = out.groupby("run")["step"].shift(1).fillna(0).astype(out["step"].dtype)
    out["beta_mean"], out["beta_sd"] = beta_mean_sd(out["ctrl_a"].to_numpy(), out["ctrl_b"].to_numpy())
    return out[WINDOW_COLUMNS]


def diagnostic_rows(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run x decision with what the diagnostics figure draws (DIAGNOSTIC_COLUMNS).

    policy_mean, concentration: of the decision that governed the window (from ctrl_a, ctrl_b,
    so runs logged before ctrl_policy_mean still draw); credited, reward, advantage: the
    decision this window's update credited and its reward and advantage (NaN where none); snr:
    ctrl_reward_snr (NaN where not logged)."""
    rows = metrics[metrics["kind"] == "controller"] if "ctrl_a" in metrics.columns else metrics.iloc[:0]
    rows = rows[rows["ctrl_a"].notna()]
    if rows.empty:
        raise NoControllerRows(NO_ROWS)
    info = run_info(runs)[["run", "method", "label", "seed", "state"]]
    out = rows.merge(info, on="run", how="inner").sort_values(["run", "step"]).reset_index(drop=True)
    out["policy_mean"] = out["ctrl_a"] / (out["ctrl_a"] + out["ctrl_b"])
    out["concentration"] = out["ctrl_a"] + out["ctrl_b"]
    for col, key in (("credited", "ctrl_credited"), ("reward", "ctrl_reward"),
                     ("advantage", "ctrl_advantage"), ("snr", "ctrl_reward_snr")):
        out[col] = out[key].astype(float) if key in out.columns else np.nan
    return out[DIAGNOSTIC_COLUMNS]


def noise_snr(n: np.ndarray) -> np.ndarray:
    """What reward_snr gives pure noise after n credited decisions: about sqrt(2 / (n - 4))."""
    return np.sqrt(2.0 / (n - 4.0))


def draw_diagnostics_row(axes, g: pd.DataFrame, styles: dict) -> None:
    """One method: its five diagnostics, one line per seed."""
    for _, w in g.groupby("run"):
        color, lw = styles[w["seed"].iloc[0]]
        credited = w.dropna(subset=["credited"])
        axes[0].plot(w["window"], w["policy_mean"], color=color, lw=lw)
        axes[0].scatter(w["window"], w["ctrl_r"], s=6, color=color, alpha=0.6, linewidths=0)
        axes[1].plot(w["window"], w["concentration"], color=color, lw=lw)
        axes[2].scatter(credited["credited"], credited["reward"], s=8, color=color, alpha=0.8, linewidths=0)
        axes[3].plot(credited["credited"], credited["advantage"], color=color, lw=lw, marker=".", ms=3)
        axes[4].plot(w["window"], w["snr"], color=color, lw=lw)
    axes[0].set_ylim(0.0, 1.0)
    axes[1].axhline(INITIAL_CONCENTRATION, color="0.4", ls="--", lw=0.8)
    axes[3].axhline(0.0, color="0.4", lw=0.6)
    n = np.arange(MIN_SNR_DECISIONS, max(int(g["window"].max()) + 2, MIN_SNR_DECISIONS + 1))
    axes[4].plot(n - 1, noise_snr(n), color="0.4", ls="--", lw=0.8)  # window n - 1 credits the n-th
    if g["snr"].isna().all():
        axes[4].text(0.5, 0.5, "not logged", transform=axes[4].transAxes, ha="center", color="0.4")


def diagnostics_figure(runs: pd.DataFrame, metrics: pd.DataFrame) -> tuple[Figure, pd.DataFrame]:
    """(figure, the diagnostic_rows it draws): one row of five panels per method."""
    data = diagnostic_rows(runs, metrics)
    order = [m for m in methods(run_info(runs))["method"] if m in set(data["method"])]
    styles = seed_styles(list(data["seed"].unique()))
    plt = pyplot()
    fig, axes = plt.subplots(len(order), 5, figsize=(FIG_WIDTH * 1.4, 0.9 + 2.0 * len(order)),
                             squeeze=False, constrained_layout=True)
    titles = ["policy mean (r: dots)", "concentration a+b", "reward R", "advantage",
              "reward SNR (- - noise)"]
    for row, method in zip(axes, order):
        g = data[data["method"] == method]
        draw_diagnostics_row(row, g, styles)
        n = g["run"].nunique()
        row[0].set_ylabel(f"{g['label'].iloc[0]}\n({n} seed{'s' * (n != 1)})")
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, loc="left", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("decision k")
    fig.suptitle("ATESD diagnostics: did the policy learn? (a learning policy narrows, its mean "
                 "settles, and its reward SNR clears the noise line)",
                 fontsize=10, fontweight="bold", x=0.0, ha="left")
    return fig, data


def diagnostics_stem(out: Path) -> Path:
    """FILE -> FILE_diagnostics (the diagnostics figure beside the controller figure)."""
    stem = stem_of(out)
    return stem.with_name(stem.name + "_diagnostics")


def seed_styles(seeds: list) -> dict:
    """seed -> (color, line width): later seeds thinner, drawn on top, so coinciding policies
    (every seed starts from the same Beta) still show each seed's color."""
    return {s: (SEED_COLORS[i % len(SEED_COLORS)], max(0.8, 2.4 - 0.7 * i))
            for i, s in enumerate(sorted(seeds))}


def draw_run(ax, w: pd.DataFrame, style: tuple[str, float], dot_size: float) -> None:
    """One run: the held Beta mean (steps), ± 1 sd band, the sampled r as dots mid-window."""
    color, lw = style
    x = np.append(w["start"].to_numpy(), w["step"].iloc[-1])  # each value holds until the next start
    mean = np.append(w["beta_mean"].to_numpy(), w["beta_mean"].iloc[-1])
    sd = np.append(w["beta_sd"].to_numpy(), w["beta_sd"].iloc[-1])
    ls = STATE_STYLE.get(w["state"].iloc[0], "-.")
    ax.fill_between(x, mean - sd, mean + sd, step="post", color=color, alpha=0.12, linewidth=0)
    ax.plot(x, mean, drawstyle="steps-post", color=color, lw=lw, ls=ls)
    ax.scatter((w["start"] + w["step"]) / 2, w["ctrl_r"], s=dot_size, color=color, alpha=0.8,
               linewidths=0, zorder=3)


def draw_panel(ax, g: pd.DataFrame, styles: dict, hold: str) -> None:
    from matplotlib.ticker import MaxNLocator

    per_run = g.groupby("run").size().max()
    dot_size = 14 if per_run <= 40 else 6 if per_run <= 200 else 2
    for _, w in sorted(g.groupby("run"), key=lambda rw: list(styles).index(rw[1]["seed"].iloc[0])):
        draw_run(ax, w, styles[w["seed"].iloc[0]], dot_size)
    n = g["run"].nunique()
    ax.set_title(g["label"].iloc[0], loc="left", pad=14)
    subtitle(ax, f"{n} seed{'s' * (n != 1)}{hold}")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlim(0, g["step"].max())
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))


def hold_text(runs: pd.DataFrame, method: str) -> str:
    """'; one decision per H steps' from the runs' config (nothing when unknown or mixed)."""
    col = "cfg.controller.hold"
    if col not in runs.columns:
        return ""
    holds = run_info(runs).query("method == @method")[col].dropna().unique()
    if len(holds) != 1:
        return ""
    h = int(holds[0])
    return f"; one decision per {h} step{'s' * (h != 1)}"


def controller_figure(runs: pd.DataFrame, metrics: pd.DataFrame) -> tuple[Figure, pd.DataFrame]:
    """(figure, the controller_windows frame it draws): one panel per method with controller rows."""
    data = controller_windows(runs, metrics)
    order = [m for m in methods(run_info(runs))["method"] if m in set(data["method"])]
    styles = seed_styles(list(data["seed"].unique()))
    ncols = min(NCOLS, len(order))
    nrows = -(-len(order) // ncols)
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, 0.6 + 2.3 * nrows), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, method in zip(axes.ravel(), order):
        draw_panel(ax, data[data["method"] == method], styles, hold_text(runs, method))
        ax.set_xlabel("optimiser step")
    for ax in axes.ravel()[len(order):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("teacher exposure r")
    fig.suptitle("ATESD controller: Beta policy mean ± 1 sd per decision, and the exposure r it sampled",
                 fontsize=10, fontweight="bold", x=0.0, ha="left")
    legend(fig, data, styles)
    return fig, data


def plot_controller(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path) -> list[Path]:
    """Draw and save the figure as out.png and out.pdf, and the diagnostics figure as
    out_diagnostics.png and .pdf; returns the files."""
    import matplotlib.pyplot as plt

    paths = []
    for draw, stem in ((controller_figure, out), (diagnostics_figure, diagnostics_stem(out))):
        fig, _ = draw(runs, metrics)
        paths += save(fig, stem)
        plt.close(fig)
    return paths


def legend(fig, data: pd.DataFrame, styles: dict) -> None:
    """Below the panels: what the line, band and dots are, then one color per seed, then states."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    grey = "0.3"
    handles = [Line2D([], [], color=grey, lw=1.4), Patch(color=grey, alpha=0.25, linewidth=0),
               Line2D([], [], color=grey, ls="", marker="o", ms=4)]
    labels = ["policy mean a/(a+b), held over its window", "± 1 sd of Beta(a, b)",
              "sampled r (one dot per window)"]
    handles += [Line2D([], [], color=c, lw=lw) for c, lw in styles.values()]
    labels += [f"seed {int(s) if float(s).is_integer() else s}" for s in styles]
    states = [s for s in STATE_STYLE if s in set(data["state"])]
    if states != ["done"]:
        for s in states:
            handles.append(Line2D([], [], color=grey, lw=1.2, ls=STATE_STYLE[s]))
            labels.append(s if s != "running" else "running / killed")
    ncol = min(3, len(labels))
    idx = row_major(len(labels), ncol)
    fig.legend([handles[i] for i in idx], [labels[i] for i in idx], loc="outside lower center",
               ncol=ncol, frameon=False)


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out=f"output file stem; .png and .pdf are written "
              f"(default <results>/figures/{DEFAULT_NAME})")
    col = collect(a.results, refresh=a.refresh)
    if not len(col.metrics) or not col.metrics["kind"].eq("controller").any():
        print(f"{a.results}: {NO_ROWS}; no controller figure written")
        return
    stem = stem_of(Path(a.out) if a.out else Path(a.results) / "figures" / DEFAULT_NAME)
    for label, runs in split_comparable(col.runs, group_keys(a.group_by)):
        metrics = col.metrics[col.metrics["run"].isin(runs["run"])]
        try:
            paths = plot_controller(runs, metrics, stem.with_name(stem.name + slug(label)))
        except NoControllerRows as err:
            print(f"{label + ': ' if label else ''}skipped ({err})")
            continue
        print(f"{label + ': ' if label else ''}wrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    cli(main)
