"""The run directory contract: atomic writes, status, metrics rows, eval files.

python -c "from harness.runs.rundir import RunDir; help(RunDir)"

<results>/<run name>/
  config.yaml          fully resolved config
  status.json          {"state": running|done|failed, "reason", "updated", ...}
  metrics.jsonl        one row per optimiser step (and probe rows), keys in schema.py
  eval.json            Average@k, SE, pass@k per suite
  eval_samples.jsonl   every sample: suite, problem_id, sample, answer, correct
  val.json             eval.validation only: Average@k on the validation problems (+ val_samples.jsonl)
  checkpoints/         what resume needs
Writes others read go to a temp file then rename; jsonl rows are flushed per step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config.schema import RunConfig

# Keys that do not change what a run computes: where it is written, how it is launched,
# how it is named, where TRL's logs go.
NEUTRAL_KEYS = ("force", "results", "launcher", "name", "tag", "train.report_to")
# The `base` run only evaluates the base model: training settings do not change it.
BASE_RUN_KEYS = ("task", "model", "base", "eval", "exposure_unit", "profile")


# What a run writes before it is done; a relaunch without a checkpoint removes them.
PARTIAL_FILES = ("metrics.jsonl", "eval.json", "eval_samples.jsonl", "val.json", "val_samples.jsonl",
                 "eval_progress.jsonl", "val_progress.jsonl")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a jsonl file; a truncated last line (a writer mid-row) is skipped."""
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    lines = p.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{p}:{i + 1} is not valid JSON") from None
    return rows


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def run_folder(cfg: RunConfig) -> Path:
    """`<results>/<run name>`: the one place a run's folder path is built
    (harness.runs.identity.RunIdentity.folder)."""
    return Path(cfg.results) / cfg.run_name


def write_eval(folder: Path, summary: dict, samples: list[dict], stem: str = "eval") -> None:
    """<stem>.json and <stem>_samples.jsonl (stem val: the validation problems, eval.validation)."""
    write_jsonl(folder / f"{stem}_samples.jsonl", samples)
    write_json(folder / f"{stem}.json", summary)  # last: its presence means both are complete


class RunDir:
    """One run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        # Called with every row append_metrics writes (harness/trainers/trackers.py sends them on).
        self.sinks: list[Callable[[dict], None]] = []

    def add_sink(self, sink: Callable[[dict], None]) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: Callable[[dict], None]) -> None:
        self.sinks.remove(sink)

    def status(self) -> dict | None:
        p = self.path / "status.json"
        return read_json(p) if p.exists() else None

    def is_done(self) -> bool:
        s = self.status()
        return bool(s and s.get("state") == "done" and (self.path / "eval.json").exists())

    def set_status(self, state: str, reason: str = "", **extra: Any) -> None:
        prev = self.status() or {}
        row = {**prev, **extra, "state": state, "reason": reason,
               "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(self.path / "status.json", row)

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
            f.flush()
        for sink in self.sinks:  # after the row is on disk: a failing tracker loses no row
            sink(row)

    def start_afresh(self) -> None:
        """Drop what an attempt without a checkpoint left (its rows would be written again)."""
        import shutil

        for name in PARTIAL_FILES:
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    def truncate_metrics_after(self, step: int) -> None:
        """Keep rows with step <= `step` (resume: exactly-once rows across restarts)."""
        rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= step]
        write_jsonl(self.metrics_path, rows)


def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": value} for nested dicts (lists stay values)."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def describe_diff(have: dict, want: dict, keep=lambda key: True, limit: int = 3) -> str:
    """`key: have -> want, ...` for the flat keys that differ (and pass `keep`); '' if none."""
    a, b = flat(have), flat(want)
    keys = sorted(k for k in set(a) | set(b) if keep(k) and a.get(k, "<unset>") != b.get(k, "<unset>"))
    shown = ", ".join(f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def matters(key: str, method: str) -> bool:
    """Whether a flat config key changes what a run of this method computes."""
    if any(key == n or key.startswith(n + ".") for n in NEUTRAL_KEYS):
        return False
    return method != "base" or key.split(".")[0] in BASE_RUN_KEYS


def refuse_config_conflict(cfg: RunConfig) -> None:
    """Raise ConfigError when cfg's run folder holds a run of a different config (nothing
    to refuse when the folder is absent, its config is equal, or force is on).

    A relaunch skips (done) or resumes (checkpoints) the run in the folder, so that run
    must be the one asked for: e.g. `teacher.mode=live` must not reuse a base-teacher run.
    """
    from omegaconf import OmegaConf

    from harness.config.schema import ConfigError, as_dict, to_run_config

    stored_path = run_folder(cfg) / "config.yaml"
    if cfg.force or not stored_path.is_file():
        return
    try:
        stored = as_dict(to_run_config(OmegaConf.load(stored_path)))
    except Exception as err:  # unreadable: refuse rather than guess
        raise ConfigError(f"{stored_path} is not a readable run config "
                          f"({str(err).splitlines()[0]})") from None
    diff = describe_diff(stored, as_dict(cfg), keep=lambda k: matters(k, cfg.method.name))
    if not diff:
        return
    raise ConfigError(f"{stored_path.parent} holds a run with a different config ({diff}); "
                      f"set tag=<label> or results=<dir> for a new run, or force=true to replace it")
