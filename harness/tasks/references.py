"""Reference-content controls: what the teacher is shown in place of a problem's own reference.

(being written)
"""

from __future__ import annotations

from harness.config.task import TaskConfig
from harness.tasks.problem import Problem


def apply_reference(kind: str, problems: list[Problem], task: TaskConfig, seed: int) -> list[Problem]:
    """problems with the reference `kind` (harness/config/gap.py REFERENCES) in place of their own."""
    if kind == "own":
        return problems
    raise NotImplementedError(f"reference={kind} is not built yet")
