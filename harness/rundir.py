"""The run directory contract: atomic writes, status, metrics rows, eval files.

python -c "from harness.rundir import RunDir; help(RunDir)"

<results>/<run name>/
  config.yaml          fully resolved config
  status.json          {"state": running|done|failed, "reason", "updated", ...}
  metrics.jsonl        one row per optimiser step (and probe rows), keys in schema.py
  eval.json            Average@k, SE, pass@k per suite
  eval_samples.jsonl   every sample: suite, problem_id, sample, answer, correct
  checkpoints/         what resume needs
Writes others read go to a temp file then rename; jsonl rows are flushed per step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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


def write_eval(folder: Path, summary: dict, samples: list[dict]) -> None:
    write_jsonl(folder / "eval_samples.jsonl", samples)
    write_json(folder / "eval.json", summary)  # last: its presence means both are complete


class RunDir:
    """One run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"

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

    def truncate_metrics_after(self, step: int) -> None:
        """Keep rows with step <= `step` (resume: exactly-once rows across restarts)."""
        rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= step]
        write_jsonl(self.metrics_path, rows)
