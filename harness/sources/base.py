"""The interface of an exposure source: what the trainer asks it and tells it.

python -m pytest -q tests/test_controller.py   # sources are exercised by the run tests

A source is asked for one exposure per problem of a batch (`exposures`; scalar sources
give `current` and it is repeated) when the batch's teacher contexts are built, and told
at each optimiser step's end (`step_end`), where window-based sources may move on.
It returns any rows to log (controller rows).
Its state travels in the run's checkpoints. This interface has a module of its own
so that harness/sources/pick.py (which picks a source) and harness/sources/controller.py (one
source) import it without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class ExposureSource:
    # True: the exposures of one batch may differ across its problems (exposures() is its
    # own); the trainer then also logs one `kind: exposure` row per problem and step.
    per_problem = False

    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.step = 0

    def current(self) -> float:
        """The one exposure in force (scalar sources)."""
        raise NotImplementedError

    def exposures(self, problem_ids: Sequence[str]) -> list[float]:
        """One exposure per problem of the batch, in its order; a scalar source repeats current()."""
        r = self.current()
        return [r] * len(problem_ids)

    # needs_probe: the source reads the mismatch probe's rows (observe_probe), so the RL
    # trainer probes too; wants_outcomes: it reads each rollout's grade (record).
    needs_probe = False
    wants_outcomes = False

    def attach(self, problems: dict[str, Any]) -> None:
        """The run's training problems by id (a per-problem source keys its record by them)."""

    def observe_probe(self, step: int, rows: list[dict[str, Any]]) -> None:
        """This step's probe rows (probe_exposure, mismatch_kl_st, ...), before step_end."""

    def record(self, problem_ids: Sequence[str], correct: Sequence[bool]) -> None:
        """Each of this batch's rollouts, graded (one entry per rollout, its problem's id)."""

    def bind(self, model, tokenizer, teacher: Any = None) -> None:
        """Called once the trainer exists: sources that measure the student (or score with
        the teacher, harness/sources/paper_reward.py TeacherView) keep these."""

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        self.step = step
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]


def batch_exposure(rs_B: Sequence[float]) -> tuple[float, float]:
    """(mean, spread) of a batch's exposures; the spread is the population standard deviation.
    All equal (every scalar source): exactly that value and 0.0, so a repeated r is logged as r
    (a float sum of n copies divided by n need not give r back)."""
    if not rs_B:
        return 0.0, 0.0
    if min(rs_B) == max(rs_B):
        return rs_B[0], 0.0
    mean = math.fsum(rs_B) / len(rs_B)
    return mean, math.sqrt(math.fsum((r - mean) ** 2 for r in rs_B) / len(rs_B))
