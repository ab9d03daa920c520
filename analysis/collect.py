"""Read every run folder under a results root into pandas: a runs table and a metrics table.

python -m analysis.collect [--results results/runs] [--refresh]      # prints what it found
(`python analysis/collect.py ...` works too)

runs table     one row per run x eval suite (a run without eval.json keeps one row with
               `suite` missing): the run-level fields of harness.runs.runinfo.as_dict (run,
               method = run name without seed, label, state, exposure, seed, steps, final
               mismatch ...), the suite's eval.json numbers, and config.yaml flattened as
               `cfg.<dotted.key>`. state: harness.runs.runinfo's (running|done|failed, pending:
               config.yaml but no status yet); stalled: running, but its process is gone
               (analysis/stalled.py).
metrics table  one row per metrics.jsonl row (train, probe, controller, eval): `run` plus the
               row's own keys (documented in harness/runs/schema.py); probe rows keep
               `probe_exposure`, the exposure they measured.
Runs that failed or are still running are kept, with their state; a truncated last
jsonl line is skipped (harness.runs.rundir.read_jsonl). Both tables are cached as parquet
(analysis/cache.py) and rebuilt when any run file changes, appears or disappears.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cache import CACHE_FILES, fingerprint, read_cache, through_arrow, write_cache
from analysis.cli import AnalysisError, cli, parse
from analysis.stalled import describe, mark_stalled, unfinished_lines
from harness.runs.rundir import flat
from harness.runs.runinfo import ST, TS, as_dict, read_run
from harness.tune.space import TAG as TUNE_TAG

# Columns that describe the run, not one suite (one row per run: `run_info`).
RUN_COLUMNS = ["run", "method", "label", "method_name", "tag", "exposure_source", "exposure", "seed",
               "profile", "state", "stalled", "reason", "problem", "updated", "host", "pid", "starts",
               "has_config", "has_eval", "train_steps", "last_step", "planned_steps",
               f"final_{ST}", f"final_{TS}"]


@dataclass
class Collected:
    root: Path
    runs: pd.DataFrame  # one row per run x suite
    metrics: pd.DataFrame  # one row per metrics.jsonl row
    from_cache: bool

    @property
    def info(self) -> pd.DataFrame:
        return run_info(self.runs)


def run_folders(root: Path) -> list[Path]:
    """Run folders under root: any non-hidden folder with config.yaml or status.json.

    `<name>.bak-<time>` folders (kept by force=true) are superseded runs and are skipped, and
    so are make tune's trials (run names `<method>-tune...`): they choose r on the validation
    problems, their table is <results>/tune/<study>.md, and they are not a method.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"results folder {root} does not exist "
                            f"(`make sweep RESULTS={root}` writes one)")
    folders = [p for p in sorted(root.iterdir())
               if p.is_dir() and not p.name.startswith(".") and ".bak-" not in p.name
               and not is_tune_trial(p.name)
               and ((p / "config.yaml").exists() or (p / "status.json").exists())]
    if not folders:
        raise AnalysisError(f"no run folders under {root} (a run folder holds config.yaml and "
                            f"status.json; `make sweep RESULTS={root}` writes them)")
    return folders


def is_tune_trial(name: str) -> bool:
    """A make tune trial's run folder: its tag is harness.tune.space.TAG, optionally + _lr..."""
    return re.search(rf"^[a-z_]+-{TUNE_TAG}(_lr[0-9.]+)?-", name) is not None


def flatten(tree: dict, prefix: str = "cfg.") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"cfg.a.b": 1}; lists become JSON text (parquet-safe, comparable)."""
    return {f"{prefix}{key}": json.dumps(value, sort_keys=True) if isinstance(value, list) else value
            for key, value in flat(tree).items()}


def table_rows(folder: Path) -> tuple[list[dict], list[dict]]:
    """(runs-table rows, metrics-table rows) of one run folder; problems are recorded, not raised."""
    info = read_run(folder)
    run = {**as_dict(info), **flatten(info.config)}
    suites = info.eval.get("suites") or {}
    rows = [{**run, "suite": None, "suite_index": math.nan}] if not suites else [
        {**run, "suite": name, "suite_index": i, **res} for i, (name, res) in enumerate(suites.items())]
    return rows, [{"run": info.run, **r} for r in info.metrics]


def build_tables(folders: Sequence[Path]) -> dict[str, pd.DataFrame]:
    runs, metrics = [], []
    for folder in folders:
        r, m = table_rows(folder)
        runs += r
        metrics += m
    metrics_df = pd.DataFrame(metrics) if metrics else pd.DataFrame(columns=["run", "step", "kind"])
    return {"runs": through_arrow(pd.DataFrame(runs)), "metrics": through_arrow(metrics_df)}


def collect(root: Path | str, refresh: bool = False) -> Collected:
    """Both tables for the results root, from the parquet cache when no run file changed."""
    root = Path(root)
    folders = run_folders(root)
    fp = fingerprint(folders)
    cached = None if refresh else read_cache(root, fp)
    tables = cached or build_tables(folders)
    if cached is None:
        try:
            write_cache(tables, root, fp)
        except OSError as err:  # a read-only results folder still gets its figures
            print(f"note: cache not written ({err})", file=sys.stderr)
    return Collected(root, mark_stalled(tables["runs"]), tables["metrics"], cached is not None)


def run_info(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the run-level columns (and the flattened config)."""
    cfg_cols = [c for c in runs.columns if c.startswith("cfg.")]
    cols = [c for c in RUN_COLUMNS if c in runs.columns] + cfg_cols
    return runs.drop_duplicates("run")[cols].reset_index(drop=True)


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__)
    col = collect(a.results, refresh=a.refresh)
    info = col.info
    print(f"{a.results}: {describe(info)} ({'cache' if col.from_cache else 'read from run folders'})")
    for line in unfinished_lines(info):
        print(line)
    print(f"runs table {col.runs.shape}, metrics table {col.metrics.shape}; "
          f"cache: {Path(a.results) / CACHE_FILES['runs']}, {Path(a.results) / CACHE_FILES['metrics']}")


if __name__ == "__main__":
    cli(main)
