"""make tune's results: a trial's objective from its run folders, the trials table, the best file.

python -m pytest -q tests/test_tune.py -k "read or table or best"    # the pure parts

Objective: the validation Average@k (val.json, written by runs with eval.validation=true,
harness/evaluation/suites.py evaluate_validation), the mean over the trial's seeds; never the
test suites. The best file `<results>/tune/<study>.best.yaml` is what
`ablation=fixed_tuned` reads (harness/config/hydra_store.py's `harness.tuned_exposure`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.config.schema import ConfigError
from harness.runs.rundir import atomic_write, read_json
from harness.runs.runinfo import read_run
from harness.tasks.datasets import VAL_SUITE

TUNE_DIR = "tune"


@dataclass
class TrialResult:
    value: float | None  # mean validation Average@k over seeds; None when a run is not done
    values: list[float | None]  # per seed
    reason: str = ""  # why value is None


def study_paths(results: str | Path, study: str) -> dict[str, Path]:
    root = Path(results) / TUNE_DIR
    return {k: root / f"{study}{ext}" for k, ext in
            (("db", ".db"), ("md", ".md"), ("csv", ".csv"), ("best", ".best.yaml"), ("lock", ".lock"))}


def val_average(folder: Path) -> float | None:
    """The validation Average@k of a done run folder; None when it is not done or has no val.json."""
    path = folder / "val.json"
    if read_run(folder).state != "done" or not path.is_file():
        return None
    return float(read_json(path)["suites"][VAL_SUITE]["average"])


def read_trial(results: str | Path, names: list[str]) -> TrialResult:
    """A trial's objective from its run folders (one per seed)."""
    values = [val_average(Path(results) / n) for n in names]
    if all(v is not None for v in values):
        return TrialResult(sum(values) / len(values), values)  # type: ignore[arg-type]
    bad = [n for n, v in zip(names, values) if v is None]
    info = read_run(Path(results) / bad[0])
    why = info.reason or ("done without val.json" if info.state == "done" else info.state)
    return TrialResult(None, values, f"{bad[0]}: {why}")


def is_read(results: str | Path, names: list[str]) -> bool:
    """Whether every run of a trial is done with its val.json: read, never launched again."""
    return read_trial(results, names).value is not None


def table_rows(trials: list[dict], best_number: int | None) -> list[dict]:
    """Display rows from [{number, state, params, value, runs, reason}] (trial order)."""
    rows = []
    for t in sorted(trials, key=lambda t: t["number"]):
        row = {"trial": t["number"], "best": "*" if t["number"] == best_number else "",
               "state": t["state"], "r": t["params"].get("exposure")}
        if "train.lr" in t["params"]:
            row["lr"] = t["params"]["train.lr"]
        value = t.get("value")
        row["val_average"] = None if value is None or math.isnan(value) else round(value, 4)
        row["runs"] = " ".join(t.get("runs", []))
        row["reason"] = t.get("reason", "")
        rows.append(row)
    return rows


def as_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no trials)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return out.getvalue()


def write_outputs(results: str | Path, study: str, rows: list[dict], best: dict | None) -> None:
    """<study>.md, <study>.csv and (once a trial completed) <study>.best.yaml under <results>/tune/."""
    paths = study_paths(results, study)
    title = f"# make tune: study {study}\n\nobjective: validation Average@k (mean over seeds), maximised\n\n"
    best_line = (f"best: trial {best['trial']}, r = {best['exposure']}"
                 + (f", lr = {best['lr']}" if best.get("lr") is not None else "")
                 + f", validation Average@k = {best['value']:.4f}\n\n") if best else ""
    atomic_write(paths["md"], title + best_line + as_markdown(rows))
    atomic_write(paths["csv"], as_csv(rows))
    if best:
        atomic_write(paths["best"], yaml.safe_dump(best, sort_keys=False))


def tuned_exposure(results: str, study: str) -> float:
    """The best r of a study (ablation=fixed_tuned); ConfigError naming the command when none."""
    path = study_paths(results, study)["best"]
    if not path.is_file():
        profile = study.removeprefix("fixed_")
        raise ConfigError(f"ablation=fixed_tuned: no tuned exposure at {path}; run "
                          f"`make tune RESULTS={results} ARGS=profile={profile}` first "
                          f"(or set exposure=<r>)")
    return float(yaml.safe_load(path.read_text())["exposure"])
