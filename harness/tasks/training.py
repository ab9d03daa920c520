"""The training problems of a run: the task's stream, the competence gap, the reference control.

python -c "from harness.config.settings import compose; from harness.tasks.datasets import TaskData; \
from harness.tasks.training import training_problems; c = compose(['gap.kind=leap', 'gap.level=1']); \
print(training_problems(c, TaskData(c.task), 2))"

Only the run's training problems pass through here (harness/run.py train_rows): the base model's
SFT rows, the evaluation suites and the validation set never see a gap or a control.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from harness.config.schema import RunConfig
from harness.tasks.datasets import TaskData
from harness.tasks.gap import gapped, horizon_ops
from harness.tasks.noisy import noisy
from harness.tasks.problem import Problem
from harness.tasks.references import apply_reference
from harness.tasks.synthetic import take


def training_problems(cfg: RunConfig, data: TaskData, n: int) -> list[Problem]:
    """n training problems (repeats possible), with cfg.gap and cfg.reference applied."""
    problems = [gapped(p, cfg.gap, cfg.task.modulus) for p in take(problem_stream(cfg, data), n)]
    problems = noisy(problems, cfg.gap, cfg.task, cfg.seed)
    return apply_reference(cfg.reference, problems, cfg.task, cfg.seed)


def problem_stream(cfg: RunConfig, data: TaskData) -> Iterator[Problem]:
    """The task's training stream; under horizon with gap.share < 1 each problem is drawn from
    the longer chains with probability share, else from the base model's range. At share 1 this
    is the longer stream alone, the same problems as before gap.share existed."""
    longer = data.train_stream(cfg.seed, horizon_ops(cfg.gap, cfg.task.train_ops))
    if cfg.gap.share >= 1.0 or horizon_ops(cfg.gap, cfg.task.train_ops) is None:
        return longer
    return _mixed(longer, data.train_stream(cfg.seed + 104729, None), cfg.gap.share, cfg.seed)


def _mixed(longer: Iterator[Problem], base: Iterator[Problem], share: float, seed: int) -> Iterator[Problem]:
    # its own generator: the choice of stream never shifts either stream's own draws
    pick = random.Random(f"mix|{seed}")
    while True:
        yield next(longer) if pick.random() < share else next(base)
