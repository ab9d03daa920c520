"""task=synthetic: the embedded multi-step modular arithmetic task, as a registered task kind.

python -m harness.run task=synthetic profile=smoke

Suites and validation are drawn first from their own seeds, and the training stream skips
every problem text they contain (disjointness is tested, tests/test_tasks.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.config.task import TaskConfig
from harness.registry import Component, register
from harness.tasks import synthetic
from harness.tasks.datasets import VAL_SUITE
from harness.tasks.problem import Problem


@dataclass
class SyntheticData:
    task: TaskConfig
    suites: dict[str, list[Problem]]
    validation: list[Problem]

    def train_stream(self, seed: int, ops_range: tuple[int, int] | None,
                     held_out: set[str]) -> Iterator[Problem]:
        ops = tuple(ops_range or self.task.train_ops)
        return synthetic.train_stream(ops, self.task.modulus, seed, exclude=held_out)


def load(task: TaskConfig) -> SyntheticData:
    suites = {s.name: synthetic.make_suite(s.name, s.num_ops, s.size, task.modulus, task.seed)
              for s in task.suites}
    lo, hi = task.train_ops
    held = {p.problem for ps in suites.values() for p in ps}
    val = synthetic.make_suite(VAL_SUITE, (lo + hi) // 2, task.val_size * 2, task.modulus, task.seed)
    return SyntheticData(task, suites, [p for p in val if p.problem not in held][: task.val_size])


register(Component(kind="task", name="synthetic", label="Synthetic", rank=0, build=load))
