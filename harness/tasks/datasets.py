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
from harness.tasks import math_data, synthetic
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


def split_validation(train: list[Problem], suites: dict[str, list[Problem]], task: TaskConfig
                     ) -> tuple[list[Problem], list[Problem]]:
    """(validation, training rows) of the math task: eval problems removed, then the last
    task.val_size rows held out. Too few rows: ValueError (harness/front/preflight.py refuses
    it before launch)."""
    suite_texts = {p.problem for ps in suites.values() for p in ps}
    rows = [p for p in train if p.problem not in suite_texts]
    if len(rows) <= task.val_size:
        fix = f"set task.val_size below {len(rows)} or give more rows" if len(rows) > 1 else "give more rows"
        raise ValueError(f"task.val_size={task.val_size} is invalid: task data {task.train_data.name} "
                         f"has {len(rows)} training rows (after removing eval problems), which leave "
                         f"none beside {task.val_size} validation rows; {fix}")
    return rows[-task.val_size:], rows[:-task.val_size]


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
        else:  # math: suites by name from task.eval_data; validation held out of the training rows
            self.suites = {src.name: math_data.load_problems(src) for src in task.eval_data}
            self.validation, self.train_rows = split_validation(
                math_data.load_problems(task.train_data), self.suites, task)
        self.held_out = {p.problem for ps in self.suites.values() for p in ps} | {
            p.problem for p in self.validation}

    def train_stream(self, seed: int, ops_range: tuple[int, int] | None = None) -> Iterator[Problem]:
        """Training problems (task.train_ops operations, or ops_range), held-out ones skipped."""
        if self.task.kind == "math":  # ops_range shapes the synthetic base SFT only
            return math_data.train_stream(self.train_rows, seed)
        ops = tuple(ops_range or self.task.train_ops)
        return synthetic.train_stream(ops, self.task.modulus, seed, exclude=self.held_out)

    def suite(self, name: str) -> list[Problem]:
        if name not in self.suites:
            raise ValueError(f"unknown suite {name!r}; this task has {sorted(self.suites)}")
        return self.suites[name]
