"""Average@k per eval suite against the fixed exposure r: which r is best at which difficulty.

python -m analysis.difficulty [--results results/runs] [--out DIR] [--group-by KEYS]
(or `python analysis/difficulty.py ...`)

The paper reports that easy problems prefer a high exposure and hard ones a low one. Only
finished fixed-exposure OPSD runs enter (method opsd, method.loss opsd where the config has
that key, no tag: a tagged run is another setting at the same r); ATESD, schedules and
other methods are left out, the base model is a reference. Per suite and r: mean ± 95% CI
(t, n - 1 dof, analysis/stats.py) of the runs' Average@k over seeds, in percent. Suites go
easy -> hard: by the synthetic task's `num_ops` when every suite has one, else in config
order (TaskConfig documents it as rising difficulty). The best r of a suite is the one with
the top mean (ties within analysis.tables.TIE all count; none when every r ties).
Writes into DIR (default: the results root):
  figures/difficulty_vs_exposure.png, .pdf   one line per suite, ☆ at its best r, dotted: base
  tables/average<k>_by_difficulty.md, .tex   rows suites, columns r, best r bold, best r, seeds
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import pandas as pd

from analysis.cli import AnalysisError, cli, each_group, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.stalled import unfinished_lines
from analysis.stats import mean_ci
from analysis.style import FIG_WIDTH, difficulty_colors, pyplot, save, subtitle
from analysis.tables import TIE, Cell, fmt_cell, tex_escape

FIGURE_STEM = "difficulty_vs_exposure"
BASE = "base"


# ---- data ---------------------------------------------------------------------------------------
def _finished_scored(runs: pd.DataFrame) -> pd.DataFrame:
    """Run x suite rows of finished runs that have an eval.json."""
    return runs[(runs["state"] == "done") & runs["has_eval"] & runs["suite"].notna()]


def fixed_opsd_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished fixed-exposure OPSD run x suite: run, seed, exposure, suite, k, score (%)."""
    rows = _finished_scored(runs)
    keep = (rows["method_name"] == "opsd") & (rows["exposure_source"] == "fixed") & rows["tag"].isna()
    if "cfg.method.loss" in rows.columns:  # older run folders have no loss key: they are OPSD
        keep &= rows["cfg.method.loss"].isna() | (rows["cfg.method.loss"] == "opsd")
    out = rows.loc[keep, ["run", "seed", "exposure", "suite", "suite_index", "k", "average"]]
    return out.assign(score=100.0 * out["average"]).reset_index(drop=True)


def suite_order(runs: pd.DataFrame, suites: list[str]) -> list[str]:
    """suites easy -> hard: by the synthetic task's num_ops if every suite has one, else as given."""
    column = runs["cfg.task.suites"].dropna() if "cfg.task.suites" in runs.columns else pd.Series([])
    kinds = set(runs["cfg.task.kind"].dropna()) if "cfg.task.kind" in runs.columns else {"synthetic"}
    if column.empty or kinds != {"synthetic"}:
        return suites
    ops = {s["name"]: s.get("num_ops") for s in json.loads(column.iloc[0])}
    if any(ops.get(s) is None for s in suites):
        return suites
    return sorted(suites, key=lambda s: ops[s])  # stable: equal num_ops keep config order


def best_exposures(cells: dict[float, Cell]) -> list[float]:
    """The exposures with the top mean (ties within TIE); none when every exposure ties."""
    means = {r: c.mean for r, c in cells.items() if not math.isnan(c.mean)}
    if len(means) < 2:
        return sorted(means)
    top = max(means.values())
    winners = sorted(r for r, v in means.items() if v >= top - TIE)
    return [] if len(winners) == len(means) else winners


@dataclass
class DifficultyTable:
    k: int
    suites: list[str]  # easy -> hard
    exposures: list[float]
    cells: dict[str, dict[float, Cell]]  # suite -> r -> mean ± CI over seeds (percent)
    base: dict[str, float]  # suite -> the base model's Average@k (percent; NaN without a base run)
    best: dict[str, list[float]]  # suite -> its best r (ties: several)

    def seeds(self, suite: str) -> str:
        """Seeds behind the suite's cells: '3', or '2-3' when exposures differ."""
        ns = [c.n for c in self.cells[suite].values()]
        return str(min(ns)) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"


def difficulty_table(runs: pd.DataFrame) -> DifficultyTable:
    """The numbers of the figure and the table, from a runs table of one task config."""
    scores = fixed_opsd_scores(runs)
    if scores.empty:
        have = ", ".join(sorted(set(run_info(runs)["method"]))) or "none"
        raise AnalysisError(f"no finished fixed-exposure OPSD run with an eval.json (have: {have}); "
                            f"`make sweep EXPOSURES=0,0.5,1` makes some")
    suites = suite_order(runs, list(scores.sort_values("suite_index").drop_duplicates("suite")["suite"]))
    exposures = sorted(scores["exposure"].unique())
    cells = {s: {r: Cell(*mean_ci(scores.loc[(scores["suite"] == s) & (scores["exposure"] == r), "score"]))
                 for r in exposures} for s in suites}
    base_rows = _finished_scored(runs).query("method_name == @BASE")
    base = {s: mean_ci(100.0 * base_rows.loc[base_rows["suite"] == s, "average"])[0] for s in suites}
    best = {s: best_exposures(cells[s]) for s in suites}
    return DifficultyTable(int(scores["k"].max()), suites, [float(r) for r in exposures], cells, base, best)


def best_line(t: DifficultyTable) -> str:
    """'best r per suite (easy -> hard): easy_k3 1, medium_k4 0.5, hard_k5 0' (ties: '0.5/1')."""
    return "best r per suite (easy -> hard): " + ", ".join(
        f"{s} {'/'.join(f'{r:g}' for r in t.best[s]) or 'none (all tie)'}" for s in t.suites)


# ---- the table ----------------------------------------------------------------------------------
def caption(t: DifficultyTable) -> str:
    return (f"Average@{t.k} (%) per suite (easy -> hard) against the fixed exposure r of OPSD: mean ± "
            f"95% CI over seeds (Student t, n - 1 dof); a single seed shows the mean alone. Bold / "
            f"best r: the top mean of the row. Base: the base model, no training. seeds: runs per cell.")


def _r_head(r: float) -> str:
    return f"r = {r:g}"


def _best_text(t: DifficultyTable, suite: str) -> str:
    return ", ".join(f"{r:g}" for r in t.best[suite]) or "-"


def _base_text(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def to_markdown(t: DifficultyTable) -> str:
    head = ["Suite", "Base", *map(_r_head, t.exposures), "best r", "seeds"]
    lines = [caption(t), "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for s in t.suites:
        cells = [f"**{fmt_cell(t.cells[s][r])}**" if r in t.best[s] else fmt_cell(t.cells[s][r])
                 for r in t.exposures]
        lines.append(f"| {s} | {_base_text(t.base[s])} | " + " | ".join(cells)
                     + f" | {_best_text(t, s)} | {t.seeds(s)} |")
    return "\n".join(lines) + "\n"


def _tex_head(head: str) -> str:
    return f"${head}$" if head.startswith("r = ") else tex_escape(head).replace("best r", "best $r$")


def to_latex(t: DifficultyTable) -> str:
    """A booktabs tabular through pandas' Styler (as analysis/tables.py writes its table)."""
    head = ["Suite", "Base", *map(_r_head, t.exposures), "best r", "seeds"]
    rows = [[s, _base_text(t.base[s]), *(fmt_cell(t.cells[s][r], tex=True) for r in t.exposures),
             _best_text(t, s), t.seeds(s)] for s in t.suites]
    bold = pd.DataFrame([[False, False, *(r in t.best[s] for r in t.exposures), False, False]
                         for s in t.suites], columns=head)
    styler = (pd.DataFrame(rows, columns=head).style.hide(axis="index")
              .format({"Suite": tex_escape})
              .format_index(_tex_head, axis=1)
              .apply(lambda _: bold.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None))
    body = styler.to_latex(column_format="l r " + "c " * len(t.exposures) + "c r", hrules=True)
    return f"% {caption(t)}\n% needs \\usepackage{{booktabs}}\n" + body


def write_table(t: DifficultyTable, out_dir: Path, suffix: str = "") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"average{t.k}_by_difficulty{suffix}.md"
    tex = out_dir / f"average{t.k}_by_difficulty{suffix}.tex"
    md.write_text(to_markdown(t))
    tex.write_text(to_latex(t))
    return [md, tex]


# ---- the figure ---------------------------------------------------------------------------------
def draw(ax, t: DifficultyTable, scores: pd.DataFrame) -> None:
    """One line per suite (mean ± CI over seeds), the seeds as dots, ☆ at the best r, dotted: base."""
    colors = difficulty_colors(t.suites)
    span = max(0.25, t.exposures[-1] - t.exposures[0])
    dodge = {s: 0.012 * span * (i - (len(t.suites) - 1) / 2) for i, s in enumerate(t.suites)}
    rng = np.random.default_rng(0)  # fixed jitter: the figure is the same every time
    for s in t.suites:
        x = np.array(t.exposures) + dodge[s]
        mean = np.array([t.cells[s][r].mean for r in t.exposures])
        half = np.nan_to_num([t.cells[s][r].half for r in t.exposures])  # one seed: no bar
        best = ", ".join(f"{r:g}" for r in t.best[s]) or "none"
        ax.errorbar(x, mean, yerr=half, color=colors[s], lw=1.6, ms=4, marker="o", capsize=3,
                    label=f"{s} (best r = {best})", zorder=3)
        for r in t.best[s]:
            ax.plot(r + dodge[s], t.cells[s][r].mean, marker="*", ms=14, mfc="none", mec=colors[s],
                    mew=1.3, ls="none", zorder=4)
        pts = scores[scores["suite"] == s]
        jitter = rng.uniform(-abs(dodge[s]) / 2 - 0.003, abs(dodge[s]) / 2 + 0.003, len(pts))
        ax.scatter(pts["exposure"] + dodge[s] + jitter, pts["score"], s=8, color=colors[s], alpha=0.35,
                   linewidths=0, zorder=2)
        if not math.isnan(t.base[s]):
            ax.axhline(t.base[s], color=colors[s], lw=0.9, ls=":", zorder=1)
    ns = sorted({c.n for row in t.cells.values() for c in row.values()})
    seeds = f"{ns[-1]} seeds" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seeds"
    spread = f"mean ± 95% CI, {seeds}" if ns[-1] >= 2 else "1 seed, no CI"
    base = "; dotted: base model" if any(not math.isnan(v) for v in t.base.values()) else ""
    subtitle(ax, f"{spread}; dots: runs; ☆: best r of the suite{base}")
    ax.set_xticks(t.exposures)
    ax.set_xticklabels([f"{r:g}" for r in t.exposures])
    ax.set_xlabel("teacher exposure r (fixed, OPSD)")
    ax.set_ylabel(f"Average@{t.k} (%)")
    ax.legend(title="suite, easy → hard", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_difficulty(runs: pd.DataFrame, out: Path) -> tuple[DifficultyTable, list[Path]]:
    """Draw and save the figure (out: a file stem; .png and .pdf)."""
    t = difficulty_table(runs)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH * 0.75, 3.0), constrained_layout=True)
    draw(ax, t, fixed_opsd_scores(runs))
    ax.set_title(f"Average@{t.k} per suite against the teacher's exposure", loc="left", pad=14)
    paths = save(fig, out)
    plt.close(fig)
    return t, paths


def write_difficulty(runs: pd.DataFrame, out: Path, suffix: str = "") -> tuple[DifficultyTable, list[Path]]:
    """Figure and table into out/figures and out/tables (what `make figures` calls)."""
    t, fig_paths = plot_difficulty(runs, out / "figures" / f"{FIGURE_STEM}{suffix}")
    return t, fig_paths + write_table(t, out / "tables", suffix)


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="folder receiving figures/ and tables/ (default: the results root)")
    col = collect(a.results, refresh=a.refresh)
    for line in unfinished_lines(col.info):
        print(line)
    out = Path(a.out) if a.out else Path(a.results)
    groups = split_comparable(col.runs, group_keys(a.group_by))

    def write(label: str, runs: pd.DataFrame) -> list[str]:
        table, paths = write_difficulty(runs, out, slug(label))
        return [f"{label + ': ' if label else ''}wrote " + ", ".join(map(str, paths)),
                to_markdown(table), best_line(table)]

    each_group(groups, a.results, write)


if __name__ == "__main__":
    cli(main)
