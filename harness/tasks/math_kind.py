"""task=math: real math datasets (task.train_data, task.eval_data), as a registered task kind.

python -m harness.run task=math model.path=<model> ...   # sweeps/task/math.yaml

Suites and training rows come from hub ids or local files (harness/tasks/math_data.py);
validation is the last task.val_size training rows, and training skips any problem text
an eval suite holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.config.task import TaskConfig
from harness.registry import Component, register
from harness.tasks import math_data
from harness.tasks.problem import Problem


@dataclass
class MathData:
    suites: dict[str, list[Problem]]
    validation: list[Problem]
    train_rows: list[Problem]

    def train_stream(self, seed: int, ops_range: tuple[int, int] | None,
                     held_out: set[str]) -> Iterator[Problem]:
        return math_data.train_stream(self.train_rows, seed)  # ops_range: the synthetic SFT's only


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


def load(task: TaskConfig) -> MathData:
    suites = {src.name: math_data.load_problems(src) for src in task.eval_data}
    validation, rows = split_validation(math_data.load_problems(task.train_data), suites, task)
    return MathData(suites, validation, rows)


register(Component(kind="task", name="math", label="Math", rank=1, build=load))
