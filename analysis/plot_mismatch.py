"""The paper's figure: student-teacher mismatch (KL) versus teacher exposure, sweep and probe.

python -m analysis.plot_mismatch [--results results/runs] [--out FILE] [--probe-method opsd-r1]
(or `python analysis/plot_mismatch.py ...`)

(a) the sweep: each finished fixed-exposure run's final mismatch (harness.runs.runinfo: mean
    over the last quarter of its train rows), then mean ± 95% CI over seeds (t, n - 1 dof) per
    exposure; both directions: KL(p_S || p_T) (the logged mismatch) and KL(p_T || p_S).
(b) the probe: KL(p_S || p_T) at every probed exposure, measured on the same rollouts,
    over training steps (runs of one method, default OPSD r = 1; mean over seeds, and
    each seed as a thin line).
Writes FILE.png and FILE.pdf (default <results>/figures/mismatch_vs_exposure) and prints
where, then a one-line verdict: is the mean mismatch monotone in exposure (Spearman rho).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import pandas as pd

from analysis.cli import AnalysisError, cli, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.stats import mean_ci, monotone, spearman_with_permutation_p
from analysis.style import (
    DIRECTION_STYLE,
    FIG_WIDTH,
    KL_LABEL,
    exposure_colors,
    kl_axis,
    pyplot,
    save,
    stem_of,
    subtitle,
)
from harness.runs.runinfo import FINAL_FRACTION, ST, TS


# ---- data ---------------------------------------------------------------------------------------
def finished(info: pd.DataFrame) -> pd.DataFrame:
    return info[info["state"] == "done"]


def sweep_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished, untagged fixed-exposure OPSD run with train rows (AntiSD / SDAR at a
    fixed r are other methods): exposure, seed, and its final mismatch in both directions
    (harness.runs.runinfo: the last quarter of its train rows)."""
    info = finished(run_info(runs))
    fixed = info[(info["exposure_source"] == "fixed") & (info["method_name"] == "opsd") & info["tag"].isna()
                 & (info["train_steps"] > 0)]
    points = fixed[["run", "seed", "exposure", f"final_{ST}", f"final_{TS}"]]
    return points.rename(columns={f"final_{ST}": ST, f"final_{TS}": TS}).reset_index(drop=True)


def sweep_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Per exposure and direction: mean, 95% CI half-width (NaN for one seed), n seeds."""
    rows = []
    for r, g in points.groupby("exposure"):
        for key in (ST, TS):
            mean, half, n = mean_ci(g[key])
            rows.append({"exposure": r, "direction": key, "mean": mean, "half": half, "n": n})
    return pd.DataFrame(rows, columns=["exposure", "direction", "mean", "half", "n"])


def choose_probe_method(info: pd.DataFrame, metrics: pd.DataFrame, wanted: str | None) -> str | None:
    """The method whose rollouts panel (b) shows: `wanted`, else OPSD r = 1, else the best-seeded one."""
    probed = set(metrics.loc[metrics["kind"] == "probe", "run"]) if len(metrics) else set()
    done = finished(info)
    done = done[done["run"].isin(probed)]
    if wanted:
        if wanted not in set(done["method"]):
            have = ", ".join(sorted(set(done["method"]))) or "none"
            raise AnalysisError(f"--probe-method {wanted!r} has no finished run with probe rows "
                                f"(have: {have})")
        return wanted
    if done.empty:
        return None
    counts = done["method"].value_counts()
    return "opsd-r1" if "opsd-r1" in counts else str(counts.index[0])


def probe_summary(metrics: pd.DataFrame, run_names: list[str]) -> pd.DataFrame:
    """Per probed step and probed exposure: mean KL(S||T) over the runs, 95% CI, n."""
    rows = metrics[(metrics["kind"] == "probe") & metrics["run"].isin(run_names)]
    out = []
    for (step, r), g in rows.groupby(["step", "probe_exposure"]):
        mean, half, n = mean_ci(g[ST])
        out.append({"step": step, "probe_exposure": r, "mean": mean, "half": half, "n": n})
    return pd.DataFrame(out, columns=["step", "probe_exposure", "mean", "half", "n"])


def verdict(points: pd.DataFrame, probe: pd.DataFrame) -> str:
    """One line: is the mean KL(S||T) monotone in exposure (sweep), Spearman rho; and the probe's count."""
    means = points.groupby("exposure")[ST].mean().sort_index()
    if len(means) < 2:
        text = f"the sweep needs >= 2 finished fixed exposures to judge (have {len(means)})"
    else:
        trend = monotone(list(means))
        if trend:
            way = "rises" if trend == "increasing" else "falls"
            text = f"mean KL(S||T) {way} monotonically with exposure"
        else:
            r, v = list(means.index), list(means)
            drops = [f"r = {r[i]:g} -> {r[i + 1]:g}" for i in range(len(r) - 1) if v[i + 1] <= v[i]]
            text = f"mean KL(S||T) is NOT monotone in exposure (does not rise from {', '.join(drops)})"
        if len(points) >= 3 and points[ST].nunique() > 1:
            rho, p = spearman_with_permutation_p(points["exposure"].to_numpy(), points[ST].to_numpy())
            text += (f"; Spearman rho = {rho:+.2f} (permutation p = {p:.2g}, {len(points)} runs, "
                     f"{len(means)} exposures)")
        else:
            text += f"; Spearman rho undefined ({len(points)} runs)"
    if len(probe):
        steps = [monotone(list(g.sort_values("probe_exposure")["mean"])) == "increasing"
                 for _, g in probe.groupby("step")]
        text += f"; probe: rises with exposure at {sum(steps)}/{len(steps)} probed steps"
    return "verdict: " + text


# ---- drawing ------------------------------------------------------------------------------------
def draw_sweep(ax, points: pd.DataFrame, summary: pd.DataFrame) -> None:
    if summary.empty:
        ax.text(0.5, 0.5, "no finished fixed-exposure run", ha="center", va="center", transform=ax.transAxes)
        return
    rng = np.random.default_rng(0)  # fixed jitter: the figure is the same every time
    exposures = sorted(points["exposure"].unique())
    dodge = 0.015 * max(0.25, max(exposures) - min(exposures))  # the two directions' bars side by side
    for key, shift in ((ST, -dodge), (TS, dodge)):
        s = summary[summary["direction"] == key].sort_values("exposure")
        style = DIRECTION_STYLE[key]
        half = s["half"].fillna(0.0)  # one seed at this r: no bar
        ax.errorbar(s["exposure"] + shift, s["mean"], yerr=half if s["n"].max() >= 2 else None, capsize=3,
                    lw=1.6, ms=5, label=KL_LABEL[key] + (" (logged mismatch)" if key == ST else ""), **style)
        jitter = rng.uniform(-dodge / 2, dodge / 2, len(points))
        ax.scatter(points["exposure"] + shift + jitter, points[key], s=9, color=style["color"], alpha=0.35,
                   linewidths=0, zorder=1)
    lo, hi = int(summary["n"].min()), int(summary["n"].max())
    seeds = f"{hi} seeds" if lo == hi else f"{lo}-{hi} seeds"
    spread = f"mean ± 95% CI, {seeds}" if hi >= 2 else "1 seed, no CI"
    subtitle(ax, f"last {FINAL_FRACTION:.0%} of steps; {spread}; dots: runs")
    ax.set_xticks(exposures)
    ax.set_xticklabels([f"{r:g}" for r in exposures])
    ax.set_xlabel("teacher exposure r")
    ax.set_ylabel("mismatch per token (nats)")
    kl_axis(ax)
    ax.legend(loc="upper left", frameon=True)


def draw_probe(ax, probe: pd.DataFrame, rows: pd.DataFrame, method_label: str, n_runs: int) -> None:
    """Mean over the runs per probed r (thick), each run thin: with 2-3 seeds a t-interval band
    (t = 12.7 at n = 2) would swamp the lines, while the runs themselves show the spread."""
    if probe.empty:
        ax.text(0.5, 0.5, "no probe rows (probe.every = 0?)", ha="center", va="center",
                transform=ax.transAxes)
        return
    colors = exposure_colors(sorted(probe["probe_exposure"].unique()))
    for r, g in sorted(probe.groupby("probe_exposure"), key=lambda x: -x[0]):  # legend: r = 1 on top
        g = g.sort_values("step")
        ax.plot(g["step"], g["mean"], color=colors[r], lw=1.8, marker="o" if len(g) <= 12 else None, ms=3,
                label=f"{r:g}", zorder=3)
        if n_runs >= 2:
            for _, one in rows[rows["probe_exposure"] == r].groupby("run"):
                one = one.sort_values("step")
                ax.plot(one["step"], one[ST], color=colors[r], lw=0.7, alpha=0.35, zorder=2)
    spread = f"mean of {n_runs} seeds, thin: each seed" if n_runs >= 2 else "1 seed"
    subtitle(ax, f"rollouts of {method_label}; {spread}")
    ax.set_xlabel("training step")
    ax.set_ylabel(KL_LABEL[ST] + " (nats)")
    kl_axis(ax)
    ax.legend(title="probed r", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_mismatch(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path,
                  probe_method: str | None = None) -> tuple[list[Path], str]:
    """Draw and save the two-panel figure; returns (written files, verdict line)."""
    info = run_info(runs)
    points = sweep_points(runs)
    method = choose_probe_method(info, metrics, probe_method)
    if points.empty and method is None:
        raise AnalysisError("no finished fixed-exposure run and no probe rows: nothing to plot "
                            "(the figure needs a finished `make sweep`)")
    probe_runs = list(finished(info).query("method == @method")["run"]) if method else []
    probe = probe_summary(metrics, probe_runs)
    plt = pyplot()
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(FIG_WIDTH, 2.8), constrained_layout=True)
    draw_sweep(ax_a, points, sweep_summary(points))
    label = info.loc[info["method"] == method, "label"].iloc[0] if method else ""
    rows = metrics[(metrics["kind"] == "probe") & metrics["run"].isin(probe_runs)]
    draw_probe(ax_b, probe, rows, label, len(probe_runs))
    ax_a.set_title("(a) fixed-exposure sweep", loc="left", pad=14)
    ax_b.set_title("(b) probe: every r on the same rollouts", loc="left", pad=14)
    paths = save(fig, out)
    plt.close(fig)
    return paths, verdict(points, probe)


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="output file stem; .png and .pdf are written "
              "(default <results>/figures/mismatch_vs_exposure)",
              probe_method="method whose probe rows panel (b) shows, e.g. opsd-r0.5 (default opsd-r1)")
    col = collect(a.results, refresh=a.refresh)
    out = Path(a.out) if a.out else Path(a.results) / "figures" / "mismatch_vs_exposure"
    for label, runs in split_comparable(col.runs, group_keys(a.group_by)):
        metrics = col.metrics[col.metrics["run"].isin(runs["run"])]
        stem = stem_of(out)
        paths, line = plot_mismatch(runs, metrics, stem.with_name(stem.name + slug(label)), a.probe_method)
        print(f"{label + ': ' if label else ''}wrote " + ", ".join(map(str, paths)))
        print(line)


if __name__ == "__main__":
    cli(main)
