"""Every prompt the harness writes: the student's, the teacher's at exposure r, and the completion.

python -c "from harness.prompts import PromptTemplates as T; print(T().teacher_prompt('1 + 2', '1 + 2 = 3'))"

Base SFT rows (harness/base.py), evaluation, the trainer's teacher contexts, the
mismatch probe, its benchmark and the controller's progress measures all build their
text here, so a template change reaches every one of them alike.

The prompt order (reference before or after the problem) lives in the template
strings of the task config, not here: the tiny model learned better with the
reference first, real chat models take it after the problem (OPSD's template).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.config import RunConfig
from harness.exposure import UNITS, cut_steps, cut_tokens
from harness.tasks.problem import Problem


@dataclass(frozen=True)
class PromptTemplates:
    """`student` sees {problem}; `teacher` sees {problem} and {reference} (the cut prefix)."""

    student: str = "{problem} ?"
    teacher: str = "ref : {reference} | {problem} ?"

    def student_prompt(self, problem: str) -> str:
        return self.student.format(problem=problem)

    def teacher_prompt(self, problem: str, reference_prefix: str) -> str:
        """The one place of the r = 0 invariant: an empty prefix is no privileged context
        at all, so the teacher sees exactly the student's context (mismatch exactly 0)."""
        if not reference_prefix.strip():
            return self.student_prompt(problem)
        return self.teacher.format(problem=problem, reference=reference_prefix)


def templates_of(cfg: RunConfig) -> PromptTemplates:
    return PromptTemplates(student=cfg.task.student_template, teacher=cfg.task.teacher_template)


def completion_text(solution: str, eos_token: str = "") -> str:
    """What the model writes after a prompt: a space, the solution, the end token if given."""
    return " " + solution + eos_token


class ReferenceCutter:
    """Cuts reference solutions with the model's own tokenizer (token unit) or at steps."""

    def __init__(self, tokenizer, unit: str = "tokens") -> None:
        if unit not in UNITS:
            raise ValueError(f"exposure_unit={unit!r} is invalid: one of {UNITS}")
        self.tokenizer = tokenizer
        self.unit = unit

    def prefix(self, solution: str, steps: Sequence[str], r: float) -> str:
        if self.unit == "steps":
            if not steps:
                raise ValueError("exposure_unit=steps needs problems with reasoning steps")
            return " ".join(cut_steps(steps, r))
        ids = self.tokenizer(solution, add_special_tokens=False)["input_ids"]
        return self.tokenizer.decode(cut_tokens(ids, r))


class Prompts:
    """cfg's templates and exposure unit, bound to the model's tokenizer."""

    def __init__(self, cfg: RunConfig, tokenizer) -> None:
        self.templates = templates_of(cfg)
        self.cutter = ReferenceCutter(tokenizer, cfg.exposure_unit)
        self.eos_token = tokenizer.eos_token

    def student(self, problem: Problem) -> str:
        return self.templates.student_prompt(problem.problem)

    def reference(self, problem: Problem, r: float) -> str:
        """The first r of problem's reference solution (in cfg's exposure unit)."""
        return self.cutter.prefix(problem.solution, problem.steps, r)

    def teacher(self, problem: Problem, r: float) -> str:
        return self.templates.teacher_prompt(problem.problem, self.reference(problem, r))

    def completion(self, solution: str) -> str:
        """The SFT / teacher-forcing target: solution and end token."""
        return completion_text(solution, self.eos_token)


def prompts_for(problems: list[Problem], cfg: RunConfig, tokenizer,
                exposure: float | None) -> list[str]:
    """Student prompts, or teacher prompts at `exposure` (None: no reference)."""
    prompts = Prompts(cfg, tokenizer)
    if exposure is None:
        return [prompts.student(p) for p in problems]
    return [prompts.teacher(p, exposure) for p in problems]
