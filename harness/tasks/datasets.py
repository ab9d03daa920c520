"""Problems for a run from the task config: eval suites, validation set, training stream.

python -m pytest -q tests/test_tasks.py    # builds TaskData from the default config

Synthetic: suites and validation are drawn first from their own seeds, and the
training stream skips every problem text they contain (disjointness is tested).
Math: problems come from local jsonl files (no hub downloads on these machines).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.config import TaskConfig
from harness.tasks import synthetic
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
    """Eval suites (name -> problems), validation problems and the training stream."""

    def __init__(self, task: TaskConfig) -> None:
        self.task = task
        if task.kind == "synthetic":
            self.suites = {s.name: synthetic.make_suite(s.name, s.num_ops, s.size, task.modulus,
                                                        task.seed) for s in task.suites}
            lo, hi = task.train_ops
            val_ops = (lo + hi) // 2
            held = {p.problem for ps in self.suites.values() for p in ps}
            val = synthetic.make_suite(VAL_SUITE, val_ops, task.val_size * 2, task.modulus,
                                       task.seed)
            self.validation = [p for p in val if p.problem not in held][: task.val_size]
        else:
            raise ValueError(f"task.kind={task.kind!r}: only the synthetic task is wired into runs yet")
        self.held_out = {p.problem for ps in self.suites.values() for p in ps} | {
            p.problem for p in self.validation}

    def train_stream(self, seed: int, ops_range: tuple[int, int] | None = None) -> Iterator[Problem]:
        """Training problems (task.train_ops operations, or ops_range), held-out ones skipped."""
        ops = tuple(ops_range or self.task.train_ops)
        return synthetic.train_stream(ops, self.task.modulus, seed, exclude=self.held_out)

    def suite(self, name: str) -> list[Problem]:
        if name not in self.suites:
            raise ValueError(f"unknown suite {name!r}; this task has {sorted(self.suites)}")
        return self.suites[name]
