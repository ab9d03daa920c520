"""The training problems of a run: the task's stream, the competence gap, the reference control.

python -c "from harness.config.settings import compose; from harness.tasks.datasets import TaskData; \
from harness.tasks.training import training_problems; c = compose(['gap.kind=leap', 'gap.level=1']); \
print(training_problems(c, TaskData(c.task), 2))"

Only the run's training problems pass through here (harness/run.py train_rows): the base model's
SFT rows, the evaluation suites and the validation set never see a gap or a control.
"""

from __future__ import annotations

from harness.config.schema import RunConfig
from harness.tasks.datasets import TaskData
from harness.tasks.gap import gapped, horizon_ops
from harness.tasks.problem import Problem
from harness.tasks.references import apply_reference
from harness.tasks.synthetic import take


def training_problems(cfg: RunConfig, data: TaskData, n: int) -> list[Problem]:
    """n training problems (repeats possible), with cfg.gap and cfg.reference applied."""
    stream = data.train_stream(cfg.seed, horizon_ops(cfg.gap, cfg.task.train_ops))
    problems = [gapped(p, cfg.gap, cfg.task.modulus) for p in take(stream, n)]
    return apply_reference(cfg.reference, problems, cfg.task, cfg.seed)
