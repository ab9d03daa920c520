"""The `noisy` gap: a share of the training references wrong from a drawn step on.

python -c "from harness.config.settings import compose; from harness.tasks.datasets import TaskData; \
from harness.tasks.training import training_problems; c = compose(['gap.kind=noisy', 'gap.level=3']); \
print(training_problems(c, TaskData(c.task), 4))"

Its own module: it builds on harness/tasks/references.py (the corrupted chain), which imports the
prompt templates, which import the config; harness/tasks/gap.py stays importable from the config.
"""

from __future__ import annotations

from harness.config.gap import GapConfig
from harness.config.task import TaskConfig
from harness.tasks.gap import noisy_share
from harness.tasks.problem import Problem
from harness.tasks.references import _rng, _with_reference, corrupt_synthetic


def noisy(problems: list[Problem], gap: GapConfig, task: TaskConfig, seed: int) -> list[Problem]:
    """problems with noisy_share(gap) of their references corrupted; which ones depends on the
    problem id and seed only (a repeated problem is corrupted alike every time it recurs)."""
    share = noisy_share(gap)
    if share == 0.0:
        return problems
    return [_with_reference(p, corrupt_synthetic(p, task, _rng("noisy", seed, p.id)), task)
            if _rng("noisy-pick", seed, p.id).random() < share else p for p in problems]
