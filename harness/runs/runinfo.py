"""Reading one run folder into a record: the one reader behind the sweep's summary, its
progress bar and analysis/.

python -c "from harness.runs.runinfo import read_run; print(read_run('results/runs/opsd-r1-s0'))"

What a run is, said once here (harness/runs/rundir.py says what a run folder holds):

state     status.json's running|done|failed; `pending` when only config.yaml is there (the
          job waits for a slot, harness/runs/slots.py); `missing` when neither file is there.
method    the run name without its seed (`base`, `opsd-r0.5`, `atesd-ctx`), built by the one
          naming rule, harness.config.schema.run_name: the key tables and legends group seeds by.
label     what readers see for a method in tables and legends (`OPSD (r = 1)`, `ATESD`).
final mismatch
          the mean of `mismatch_kl_st` (or `mismatch_kl_ts`) over the last quarter of the
          run's train rows, at least one row (FINAL_FRACTION). Why a fraction of the run and
          not a fixed count of steps: one step's KL (16 rollouts) is noisy, and a fixed count
          means something different at 5 smoke steps (all of them), 150 default steps (the
          last 7%) or thousands; a quarter of the run averages the same share of training in
          every profile. The mismatch figure has used it since it was drawn; the sweep's
          closing table used the last 10 steps until this reader (its KL column changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from harness.config.gap import effective_tag
from harness.config.schema import method_of, run_name
from harness.registry import find
from harness.runs.naming import method_key, method_label
from harness.runs.rundir import read_json, read_jsonl

FINAL_FRACTION = 0.25  # "final" mismatch: mean over the last quarter of a run's train rows
ST, TS = "mismatch_kl_st", "mismatch_kl_ts"  # KL(p_S || p_T) (the logged mismatch), KL(p_T || p_S)


def late_rows(rows: list[dict], fraction: float = FINAL_FRACTION) -> list[dict]:
    """The last `fraction` of rows (rounded up, at least one; none of none)."""
    return rows[-max(1, math.ceil(fraction * len(rows))):] if rows else []


def final_value(train_rows: list[dict], key: str = ST) -> float | None:
    """Mean of `key` over the last FINAL_FRACTION of the train rows; None if it was never logged."""
    values = [r[key] for r in late_rows(train_rows) if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _read_config(folder: Path) -> tuple[dict, str]:
    """(config.yaml as a dict, problem): a missing or unreadable config is {} and says why."""
    path = folder / "config.yaml"
    if not path.exists():
        return {}, "no config.yaml"
    try:
        return yaml.safe_load(path.read_text()) or {}, ""
    except yaml.YAMLError as err:
        return {}, f"config.yaml unreadable: {str(err).splitlines()[0]}"


def _read_status(folder: Path) -> tuple[dict, str]:
    path = folder / "status.json"
    if not path.exists():
        return {}, ""
    try:
        return read_json(path), ""
    except (OSError, ValueError) as err:  # status.json is written atomically; this is a damaged file
        return {}, f"status.json unreadable: {err}"


@dataclass
class RunInfo:
    """One run folder as read now. config.yaml, metrics and eval.json are read on first use:
    the progress bar polls status and step counts of every run every few seconds and needs
    neither the config (a YAML parse, ~5 ms a run) nor the eval."""

    folder: Path
    status: dict
    status_problem: str = ""  # status.json unreadable ('' when fine)
    metrics_problem: str = ""  # a broken metrics.jsonl row, once metrics were read

    @cached_property
    def _config_read(self) -> tuple[dict, str]:
        return _read_config(self.folder)

    @property
    def config(self) -> dict:
        return self._config_read[0]

    @property
    def problem(self) -> str:
        """Why part of the folder could not be read ('' when all was fine)."""
        return self.metrics_problem or self._config_read[1] or self.status_problem

    @classmethod
    def of_config(cls, folder: Path, config: dict) -> RunInfo:
        """The record a folder holding this config (and no status yet) reads as: what
        harness.runs.identity.RunIdentity.of derives a new run's identity from."""
        info = cls(Path(folder), {})
        info.__dict__["_config_read"] = (config, "")  # the cached_property, filled
        return info

    @property
    def identity(self) -> dict:
        """status.json's "identity" (harness/runs/identity.py RunIdentity.to_json) as the run
        wrote it; {} in a folder written before runs stored it (then derived from config.yaml)."""
        found = self.status.get("identity")
        return found if isinstance(found, dict) else {}

    # ---- identity ----
    @property
    def run(self) -> str:
        return self.folder.name

    @property
    def method_name(self) -> str | None:
        """config.yaml's method name; a trained run's is made from the two axes
        (harness.config.schema.method_of), so a folder written before the name was stamped reads right."""
        if "method_name" in self.identity:
            return self.identity["method_name"]
        method = self.config.get("method") or {}
        name = method.get("name")
        if name in (None, "base") or not method.get("exposure_source"):
            return name
        return method_of(method["exposure_source"], method.get("loss", "opsd"))

    @property
    def exposure_source(self) -> str | None:
        return (self.config.get("method") or {}).get("exposure_source")

    @property
    def tag(self) -> str | None:
        """The tag the run is named with: its own, its gap's label, its reference control."""
        return effective_tag(self.config.get("tag"), self.config.get("gap"), self.config.get("reference"),
                             (self.config.get("task") or {}).get("empty_reference"))

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")

    @property
    def is_fixed(self) -> bool:
        """A trained run at one exposure throughout (the sweep's runs); base is not one."""
        source = find("source", self.exposure_source)  # unregistered (an old toy's): by its name
        return (source.fixed_exposure if source else self.exposure_source == "fixed") and self.is_trained

    @property
    def is_trained(self) -> bool:
        return self.method_name not in (None, "base")

    @property
    def exposure(self) -> float:
        """The fixed exposure r; NaN for base and adaptive methods (their r changes per step)."""
        return float(self.config.get("exposure", math.nan)) if self.is_fixed else math.nan

    @property
    def name(self) -> str | None:
        """The folder name the config asks for (harness.config.schema.run_name); None without a config."""
        if "name" in self.identity:
            return self.identity["name"]
        if not self.config:
            return None
        return run_name(self.method_name or "unknown", self.exposure_source or "", self.exposure,
                        self.seed if self.seed is not None else 0, self.tag, self.config.get("name"))

    @property
    def method(self) -> str:
        if "method" in self.identity:
            return self.identity["method"]
        if not self.config:
            return "unknown"
        return method_key(self.method_name or "unknown", self.exposure_source or "", self.exposure, self.tag)

    @property
    def label(self) -> str:
        if "label" in self.identity:
            return self.identity["label"]
        return method_label(self.method_name, self.tag, self.is_fixed, self.exposure) if self.config \
            else self.run

    # ---- state ----
    @property
    def state(self) -> str:
        if self.status.get("state"):
            return str(self.status["state"])
        if (self.folder / "config.yaml").exists():
            return "pending"
        return "missing" if not self.status else "unknown"

    @property
    def reason(self) -> str:
        return self.status.get("reason", "") or ""

    @property
    def starts(self) -> int | None:
        return self.status.get("starts")

    @property
    def planned_steps(self) -> int | None:
        return 0 if self.method_name == "base" else (self.config.get("train") or {}).get("steps")

    # ---- metrics.jsonl and eval.json ----
    @cached_property
    def metrics(self) -> list[dict]:
        """Every metrics.jsonl row; [] (and `problem` says why) if a row mid-file is broken."""
        try:
            return read_jsonl(self.folder / "metrics.jsonl")
        except ValueError as err:  # a broken row in the middle: the run is kept and marked
            self.metrics_problem = str(err)
            return []

    @property
    def train_rows(self) -> list[dict]:
        return [r for r in self.metrics if r.get("kind") == "train"]

    @property
    def probe_rows(self) -> list[dict]:
        return [r for r in self.metrics if r.get("kind") == "probe"]

    @property
    def train_steps(self) -> int:
        """How many train rows (optimiser steps logged)."""
        return len(self.train_rows)

    @property
    def last_step(self) -> int:
        """The last optimiser step logged (0 before the first)."""
        return max((r["step"] for r in self.train_rows), default=0)

    def final_mismatch(self, key: str = ST) -> float | None:
        """See the module docstring: mean over the last FINAL_FRACTION of the train rows."""
        return final_value(self.train_rows, key)

    @cached_property
    def eval(self) -> dict:
        """eval.json ({} before the run's evaluation is complete)."""
        path = self.folder / "eval.json"
        return read_json(path) if path.exists() else {}

    @property
    def suite_averages(self) -> dict[str, float]:
        """Average@k per eval suite, in config order ({} without eval.json)."""
        return {k: v["average"] for k, v in (self.eval.get("suites") or {}).items()}


def read_run(folder: Path | str) -> RunInfo:
    """The record of one run folder; problems are recorded (`problem`), never raised."""
    folder = Path(folder)
    status, status_problem = _read_status(folder)
    return RunInfo(folder, status, status_problem)


def read_runs(root: Path, names: list[str] | None = None) -> list[RunInfo]:
    """The named runs under root (in that order, once each), else every folder with status.json."""
    root = Path(root)
    if names is None and root.is_dir():
        names = sorted(p.name for p in root.iterdir() if (p / "status.json").exists())
    return [read_run(root / n) for n in dict.fromkeys(names or [])]


def as_dict(info: RunInfo) -> dict[str, Any]:
    """The run-level fields as a flat dict (the analysis runs table starts from it)."""
    train_steps = info.train_steps  # read first: a broken metrics.jsonl sets `problem`
    return {"run": info.run, "method": info.method, "label": info.label, "method_name": info.method_name,
            "tag": info.tag, "exposure_source": info.exposure_source, "exposure": info.exposure,
            "seed": info.seed, "profile": info.config.get("profile"), "state": info.state,
            "reason": info.reason, "problem": info.problem, "updated": info.status.get("updated"),
            "host": info.status.get("host"), "pid": info.status.get("pid"), "starts": info.starts,
            "has_config": bool(info.config), "has_eval": bool(info.eval), "train_steps": train_steps,
            "last_step": info.last_step if train_steps else math.nan, "planned_steps": info.planned_steps,
            f"final_{ST}": info.final_mismatch(ST), f"final_{TS}": info.final_mismatch(TS)}
