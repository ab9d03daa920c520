"""Training curves: mismatch, loss, rollout accuracy and (adaptive methods) the exposure, over steps.

python analysis/curves.py [--results results/runs] [--out FILE] [--methods opsd-r1,atesd]

One line per run, colored by method (fixed exposures on the same color scale as the
mismatch figure, other methods in distinct colors); line style marks the run's state:
solid done, dashed failed, dotted still running (or killed). Mismatch, loss and accuracy
are rolling means over a window of about 1/15 of training (one step of 16 rollouts is
noisy); the exposure panel, shown only when adaptive methods (ATESD, random, schedule)
are present, is the raw exposure in force each step. Writes FILE.png and FILE.pdf
(default <results>/figures/training_curves).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cli import AnalysisError, cli, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.labels import methods
from analysis.style import FIG_WIDTH, KL_LABEL, exposure_colors, pyplot, save, stem_of
from harness.runs.runinfo import ST

PANELS = [(ST, KL_LABEL[ST] + " mismatch"), ("loss", "distillation loss"),
          ("rollout_accuracy", "rollout accuracy")]
EXPOSURE_PANEL = ("exposure", "exposure r in force")
STATE_STYLE = {"done": "-", "failed": "--", "running": ":"}
# Away from the viridis range the fixed exposures use: red, orange, pink, brown, grey, olive, cyan,
# blue, then lighter ones (the controller ablations bring ~10 adaptive methods).
OTHER_COLORS = ["#d62728", "#ff7f0e", "#e377c2", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#1f77b4",
                "#ff9896", "#ffbb78", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#aec7e8"]
SMOOTH_FRACTION = 1 / 15


def palette(order: pd.DataFrame) -> dict[str, tuple | str]:
    """method -> color: fixed exposures by r on the shared scale, the rest in turn from OTHER_COLORS."""
    fixed = order["exposure_source"].eq("fixed") & order["method_name"].eq("opsd")  # OPSD's r scale
    colors: dict[str, tuple | str] = {}
    by_r = exposure_colors(sorted(order.loc[fixed, "exposure"].unique()))
    others = iter(OTHER_COLORS * 8)
    for i, m in order.iterrows():
        on_scale = fixed[i] and not isinstance(m["tag"], str)  # tagged variants get their own color
        colors[m["method"]] = by_r[m["exposure"]] if on_scale else next(others)
    return colors


def smoothed(rows: pd.DataFrame, key: str, window: int) -> pd.Series:
    return rows[key].rolling(window, min_periods=1, center=False).mean()


def curve_runs(runs: pd.DataFrame, metrics: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """Runs that have train rows (any state), restricted to `wanted` methods if given."""
    info = run_info(runs)
    trained = set(metrics.loc[metrics["kind"] == "train", "run"]) if len(metrics) else set()
    info = info[info["run"].isin(trained)]
    if wanted:
        unknown = sorted(set(wanted) - set(info["method"]))
        if unknown:
            raise AnalysisError(f"--methods {','.join(unknown)}: no run with train rows "
                                f"(have: {', '.join(sorted(set(info['method'])))})")
        info = info[info["method"].isin(wanted)]
    if info.empty:
        raise AnalysisError("no run has train rows in metrics.jsonl: no training curves to draw")
    return info


def plot_curves(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path,
                wanted: list[str] | None = None) -> list[Path]:
    info = curve_runs(runs, metrics, wanted or [])
    order = methods(info)
    colors = palette(order)
    adaptive = info["exposure_source"].ne("fixed").any()
    panels = PANELS + ([EXPOSURE_PANEL] if adaptive else [])
    train = metrics[(metrics["kind"] == "train") & metrics["run"].isin(info["run"])].sort_values("step")
    window = max(1, round(train.groupby("run").size().max() * SMOOTH_FRACTION))
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    shape = (2, 2) if len(panels) == 4 else (1, 3)
    fig, axes = plt.subplots(*shape, figsize=(FIG_WIDTH, 4.6 if shape[0] == 2 else 2.6),
                             constrained_layout=True, sharex=True)
    axes = axes.ravel()
    for ax, (key, title) in zip(axes, panels):
        for _, run in info.iterrows():
            rows = train[train["run"] == run["run"]]
            if key == "exposure" and run["exposure_source"] == "fixed":
                continue  # a flat line per fixed run would hide the adaptive ones
            y = rows[key] if key == "exposure" else smoothed(rows, key, window)
            ax.plot(rows["step"], y, color=colors[run["method"]], lw=1.1, alpha=0.85,
                    ls=STATE_STYLE.get(run["state"], "-."),
                    drawstyle="steps-post" if key == "exposure" else "default")  # held per window
        ax.set_title(title, loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        if key == "rollout_accuracy" or key == "exposure":
            ax.set_ylim(-0.03, 1.03)
    for ax in axes[-shape[1]:]:  # shared x: only the bottom row says what it is
        ax.set_xlabel("training step")
    if window > 1:
        fig.text(0.0, 1.0, f"mismatch, loss, accuracy: rolling mean over {window} steps; one line per run",
                 fontsize=7.5, color="0.35", va="bottom")
    legend(fig, order, info, colors)
    paths = save(fig, out)
    plt.close(fig)
    return paths


def legend(fig, order: pd.DataFrame, info: pd.DataFrame, colors: dict) -> None:
    """One figure legend below the panels: methods (with run counts), then line styles if mixed."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for _, m in order.iterrows():
        n = int((info["method"] == m["method"]).sum())
        handles.append(Line2D([], [], color=colors[m["method"]], lw=2))
        labels.append(f"{m['label']} ({n} run{'s' * (n != 1)})")
    states = [s for s in STATE_STYLE if s in set(info["state"])]
    if states != ["done"]:
        for s in states:
            handles.append(Line2D([], [], color="0.2", lw=1.2, ls=STATE_STYLE[s]))
            labels.append(s if s != "running" else "running / killed")
    ncol = min(4, len(labels))
    order = row_major(len(labels), ncol)
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
               ncol=ncol, frameon=False)


def row_major(n: int, ncol: int) -> list[int]:
    """Item order that makes matplotlib's column-by-column legend read row by row (table order)."""
    nrows = -(-n // ncol)
    return [i * ncol + j for j in range(ncol) for i in range(nrows) if i * ncol + j < n]


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="output file stem (default <results>/figures/training_curves)",
              methods="comma-separated method keys to draw (default all)")
    col = collect(a.results, refresh=a.refresh)
    out = Path(a.out) if a.out else Path(a.results) / "figures" / "training_curves"
    stem = stem_of(out)
    for label, runs in split_comparable(col.runs, group_keys(a.group_by)):
        metrics = col.metrics[col.metrics["run"].isin(runs["run"])]
        chosen = group_keys(a.methods or "")
        paths = plot_curves(runs, metrics, stem.with_name(stem.name + slug(label)), chosen)
        print(f"{label + ': ' if label else ''}wrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    cli(main)
