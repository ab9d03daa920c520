"""Read every run folder under a results root into pandas: a runs table and a metrics table.

python analysis/collect.py [--results results/runs] [--refresh]      # prints what it found

runs table     one row per run x eval suite (a run without eval.json keeps one row with
               `suite` missing): run, method (run name without seed), label, state, exposure,
               seed, the suite's eval.json numbers, and config.yaml flattened as `cfg.<dotted.key>`.
               state: status.json's running|done|failed, or pending (config.yaml but no
               status yet: waiting for a slot); stalled: running, but its process is gone.
metrics table  one row per metrics.jsonl row (train, probe, controller, eval): `run` plus the
               row's own keys (documented in harness/schema.py); probe rows keep
               `probe_exposure`, the exposure they measured.
Runs that failed or are still running are kept, with their state; a truncated last
jsonl line is skipped (harness.rundir.read_jsonl). Both tables are cached as
<results>/runs.parquet and <results>/metrics.parquet with a fingerprint of the run
files (size and mtime) and rebuilt when any run file changes, appears or disappears.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python analysis/collect.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from harness.rundir import flat, read_json, read_jsonl  # noqa: E402

CACHE_VERSION = 1  # bump when the tables' columns change meaning: old caches are then rebuilt
RUN_FILES = ("config.yaml", "status.json", "metrics.jsonl", "eval.json")
CACHE_FILES = {"runs": "runs.parquet", "metrics": "metrics.parquet"}
FINGERPRINT_KEY = b"analysis_fingerprint"
DEFAULT_RESULTS = "results/runs"
# Two runs' Average@k are comparable only if they were scored on the same task the same way.
COMPARED_PREFIXES = ("cfg.task.", "cfg.eval.")
NOT_COMPARED = {"cfg.eval.batch_size", "cfg.eval.every"}  # speed/logging knobs: same numbers
# Columns that describe the run, not one suite (one row per run: `run_info`).
RUN_COLUMNS = ["run", "method", "label", "method_name", "tag", "exposure_source", "exposure", "seed",
               "profile", "state", "stalled", "reason", "problem", "updated", "host", "pid",
               "has_config", "has_eval", "train_steps", "last_step", "planned_steps"]


class AnalysisError(Exception):
    """Bad input (no results, nothing finished, mixed configs): printed as one line, exit 2."""


@dataclass
class Collected:
    root: Path
    runs: pd.DataFrame  # one row per run x suite
    metrics: pd.DataFrame  # one row per metrics.jsonl row
    from_cache: bool

    @property
    def info(self) -> pd.DataFrame:
        return run_info(self.runs)


# ---- reading one run folder ---------------------------------------------------------------------
def run_folders(root: Path) -> list[Path]:
    """Run folders under root: any non-hidden folder with config.yaml or status.json.

    `<name>.bak-<time>` folders (kept by force=true) are superseded runs and are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"results folder {root} does not exist "
                            f"(`make sweep RESULTS={root}` writes one)")
    folders = [p for p in sorted(root.iterdir())
               if p.is_dir() and not p.name.startswith(".") and ".bak-" not in p.name
               and ((p / "config.yaml").exists() or (p / "status.json").exists())]
    if not folders:
        raise AnalysisError(f"no run folders under {root} (a run folder holds config.yaml and "
                            f"status.json; `make sweep RESULTS={root}` writes them)")
    return folders


def flatten(tree: dict, prefix: str = "cfg.") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"cfg.a.b": 1}; lists become JSON text (parquet-safe, comparable)."""
    return {f"{prefix}{key}": json.dumps(value, sort_keys=True) if isinstance(value, list) else value
            for key, value in flat(tree).items()}


def is_fixed(cfg: dict) -> bool:
    method = cfg.get("method") or {}
    return method.get("exposure_source") == "fixed" and method.get("name") != "base"


def method_key(cfg: dict) -> str:
    """What a table row stands for: the run name without its seed, built from the config.

    base | <method>[-<tag>]-r<exposure> (fixed exposure) | <method>[-<tag>] (adaptive).
    """
    if not cfg:
        return "unknown"
    name = (cfg.get("method") or {}).get("name", "unknown")
    if name == "base":
        return "base"
    key = f"{name}-{cfg['tag']}" if cfg.get("tag") else name
    return f"{key}-r{float(cfg.get('exposure', math.nan)):g}" if is_fixed(cfg) else key


def method_label(name: str | None, tag: str | None, fixed: bool, exposure: float) -> str:
    """The row label readers see in tables and legends."""
    suffix = f" [{tag}]" if tag else ""
    if name == "base":
        return "Base model"
    if fixed:
        if name == "opsd" and exposure == 1.0 and not tag:
            return "OPSD (r = 1)"
        return f"{'Fixed' if name == 'opsd' else name} r = {exposure:g}{suffix}"
    names = {"atesd": "ATESD", "random": "Random r", "schedule": "Schedule"}
    return names.get(name or "", str(name)) + suffix


def _read_config(folder: Path) -> tuple[dict, str]:
    p = folder / "config.yaml"
    if not p.exists():
        return {}, "no config.yaml"
    try:
        return yaml.safe_load(p.read_text()) or {}, ""
    except yaml.YAMLError as err:
        return {}, f"config.yaml unreadable: {str(err).splitlines()[0]}"


def read_run(folder: Path) -> tuple[list[dict], list[dict]]:
    """(runs-table rows, metrics-table rows) of one run folder; problems are recorded, not raised."""
    cfg, problem = _read_config(folder)
    status = read_json(folder / "status.json") if (folder / "status.json").exists() else {}
    try:
        metrics = read_jsonl(folder / "metrics.jsonl")
    except ValueError as err:  # a broken row in the middle: the run is kept and marked
        metrics, problem = [], str(err)
    evaluation = read_json(folder / "eval.json") if (folder / "eval.json").exists() else {}
    method = cfg.get("method") or {}
    fixed = is_fixed(cfg)
    exposure = float(cfg["exposure"]) if fixed else math.nan
    steps = [r["step"] for r in metrics if r.get("kind") == "train"]
    run = {
        "run": folder.name, "method": method_key(cfg),
        "label": method_label(method.get("name"), cfg.get("tag"), fixed, exposure) if cfg else folder.name,
        "method_name": method.get("name"), "tag": cfg.get("tag"),
        "exposure_source": method.get("exposure_source"), "exposure": exposure,
        "seed": cfg.get("seed"), "profile": cfg.get("profile"),
        # No status.json yet but a config: the job waits for a slot (harness.slots) - "pending".
        "state": status.get("state", "pending" if cfg else "unknown"), "reason": status.get("reason", ""),
        "problem": problem, "updated": status.get("updated"), "host": status.get("host"),
        "pid": status.get("pid"), "has_config": bool(cfg), "has_eval": bool(evaluation),
        "train_steps": len(steps), "last_step": max(steps) if steps else math.nan,
        "planned_steps": 0 if method.get("name") == "base" else (cfg.get("train") or {}).get("steps"),
        **flatten(cfg),
    }
    suites = evaluation.get("suites") or {}
    rows = [{**run, "suite": None, "suite_index": math.nan}] if not suites else [
        {**run, "suite": name, "suite_index": i, **res} for i, (name, res) in enumerate(suites.items())]
    return rows, [{"run": folder.name, **r} for r in metrics]


# ---- the parquet cache --------------------------------------------------------------------------
def fingerprint(folders: Sequence[Path]) -> str:
    """Changes whenever a run file is written, added or removed (size and mtime of each)."""
    items: list[Any] = [CACHE_VERSION]
    for folder in folders:
        for name in RUN_FILES:
            p = folder / name
            st = p.stat() if p.exists() else None
            items.append([folder.name, name, st.st_size if st else None, st.st_mtime_ns if st else None])
    return hashlib.sha1(json.dumps(items).encode()).hexdigest()


def arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns parquet can store: a column mixing value types (say bool and str) becomes text."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].dropna()
        kinds = {type(v) for v in values}
        if kinds and kinds <= {int, float}:
            out[col] = pd.to_numeric(out[col])
        elif len(kinds) > 1:
            out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v))
                                    else str(v))
    return out


def _write_parquet(df: pd.DataFrame, path: Path, fp: str) -> None:
    table = pa.Table.from_pandas(arrow_safe(df), preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), FINGERPRINT_KEY: fp.encode()})
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a cache


def _read_cache(root: Path, fp: str) -> dict[str, pd.DataFrame] | None:
    paths = {k: root / v for k, v in CACHE_FILES.items()}
    try:
        if not all((pq.read_schema(p).metadata or {}).get(FINGERPRINT_KEY) == fp.encode()
                   for p in paths.values()):
            return None
        return {k: pd.read_parquet(p) for k, p in paths.items()}
    except (OSError, pa.ArrowException):  # missing or unreadable cache: rebuild
        return None


def build_tables(folders: Sequence[Path]) -> dict[str, pd.DataFrame]:
    runs, metrics = [], []
    for folder in folders:
        r, m = read_run(folder)
        runs += r
        metrics += m
    metrics_df = pd.DataFrame(metrics) if metrics else pd.DataFrame(columns=["run", "step", "kind"])
    # Round-trip through Arrow so a fresh build has exactly the dtypes a cache load has.
    return {"runs": pa.Table.from_pandas(arrow_safe(pd.DataFrame(runs)), preserve_index=False).to_pandas(),
            "metrics": pa.Table.from_pandas(arrow_safe(metrics_df), preserve_index=False).to_pandas()}


def mark_stalled(runs: pd.DataFrame) -> pd.DataFrame:
    """`stalled`: status says running but its process is gone (killed) on this very host.

    Computed at every load, not cached: a process can die without touching any file.
    """
    here = os.uname().nodename

    def gone(row: pd.Series) -> bool:
        if row["state"] != "running" or row["host"] != here or pd.isna(row["pid"]):
            return False
        try:
            os.kill(int(row["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by someone else
            return False
        return False

    runs = runs.copy()
    runs["stalled"] = runs.apply(gone, axis=1).astype(bool) if len(runs) else pd.Series(dtype=bool)
    return runs


def collect(root: Path | str, refresh: bool = False) -> Collected:
    """Both tables for the results root, from the parquet cache when no run file changed."""
    root = Path(root)
    folders = run_folders(root)
    fp = fingerprint(folders)
    cached = None if refresh else _read_cache(root, fp)
    tables = cached or build_tables(folders)
    if cached is None:
        try:
            for key, name in CACHE_FILES.items():
                _write_parquet(tables[key], root / name, fp)
        except OSError as err:  # a read-only results folder still gets its figures
            print(f"note: cache not written ({err})", file=sys.stderr)
    return Collected(root, mark_stalled(tables["runs"]), tables["metrics"], cached is not None)


# ---- views on the tables ------------------------------------------------------------------------
def run_info(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the run-level columns (and the flattened config)."""
    cfg_cols = [c for c in runs.columns if c.startswith("cfg.")]
    cols = [c for c in RUN_COLUMNS if c in runs.columns] + cfg_cols
    return runs.drop_duplicates("run")[cols].reset_index(drop=True)


def state_text(row: pd.Series) -> str:
    if row["state"] == "running" and row["stalled"]:
        return "running (process gone)"
    return str(row["state"])


def describe(info: pd.DataFrame) -> str:
    """'9 runs: 6 done, 1 failed, 1 running (process gone)' - marks what is not finished."""
    counts = info.apply(state_text, axis=1).value_counts()
    parts = [f"{n} {state}" for state, n in counts.items()]
    return f"{len(info)} run{'s' * (len(info) != 1)}: " + ", ".join(parts)


def unfinished_lines(info: pd.DataFrame) -> list[str]:
    """One line per run that is not done (or could not be read), with the reason."""
    lines = []
    for _, row in info.iterrows():
        if row["state"] != "done" or row["problem"]:
            why = row["problem"] or row["reason"] or ""
            steps = f"{row['train_steps']}/{row['planned_steps']} steps" if row["has_config"] else ""
            lines.append(f"  {row['run']}: {state_text(row)}" + "".join(f"; {x}" for x in (steps, why) if x))
    return lines


def method_sort_key(row: pd.Series) -> tuple:
    """Table order: base, fixed exposures by r (OPSD r = 1 among them), ATESD, its variants, others."""
    name, tag = row["method_name"], row["tag"] if isinstance(row["tag"], str) else ""
    fixed = row["exposure_source"] == "fixed" and name != "base"
    if name == "base":
        rank = 0
    elif fixed:
        rank = 1
    else:
        rank = {"atesd": 2 if not tag else 3, "random": 4, "schedule": 5}.get(name, 6)
    return (rank, tag, row["exposure"] if fixed else 0.0, str(row["method"]))


def methods(info: pd.DataFrame) -> pd.DataFrame:
    """One row per method (method, label, method_name, tag, exposure_source, exposure), in table order."""
    first = info[info["has_config"]].drop_duplicates("method")
    cols = ["method", "label", "method_name", "tag", "exposure_source", "exposure"]
    order = sorted(first.index, key=lambda i: method_sort_key(first.loc[i]))
    return first.loc[order, cols].reset_index(drop=True)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width, n): mean ± t_{(1+level)/2, n-1} * sd / sqrt(n); half-width NaN for n < 2."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n < 2:
        return float(x[0]), math.nan, 1
    half = stats.t.ppf((1 + level) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


# ---- comparability: one table per task config ---------------------------------------------------
def _short(value: Any, width: int = 50) -> str:
    text = "missing" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def compared_columns(info: pd.DataFrame) -> list[str]:
    return [c for c in info.columns if c.startswith(COMPARED_PREFIXES) and c not in NOT_COMPARED]


def differing(info: pd.DataFrame, cols: Sequence[str]) -> list[str]:
    """Columns among cols whose value is not the same for every run (missing counts as a value)."""
    return [c for c in cols if info[c].astype(str).nunique() > 1]


def _normalise_key(key: str, info: pd.DataFrame) -> str:
    col = key if key.startswith("cfg.") else f"cfg.{key}"
    if col not in info.columns:
        known = ", ".join(c.removeprefix("cfg.") for c in compared_columns(info)[:8])
        raise AnalysisError(f"--group-by {key!r} is not a config key of these runs (e.g. {known}, ...)")
    return col


def split_comparable(runs: pd.DataFrame, group_by: Sequence[str] = ()) -> list[tuple[str, pd.DataFrame]]:
    """[(label, runs of one task config)]: refuses to mix task/eval configs unless grouped by them.

    Runs without a config.yaml cannot be placed and are left out (collect still lists them).
    """
    info = run_info(runs)
    info = info[info["has_config"]]
    if info.empty:
        raise AnalysisError("no run folder has a config.yaml: nothing to compare")
    keys = [_normalise_key(k, info) for k in group_by]
    groups = [("", info)] if not keys else [
        (", ".join(f"{k.removeprefix('cfg.')}={_short(v, 30)}" for k, v in zip(keys, vals)), g)
        for vals, g in info.groupby([info[k].astype(str) for k in keys], sort=True)]
    out = []
    for label, g in groups:
        diff = differing(g, compared_columns(g))
        if diff:
            detail = "; ".join(
                f"{c.removeprefix('cfg.')}: " + ", ".join(
                    f"{_short(v)} ({', '.join(sorted(rs)[:3])}{', ...' if len(rs) > 3 else ''})"
                    for v, rs in g.groupby(g[c].astype(str))["run"]) for c in diff[:3])
            where = f" within {label}" if label else ""
            keys = ",".join(c.removeprefix("cfg.") for c in diff)
            raise AnalysisError(
                f"runs under one table differ in task/eval config{where}: {detail}. Refusing to mix "
                f"them; pass --group-by {keys} for one output per value "
                f"(make figures ARGS='--group-by {keys}'), or move the runs apart")
        out.append((label, runs[runs["run"].isin(g["run"])]))
    return out


def slug(label: str) -> str:
    """A file-name suffix for a group label ('' for the only group)."""
    if not label:
        return ""
    text = "".join(ch if ch.isalnum() or ch in "._=" else "-" for ch in label)[:40].strip("-")
    return f"-{text}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


# ---- command-line plumbing shared by the analysis scripts ---------------------------------------
def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--results", default=DEFAULT_RESULTS, help="results root holding run folders")
    ap.add_argument("--group-by", default="", help="comma-separated config keys (e.g. task.val_size): "
                    "one output per value when runs mix task/eval configs")
    ap.add_argument("--refresh", action="store_true", help="ignore the parquet cache")


def group_keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def cli(main: Callable[[list[str]], None]) -> None:
    """Run main(argv); bad input (AnalysisError) becomes one line on stderr and exit 2, no traceback."""
    try:
        main(sys.argv[1:])
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    a = ap.parse_args(argv)
    col = collect(a.results, refresh=a.refresh)
    info = col.info
    print(f"{a.results}: {describe(info)} ({'cache' if col.from_cache else 'read from run folders'})")
    for line in unfinished_lines(info):
        print(line)
    print(f"runs table {col.runs.shape}, metrics table {col.metrics.shape}; "
          f"cache: {Path(a.results) / CACHE_FILES['runs']}, {Path(a.results) / CACHE_FILES['metrics']}")


if __name__ == "__main__":
    cli(main)
