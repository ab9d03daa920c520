"""The paper's figure: student-teacher mismatch (KL) versus teacher exposure, sweep and probe.

python analysis/plot_mismatch.py [--results results/runs] [--out FILE] [--probe-method opsd-r1]

(a) the sweep: each finished fixed-exposure run's mismatch, averaged over the last
    quarter of its training steps, then mean ± 95% CI over seeds (t, n - 1 dof) per
    exposure; both directions: KL(p_S || p_T) (the logged mismatch) and KL(p_T || p_S).
(b) the probe: KL(p_S || p_T) at every probed exposure, measured on the same rollouts,
    over training steps (runs of one method, default OPSD r = 1; mean over seeds, and
    each seed as a thin line).
Writes FILE.png and FILE.pdf (default <results>/figures/mismatch_vs_exposure) and prints
where, then a one-line verdict: is the mean mismatch monotone in exposure (Spearman rho).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python analysis/plot_mismatch.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.collect import (  # noqa: E402
    AnalysisError,
    add_common_args,
    cli,
    collect,
    group_keys,
    mean_ci,
    run_info,
    slug,
    split_comparable,
)

LAST_FRACTION = 0.25  # "over training" = the last quarter of steps: one step's KL is noisy
ST, TS = "mismatch_kl_st", "mismatch_kl_ts"
KL_LABEL = {ST: r"KL($p_S\,\|\,p_T$)", TS: r"KL($p_T\,\|\,p_S$)"}
DIRECTION_STYLE = {ST: dict(color="#1f4e99", ls="-", marker="o"),
                   TS: dict(color="#d1781c", ls="--", marker="s")}
EXPOSURE_CMAP = "viridis_r"  # dark = full reference, light = none; shared with curves.py
FIG_WIDTH = 7.0  # inches: a two-column paper's full text width


# ---- plotting style shared by the analysis figures ----------------------------------------------
def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), with the paper theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.0)
    plt.rcParams.update({"axes.titlesize": 10, "axes.titleweight": "bold", "legend.fontsize": 8,
                         "legend.title_fontsize": 8, "savefig.dpi": 200,
                         "pdf.fonttype": 42})  # TrueType in the PDF: venues reject Type 3 fonts
    return plt


def exposure_colors(exposures: list[float]) -> dict[float, tuple]:
    """One color per exposure on a fixed 0..1 scale, so r = 0.5 has the same color in every figure."""
    import matplotlib

    cmap = matplotlib.colormaps[EXPOSURE_CMAP]
    return {r: cmap(0.1 + 0.85 * r) for r in exposures}


def subtitle(ax, text: str) -> None:
    """A small grey line between an axes' title (set with pad=14) and the plot: what is averaged."""
    ax.text(0.0, 1.015, text, transform=ax.transAxes, fontsize=7.5, va="bottom", ha="left", color="0.35")


def kl_axis(ax) -> None:
    """KL is >= 0: the axis starts at 0 (a CI reaching below is cut there), plain tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_ylim(bottom=0.0)
    # No "1e-5" offset text above the axes: it would sit on the subtitle.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))


def stem_of(out: Path) -> Path:
    """`fig.png`, `fig.pdf` or `fig` -> `fig` (only these: group suffixes contain dots)."""
    return out.with_suffix("") if out.suffix in (".png", ".pdf") else out


def figure_paths(out: Path) -> tuple[Path, Path]:
    stem = stem_of(out)
    return stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")


def save(fig, out: Path) -> list[Path]:
    png, pdf = figure_paths(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    return [png, pdf]


# ---- data ---------------------------------------------------------------------------------------
def finished(info: pd.DataFrame) -> pd.DataFrame:
    return info[info["state"] == "done"]


def train_rows(metrics: pd.DataFrame, run: str) -> pd.DataFrame:
    rows = metrics[(metrics["run"] == run) & (metrics["kind"] == "train")]
    return rows.sort_values("step")


def late_mean(rows: pd.DataFrame, key: str) -> float:
    """Mean of `key` over the last LAST_FRACTION of the run's train rows (at least one row)."""
    n = max(1, math.ceil(LAST_FRACTION * len(rows)))
    return float(rows[key].tail(n).mean()) if len(rows) else math.nan


def sweep_points(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per finished, untagged fixed-exposure run: exposure, seed, late mean of both KLs."""
    info = finished(run_info(runs))
    fixed = info[(info["exposure_source"] == "fixed") & (info["method_name"] != "base") & info["tag"].isna()]
    rows = []
    for _, r in fixed.iterrows():
        tr = train_rows(metrics, r["run"])
        if len(tr):
            rows.append({"run": r["run"], "seed": r["seed"], "exposure": r["exposure"],
                         ST: late_mean(tr, ST), TS: late_mean(tr, TS)})
    return pd.DataFrame(rows, columns=["run", "seed", "exposure", ST, TS])


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


def monotone(values: list[float]) -> str:
    """'increasing', 'decreasing' or '' (strict, in the order given)."""
    d = np.diff(values)
    return "increasing" if len(d) and (d > 0).all() else "decreasing" if len(d) and (d < 0).all() else ""


def spearman_with_permutation_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rho and its two-sided permutation p-value: exact when n! <= 9999 pairings.

    The t-approximation scipy reports for spearmanr is meaningless at a handful of runs
    (rho = 1 on 5 points gives p ~ 1e-24; the exact value is 2/120).
    """
    def rho_of(y_perm: np.ndarray) -> float:
        return stats.spearmanr(x, y_perm).statistic

    res = stats.permutation_test((y,), rho_of, permutation_type="pairings", n_resamples=9999,
                                 alternative="two-sided", rng=0)
    return float(rho_of(y)), float(res.pvalue)


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
    subtitle(ax, f"last {LAST_FRACTION:.0%} of steps; {spread}; dots: runs")
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
    points = sweep_points(runs, metrics)
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--out", help="output file stem; .png and .pdf are written "
                    "(default <results>/figures/mismatch_vs_exposure)")
    ap.add_argument("--probe-method", help="method whose probe rows panel (b) shows, e.g. opsd-r0.5 "
                    "(default opsd-r1)")
    a = ap.parse_args(argv)
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
