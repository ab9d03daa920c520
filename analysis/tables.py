"""The Average@k table: methods x suites and their mean, mean ± 95% CI over seeds, Markdown + LaTeX.

python analysis/tables.py [--results results/runs] [--out DIR] [--group-by KEYS]

Rows: the base model, each fixed exposure (OPSD = r 1 among them), ATESD and whatever
other methods the results hold; columns: the eval suites in config order, then their
mean (each run's mean over the suites, then over seeds). A cell is mean ± t_{0.975,n-1}
sd / sqrt(n) over the seeds that finished with an eval.json; with one seed it is the
mean alone. The best mean per column is bold. Below: the Δ versus OPSD rows (difference
of means, percentage points) as the paper reports it - ATESD, and the best other fixed
exposure. Writes <out>/average<k>.md and .tex (out: <results>/tables).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cli import AnalysisError, cli, each_group, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.labels import methods
from analysis.stats import mean_ci

MEAN = "Mean"
OPSD = "opsd-r1"  # the OPSD paper's setting: fixed exposure r = 1
TIE = 1e-9  # means closer than this count as tied for "best" (smoke runs often all score 0)


@dataclass
class Cell:
    mean: float
    half: float  # 95% CI half-width; NaN with one seed
    n: int


@dataclass
class AverageTable:
    k: int
    columns: list[str]  # suites in config order, then MEAN
    labels: dict[str, str]  # method -> row label, in row order
    cells: dict[str, dict[str, Cell]]  # method -> column -> cell (percent)
    runs_note: dict[str, str]  # method -> "3" or "2 (+1 failed)"
    deltas: list[tuple[str, dict[str, float]]] = field(default_factory=list)

    def best(self, column: str) -> set[str]:
        """Methods with the top mean in this column; none when every row ties (nothing stands out)."""
        means = {m: c[column].mean for m, c in self.cells.items() if not math.isnan(c[column].mean)}
        if len(means) < 2:
            return set(means)
        top = max(means.values())
        winners = {m for m, v in means.items() if v >= top - TIE}
        return set() if len(winners) == len(means) else winners


def run_scores(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str], int]:
    """(one row per finished run: method + Average@k per suite + MEAN, in percent; suites; k)."""
    done = runs[(runs["state"] == "done") & runs["has_eval"] & runs["suite"].notna()]
    if done.empty:
        raise AnalysisError("no finished run with an eval.json: nothing to tabulate")
    suites = list(done.sort_values("suite_index").drop_duplicates("suite")["suite"])
    ks = sorted(done["k"].dropna().astype(int).unique())
    wide = done.pivot_table(index=["run", "method"], columns="suite", values="average", aggfunc="first")
    wide = wide.reindex(columns=suites) * 100.0
    wide[MEAN] = wide[suites].mean(axis=1, skipna=False)  # a run missing a suite has no mean
    return wide.reset_index(), suites, int(ks[-1])


def runs_note(info: pd.DataFrame, method: str, n_scored: int) -> str:
    """'3' or '2 (+1 failed, +1 running)': runs of this method that are not in the numbers.

    'stalled': status.json says running but the process is gone (killed, or died hard).
    """
    other = info[(info["method"] == method) & (info["state"] != "done")]
    extra = other["state"].where(~other["stalled"], "stalled").value_counts()
    tail = ", ".join(f"+{n} {state}" for state, n in extra.items())
    return f"{n_scored} ({tail})" if tail else str(n_scored)


def delta_rows(table: AverageTable, order: pd.DataFrame) -> list[tuple[str, dict[str, float]]]:
    """Δ vs OPSD (difference of means): ATESD, and the best fixed exposure other than r = 1."""
    if OPSD not in table.cells:
        return []
    ref = table.cells[OPSD]
    out = []
    candidates = []
    if "atesd" in table.cells:
        candidates.append(("ATESD", "atesd"))
    fixed = order[(order["exposure_source"] == "fixed") & (order["method_name"] == "opsd")
                  & order["tag"].isna() & (order["method"] != OPSD) & order["method"].isin(table.cells)]
    if len(fixed):
        best = max(fixed["method"], key=lambda m: table.cells[m][MEAN].mean
                   if not math.isnan(table.cells[m][MEAN].mean) else -math.inf)
        candidates.append((f"{table.labels[best]} (best other r)", best))
    for name, method in candidates:
        out.append((f"Δ {name} − OPSD",
                    {c: table.cells[method][c].mean - ref[c].mean for c in table.columns}))
    return out


def average_table(runs: pd.DataFrame) -> AverageTable:
    """The table's numbers from a runs table of one task config (see collect.split_comparable)."""
    scores, suites, k = run_scores(runs)
    info = run_info(runs)
    order = methods(info)  # every method, scored or not: a method whose runs all failed still shows
    columns = [*suites, MEAN]
    cells = {m: {c: Cell(*mean_ci(scores.loc[scores["method"] == m, c])) for c in columns}
             for m in order["method"]}
    labels = dict(zip(order["method"], order["label"]))
    notes = {m: runs_note(info, m, int((scores["method"] == m).sum())) for m in order["method"]}
    table = AverageTable(k, columns, labels, cells, notes)
    table.deltas = delta_rows(table, order)
    return table


def fmt_cell(cell: Cell, tex: bool = False) -> str:
    if math.isnan(cell.mean):
        return "-"
    if math.isnan(cell.half):
        return f"{cell.mean:.1f}"
    pm = "$\\pm$" if tex else "±"
    return f"{cell.mean:.1f} {pm} {cell.half:.1f}"


def caption(t: AverageTable) -> str:
    return (f"Average@{t.k} (%) per suite and their mean: mean ± 95% CI over seeds (Student t, "
            f"n - 1 dof); a single seed shows the mean alone. Bold: best mean per column. runs: seeds "
            f"in the numbers, in brackets the runs left out (stalled: status running, process gone). "
            f"Δ: difference of means vs OPSD (r = 1), percentage points.")


def to_markdown(t: AverageTable) -> str:
    head = ["Method", "runs", *t.columns]
    lines = [caption(t), "", "| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(t.columns)]
    best = {c: t.best(c) for c in t.columns}
    for m, label in t.labels.items():
        cells = [f"**{fmt_cell(t.cells[m][c])}**" if m in best[c] else fmt_cell(t.cells[m][c])
                 for c in t.columns]
        lines.append(f"| {label} | {t.runs_note[m]} | " + " | ".join(cells) + " |")
    for label, values in t.deltas:
        lines.append(f"| {label} |  | " + " | ".join(f"{values[c]:+.1f}" if not math.isnan(values[c])
                                                     else "-" for c in t.columns) + " |")
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    for a, b in [("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"), ("#", "\\#"),
                 ("Δ", "$\\Delta$"), ("−", "$-$")]:
        text = text.replace(a, b)
    return text


def latex_frame(t: AverageTable) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the LaTeX table's cells as text, a same-shaped mask of the cells set in bold)."""
    head = ["Method", "runs", *t.columns]
    rows = [[label, t.runs_note[m], *(fmt_cell(t.cells[m][c], tex=True) for c in t.columns)]
            for m, label in t.labels.items()]
    rows += [[label, "", *(f"${v[c]:+.1f}$" if not math.isnan(v[c]) else "-" for c in t.columns)]
             for label, v in t.deltas]
    bold = [[False, False, *(m in t.best(c) for c in t.columns)] for m in t.labels]
    bold += [[False] * len(head) for _ in t.deltas]
    return pd.DataFrame(rows, columns=head), pd.DataFrame(bold, columns=head)


def to_latex(t: AverageTable) -> str:
    """A booktabs tabular through pandas' Styler.to_latex; the caption goes above as a comment
    (the file is \\input inside the paper's own table environment)."""
    cells, bold = latex_frame(t)
    first_delta = t.deltas[0][0] if t.deltas else None

    def method_text(label: str) -> str:
        # Styler has no rule between body rows: the Δ rows start with their own \midrule.
        return ("\\midrule\n" if label == first_delta else "") + tex_escape(label)

    styler = (cells.style.hide(axis="index")
              .format({"Method": method_text, "runs": tex_escape})
              .format_index(tex_escape, axis=1)
              .apply(lambda _: bold.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None))
    body = styler.to_latex(column_format="l r " + "c " * len(t.columns), hrules=True)
    return f"% {caption(t)}\n% needs \\usepackage{{booktabs}}\n" + body


def write_tables(runs: pd.DataFrame, out_dir: Path, suffix: str = "") -> tuple[AverageTable, list[Path]]:
    table = average_table(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"average{table.k}{suffix}.md"
    tex = out_dir / f"average{table.k}{suffix}.tex"
    md.write_text(to_markdown(table))
    tex.write_text(to_latex(table))
    return table, [md, tex]


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="folder for the tables (default <results>/tables)")
    col = collect(a.results, refresh=a.refresh)
    out = Path(a.out) if a.out else Path(a.results) / "tables"
    groups = split_comparable(col.runs, group_keys(a.group_by))

    def write(label: str, runs: pd.DataFrame) -> list[str]:
        table, paths = write_tables(runs, out, slug(label))
        return [f"{label + ': ' if label else ''}wrote " + ", ".join(map(str, paths)), to_markdown(table)]

    each_group(groups, a.results, write)


if __name__ == "__main__":
    cli(main)
