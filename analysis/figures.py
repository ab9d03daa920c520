"""Every figure and table from a results root (what `make figures RESULTS=<dir>` runs).

python -m analysis.figures --results results/runs [--out DIR] [--group-by KEYS] [--refresh]

Collects the run folders (analysis/collect.py, parquet cache), says which runs are not
finished and why, then writes into DIR (default: the results root):
  tables/average<k>.md, .tex               analysis/tables.py
  figures/mismatch_vs_exposure.png, .pdf   analysis/plot_mismatch.py (and its verdict line)
  figures/training_curves.png, .pdf        analysis/curves.py
  figures/controller.png, .pdf             analysis/controller_plot.py (ATESD runs only)
  figures/controller_diagnostics.png, .pdf analysis/controller_plot.py: per decision the policy mean and
                                           concentration, reward, advantage and reward SNR (ATESD runs)
  figures/difficulty_vs_exposure.png, .pdf analysis/difficulty.py (fixed-exposure OPSD runs:
  tables/average<k>_by_difficulty.md, .tex  Average@k per suite against r, best r per suite)
  figures/exposure_trajectories.png, .pdf  analysis/exposure_plot.py (sources whose r moves;
  figures/exposure_by_difficulty.png, .pdf  per-problem sources: final r per reference steps,
  tables/exposure_by_difficulty.md           with its table)
A part with nothing to show (say, no fixed-exposure run for the mismatch figure) is
skipped with the reason; bad input (no results, nothing finished, mixed task configs)
is one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cli import AnalysisError, cli, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import slug, split_comparable
from analysis.controller_plot import plot_controller
from analysis.curves import plot_curves
from analysis.difficulty import best_line, write_difficulty
from analysis.exposure_plot import write_exposure
from analysis.plot_mismatch import plot_mismatch
from analysis.stalled import describe, unfinished_lines
from analysis.tables import write_tables


def parts(runs: pd.DataFrame, metrics: pd.DataFrame, out: Path, suffix: str,
          probe_method: str | None) -> list[tuple[str, Callable[[], list[str]]]]:
    """(name, job) per output; a job returns the lines to print."""
    def tables() -> list[str]:
        _, paths = write_tables(runs, out / "tables", suffix)
        return [", ".join(map(str, paths))]

    def mismatch() -> list[str]:
        paths, verdict = plot_mismatch(runs, metrics, out / "figures" / f"mismatch_vs_exposure{suffix}",
                                       probe_method)
        return [", ".join(map(str, paths)), verdict]

    def curves() -> list[str]:
        return [", ".join(map(str, plot_curves(runs, metrics, out / "figures" / f"training_curves{suffix}")))]

    def controller() -> list[str]:
        return [", ".join(map(str, plot_controller(runs, metrics, out / "figures" / f"controller{suffix}")))]

    def difficulty() -> list[str]:
        table, paths = write_difficulty(runs, out, suffix)
        return [", ".join(map(str, paths)), best_line(table)]

    def exposure() -> list[str]:
        return [", ".join(map(str, write_exposure(runs, metrics, out)))]

    return [("table", tables), ("mismatch figure", mismatch), ("training curves", curves),
            ("controller figure", controller), ("difficulty figure and table", difficulty),
            ("exposure figures", exposure)]


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="folder receiving figures/ and tables/ (default: the results root)",
              probe_method="method whose probe rows the mismatch figure's panel (b) shows (default opsd-r1)")
    col = collect(a.results, refresh=a.refresh)
    info = col.info
    print(f"{a.results}: {describe(info)}")
    for line in unfinished_lines(info):
        print(line)
    if not info["state"].eq("done").any():
        raise AnalysisError(f"no finished run under {a.results} ({describe(info)}): nothing to draw yet")
    out = Path(a.out) if a.out else Path(a.results)
    written = 0
    for label, runs in split_comparable(col.runs, group_keys(a.group_by)):
        if label:
            print(f"[{label}]")
        if not run_info(runs)["state"].eq("done").any():
            print("  skipped: no finished run in this group")
            continue
        metrics = col.metrics[col.metrics["run"].isin(runs["run"])]
        for name, job in parts(runs, metrics, out, slug(label), a.probe_method):
            try:
                lines = job()
            except AnalysisError as err:  # one part with nothing to show does not stop the others
                print(f"  {name}: skipped ({err})")
                continue
            written += 1
            print(f"  {name}: " + "\n  ".join(lines))
    if not written:
        raise AnalysisError("nothing could be drawn (see the skipped parts above)")


if __name__ == "__main__":
    cli(main)
