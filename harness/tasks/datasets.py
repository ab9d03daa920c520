"""Problems for a run from the task config: eval suites, validation set, training stream.

python -m pytest -q tests/test_tasks.py    # builds TaskData from the default config

Synthetic: suites and validation are drawn first from their own seeds, and the
training stream skips every problem text they contain (disjointness is tested).
Math: suites and training rows come from task.eval_data / task.train_data (hub ids or
local files, harness/tasks/math_data.py); validation is the last task.val_size training
rows, and training skips any problem text an eval suite holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.config.task import TaskConfig
from harness.registry import get
from harness.tasks.problem import Problem

VAL_SUITE = "validation"


def read_jsonl_problems(path: str | Path) -> list[Problem]:
    """Problems from a jsonl file; a row lacking a field fails naming its line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{p}:{i} is not valid JSON") from None
        out.append(Problem.from_row(row, where=f"{p}:{i}"))
    return out


class TaskData:
    """Eval suites (name -> problems), validation problems and the training stream of the
    task kind's registered loader (harness/tasks/synthetic_kind.py, math_kind.py)."""

    def __init__(self, task: TaskConfig) -> None:
        self.task = task
        self.loaded = get("task", task.kind).build(task)
        self.suites, self.validation = self.loaded.suites, self.loaded.validation
        self.held_out = {p.problem for ps in self.suites.values() for p in ps} | {
            p.problem for p in self.validation}

    def train_stream(self, seed: int, ops_range: tuple[int, int] | None = None) -> Iterator[Problem]:
        """Training problems (task.train_ops operations, or ops_range), held-out ones skipped."""
        return self.loaded.train_stream(seed, ops_range, self.held_out)

    def suite(self, name: str) -> list[Problem]:
        if name not in self.suites:
            raise ValueError(f"unknown suite {name!r}; this task has {sorted(self.suites)}")
        return self.suites[name]
