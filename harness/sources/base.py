"""The interface of an exposure source: what the trainer asks it and tells it.

python -m pytest -q tests/test_controller.py   # sources are exercised by the run tests

A source is asked for the exposure in force (`current`) when a batch's teacher
contexts are built, and told at each optimiser step's end (`step_end`), where
window-based sources may move on. It returns any rows to log (controller rows).
Its state travels in the run's checkpoints. This interface has a module of its own
so that harness/sources/pick.py (which picks a source) and harness/sources/controller.py (one
source) import it without importing each other.
"""

from __future__ import annotations

from typing import Any


class ExposureSource:
    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.step = 0

    def current(self) -> float:
        raise NotImplementedError

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
