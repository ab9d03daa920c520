"""Teacher context at exposure r: the first ceil(r * L) tokens (or steps) of the reference.

python -c "from harness.exposure import *; print(cut_tokens(list(range(10)), 0.25))"

The prompt order (reference before or after the problem) lives in the template
strings of the task config, not here: the tiny model learned better with the
reference first, real chat models take it after the problem (OPSD's template).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

UNITS = ("tokens", "steps")


def check_exposure(r: float) -> float:
    if not isinstance(r, int | float) or math.isnan(r) or not 0.0 <= r <= 1.0:
        raise ValueError(f"exposure {r!r} is outside [0, 1]")
    return float(r)


def prefix_length(r: float, length: int) -> int:
    """ceil(r * length), robust to float noise (0.1 * 30 must give 3, not 4)."""
    check_exposure(r)
    return min(length, math.ceil(round(r * length, 9)))


def cut_tokens(ref_ids: Sequence[int], r: float) -> list[int]:
    return list(ref_ids[: prefix_length(r, len(ref_ids))])


def cut_steps(steps: Sequence[str], r: float) -> list[str]:
    return list(steps[: prefix_length(r, len(steps))])


@dataclass(frozen=True)
class PromptTemplates:
    """`student` sees {problem}; `teacher` sees {problem} and {reference} (the cut prefix)."""

    student: str = "{problem} ?"
    teacher: str = "ref : {reference} | {problem} ?"

    def student_prompt(self, problem: str) -> str:
        return self.student.format(problem=problem)

    def teacher_prompt(self, problem: str, reference_prefix: str) -> str:
        # An empty prefix is no privileged context at all: the teacher then sees exactly
        # the student's context, which makes the mismatch at r = 0 exactly zero.
        if not reference_prefix.strip():
            return self.student_prompt(problem)
        return self.teacher.format(problem=problem, reference=reference_prefix)


class ReferenceCutter:
    """Cuts reference solutions with the model's own tokenizer (token unit) or at steps."""

    def __init__(self, tokenizer, unit: str = "tokens") -> None:
        if unit not in UNITS:
            raise ValueError(f"exposure.unit={unit!r} is not one of {UNITS}")
        self.tokenizer = tokenizer
        self.unit = unit

    def prefix(self, solution: str, steps: Sequence[str], r: float) -> str:
        if self.unit == "steps":
            if not steps:
                raise ValueError("exposure.unit=steps needs problems with reasoning steps")
            return " ".join(cut_steps(steps, r))
        ids = self.tokenizer(solution, add_special_tokens=False)["input_ids"]
        return self.tokenizer.decode(cut_tokens(ids, r))
