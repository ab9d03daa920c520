"""The competence-gap map: which exposure wins at which gap level, the mismatch and the teacher's
leak against r per level, the reference controls, and the claims per level.

python -m analysis.gap_map --results results/reproduce [--out DIR]
(or `python analysis/gap_map.py ...`; make reproduce runs it after `make sweep EXPERIMENT=gap_map`)

Writes into DIR (default: the results root):
  figures/gap_map.png, .pdf   Average@k, final KL(S‖T) and the teacher's leak (p_T of the
                              reference's and of the rollout-consistent value) against r, one
                              line per gap level (mean ± 95% CI over seeds; leak: the probe at
                              the first step, every exposure on the base model's rollouts)
  tables/gap_map.md           the regime map, the leak table, the controls and the claims
Runs: analysis/gap_data.py; claims and their rules: analysis/gap_report.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import pandas as pd

from analysis.claims import VERDICT_HEAD, Claim, ci_text, table
from analysis.cli import AnalysisError, cli, parse
from analysis.collect import collect, run_info
from analysis.comparable import split_comparable
from analysis.difficulty import suite_order
from analysis.gap_data import (
    LEAK_KEYS,
    LEAK_LABEL,
    fixed_opsd,
    level_order,
    map_scores,
    probe_leak,
    train_leak,
)
from analysis.gap_report import (
    claim_a_levels,
    claim_b_levels,
    claim_c_levels,
    claim_content,
    level_runs,
    regime_map,
)
from analysis.stats import mean_ci
from analysis.style import FIG_WIDTH, KL_LABEL, pyplot, save, subtitle
from analysis.tables import MEAN
from harness.runs.runinfo import ST

STEM = "gap_map"


def curve(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """x, mean, half-width of y over the frame's rows at each x."""
    rows = [(v, *mean_ci(g[y].tolist())[:2]) for v, g in frame.groupby(x)]
    return pd.DataFrame(rows, columns=[x, "mean", "half"]).sort_values(x)


def draw(ax, frame: pd.DataFrame, x: str, y: str, label: str, **style) -> None:
    c = curve(frame.dropna(subset=[y]), x, y)
    if c.empty:
        return
    ax.plot(c[x], c["mean"], marker="o", label=label, **style)
    ax.fill_between(c[x], c["mean"] - c["half"].fillna(0), c["mean"] + c["half"].fillna(0), alpha=0.15,
                    color=ax.lines[-1].get_color())


def plot(scores: pd.DataFrame, probe: pd.DataFrame, out: Path) -> list[Path]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(FIG_WIDTH * 1.7, 3.0))
    levels = level_order(scores["level"].dropna())
    colors = dict(zip(levels, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for level in levels:
        runs, mine = level_runs(scores, level), probe[probe["level"] == level]
        draw(axes[0], runs, "exposure", MEAN, level, color=colors[level])
        draw(axes[1], runs, "exposure", f"final_{ST}", level, color=colors[level])
        draw(axes[2], mine, "probe_exposure", "leak_p_reference", level, color=colors[level])
        draw(axes[3], mine, "probe_exposure", "leak_p_consistent", level, color=colors[level])
    titles = ("Average@k (mean over suites, %)", f"final {KL_LABEL[ST]}", "leak: p_T(reference value)",
              "p_T(rollout-consistent value)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, pad=14)
        ax.set_xlabel("exposure r")
    subtitle(axes[0], "fixed-r OPSD runs, mean ± 95% CI over seeds")
    subtitle(axes[2], "step-1 probe, where the two values differ")
    for ax in axes[2:]:
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(title="gap level")
    fig.tight_layout()
    return save(fig, out)


def leak_table(train: pd.DataFrame, probe: pd.DataFrame) -> list[str]:
    rows = []  # probe: one sample per seed (analysis/gap_data.py probe_leak); train: one per run
    for level in level_order(pd.concat([train["level"], probe["level"]]).dropna()):
        for r in sorted(set(train.loc[train["level"] == level, "exposure"]) |
                        set(probe.loc[probe["level"] == level, "probe_exposure"])):
            t = train[(train["level"] == level) & np.isclose(train["exposure"], r)]
            p = probe[(probe["level"] == level) & np.isclose(probe["probe_exposure"], r)]
            rows.append([level, f"{r:g}", *(ci_text(p[k], 3) for k in LEAK_KEYS),
                         *(ci_text(t[k], 3) for k in LEAK_KEYS)])
    head = ["gap level", "r", *(f"probe step 1: {LEAK_LABEL[k]}" for k in LEAK_KEYS),
            *(f"train, last quarter: {LEAK_LABEL[k]}" for k in LEAK_KEYS)]
    return table(head, rows)


def render(claims: list[Claim], regime: list[str], leak: list[str], results: str, label: str) -> str:
    where = f" ({label})" if label else ""
    lines = [f"## The competence-gap map{where}", "",
             f"Generated by `python -m analysis.gap_map --results {results}`; runs of `make sweep "
             "EXPERIMENT=gap_map` (sweeps/experiment/gap_map.yaml). Figure: figures/gap_map.png.", "",
             "The pre-registered verdict (analysis/PREREGISTRATION.md: seed-paired, Holm within the claim, "
             "margins fixed in advance) comes first, the Welch rule's beside it.", "",
             *table(VERDICT_HEAD, [[f"({c.key}) {c.title}", *c.verdict_cells] for c in claims]),
             "", "### The regime map: the best fixed r per gap level", "",
             "Fixed-exposure OPSD runs; the exposure with the top mean and its Average@k (%), mean ± "
             "95% CI over seeds (whether it beats r = 1 reliably: claim (g-b)).", "", *regime,
             "", "### The teacher's leak", "",
             "Where a rollout's result token has a consistent value (from its own written step) other "
             "than the reference's value at that step: the teacher's probability of each "
             "(harness/trainers/leak.py). Probe: the token mean of the first probed step per run, the "
             "runs of a seed averaged (they probe the same rollouts), then mean ± 95% CI over seeds; "
             "train: the mean of the per-step token means over the last quarter of a run, then mean ± "
             "95% CI over runs. p_T(reference value) is also split by whether that value lay inside the "
             "reference prefix the teacher was shown: below r = 1 a value past the cut is one it could "
             "not copy, so only the shown column compares across r.", "", *leak]
    for c in claims:
        lines += c.lines()
    return "\n".join(lines) + "\n"


def write(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path, results: str, label: str) -> list[Path]:
    scores, suites = map_scores(runs)
    if scores.empty or fixed_opsd(scores).empty:
        raise AnalysisError(f"no finished fixed-exposure OPSD run under {results}: nothing to map "
                            "(make sweep EXPERIMENT=gap_map RESULTS=<dir> makes them)")
    info = run_info(runs)
    probe, train = probe_leak(info, metrics), train_leak(info, metrics)
    claims = [claim_a_levels(scores), claim_b_levels(scores, suite_order(runs, suites)),
              claim_content(scores), *claim_c_levels(scores)]
    md = out / "tables" / f"{STEM}.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    regime = regime_map(scores, suite_order(runs, suites))
    md.write_text(render(claims, regime, leak_table(train, probe), results, label))
    return [md, *plot(scores, probe, out / "figures" / STEM)]


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="folder for figures/ and tables/ (default: the results root)")
    col = collect(a.results, refresh=a.refresh)
    out = Path(a.out or a.results)
    for label, runs in split_comparable(col.runs):
        paths = write(runs, col.metrics[col.metrics["run"].isin(runs["run"])], out, a.results, label)
        print("wrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    cli(main)
