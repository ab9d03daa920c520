"""Every prompt the harness writes: the student's, the teacher's at exposure r, and the completion.

python -c "from harness.prompts.templates import PromptTemplates as T; \
    print(T().teacher_prompt('1 + 2', '1 + 2 = 3'))"

Base SFT rows (harness/models/base.py), evaluation, the trainer's teacher contexts, the
mismatch probe, its benchmark and the controller's progress measures all build their
text here, so a template change reaches every one of them alike.

The prompt order (reference before or after the problem) lives in the template
strings of the task config, not here: the tiny model learned better with the
reference first, real chat models take it after the problem (OPSD's template).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from harness.config.schema import RunConfig
from harness.prompts.cut import UNITS, cut_steps, cut_tokens
from harness.tasks.math_data import STEP_SEP
from harness.tasks.problem import Problem


@dataclass(frozen=True)
class PromptTemplates:
    """`student` sees {problem}; `teacher` sees {problem} and {reference} (the cut prefix)."""

    student: str = "{problem} ?"
    teacher: str = "ref : {reference} | {problem} ?"
    empty_reference: str = "student"  # task.empty_reference: what r = 0 gives the teacher

    def student_prompt(self, problem: str) -> str:
        return self.student.format(problem=problem)

    def teacher_prompt(self, problem: str, reference_prefix: str) -> str:
        if not no_reference(reference_prefix):
            return self.teacher.format(problem=problem, reference=reference_prefix)
        if self.empty_reference == "student":
            return self.student_prompt(problem)
        return self.teacher.format(problem=problem, reference="")


def no_reference(reference_text: str) -> bool:
    """The r = 0 rule, the one test of it: an empty (or blank) reference is no privileged
    context at all. By default (task.empty_reference=student) the teacher then sees exactly
    the student's context (mismatch exactly 0); under `template` it sees its own template
    with an empty reference (and its own thinking setting), so r = 0 isolates the template.
    Every prompt path asks this (teacher_prompt; Prompts.teacher and, on ids, teacher_ids:
    no reference ids and no answer suffix is the same empty text)."""
    return not reference_text.strip()


def templates_of(cfg: RunConfig) -> PromptTemplates:
    return PromptTemplates(student=cfg.task.student_template, teacher=cfg.task.teacher_template,
                           empty_reference=cfg.task.empty_reference)


def completion_text(solution: str, eos_token: str = "") -> str:
    """What the model writes after a prompt: a space, the solution, the end token if given."""
    return " " + solution + eos_token


STEP_JOIN = {"synthetic": " ", "math": STEP_SEP}  # how a task's steps join back into text
_SLOT = "\x00REFERENCE\x00"  # stands for the reference while a chat template renders a prompt


class ReferenceCutter:
    """Cuts reference solutions with the model's own tokenizer (token unit) or at steps."""

    def __init__(self, tokenizer, unit: str = "tokens", step_join: str = " ") -> None:
        if unit not in UNITS:
            raise ValueError(f"exposure_unit={unit!r} is invalid: one of {UNITS}")
        self.tokenizer = tokenizer
        self.unit = unit
        self.step_join = step_join
        # The probe cuts one solution at every exposure: tokenize it once (bounded memory).
        self.solution_ids = lru_cache(maxsize=1024)(
            lambda text: tuple(tokenizer(text, add_special_tokens=False)["input_ids"]))

    def prefix_ids(self, solution: str, steps: Sequence[str], r: float) -> tuple[list[int], bool]:
        """(token ids of the cut, whether it is the whole reference). Token unit: exactly
        the first ceil(r L) ids of the tokenized solution (never re-tokenized text)."""
        if self.unit == "steps":
            text, whole = self._step_text(steps, r)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            return ids, whole
        ids = self.solution_ids(solution)
        cut = cut_tokens(ids, r)
        return cut, len(cut) == len(ids)

    def prefix(self, solution: str, steps: Sequence[str], r: float) -> tuple[str, bool]:
        """(text of the cut, whether it is the whole reference)."""
        if self.unit == "steps":
            return self._step_text(steps, r)
        ids, whole = self.prefix_ids(solution, steps, r)
        return self.tokenizer.decode(ids), whole

    def _step_text(self, steps: Sequence[str], r: float) -> tuple[str, bool]:
        if not steps:
            raise ValueError("exposure_unit=steps needs problems with reasoning steps")
        cut = cut_steps(steps, r)
        return self.step_join.join(cut), len(cut) == len(steps)


class Prompts:
    """cfg's templates, exposure unit and chat format, bound to the model's tokenizer.

    Text prompts serve generation and evaluation; `teacher_ids` builds the trainer's
    teacher contexts from token ids, so the teacher sees exactly the cut ids and no
    truncation ever removes the problem (task.max_teacher_tokens cuts the reference)."""

    def __init__(self, cfg: RunConfig, tokenizer) -> None:
        self.templates = templates_of(cfg)
        self.task = cfg.task
        self.cutter = ReferenceCutter(tokenizer, cfg.exposure_unit, STEP_JOIN[cfg.task.kind])
        self.tokenizer = tokenizer
        self.eos_token = tokenizer.eos_token

    def chat(self, content: str, thinking: bool) -> str:
        """content as the user turn of the model's chat template (task.chat_template)."""
        if not self.task.chat_template:
            return content
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True,
            enable_thinking=thinking)

    def student(self, problem: Problem) -> str:
        return self.chat(self.templates.student_prompt(problem.problem), self.task.student_thinking)

    def evaluation(self, problem: Problem, thinking: bool | None) -> str:
        """The student's prompt as Average@k asks it: eval.thinking overrides the
        student's thinking setting (the public OPSD evaluation ran with thinking on)."""
        think = self.task.student_thinking if thinking is None else thinking
        return self.chat(self.templates.student_prompt(problem.problem), think)

    def answer_suffix(self, problem: Problem, whole: bool, after_cut: bool, force: bool = False) -> str:
        """keep_answer (or force: a reference cut to the token budget): the fixed transition
        sentence and the boxed final answer, shown after a partial cut (a whole reference
        already ends in its answer)."""
        if not (self.task.keep_answer or force) or whole:
            return ""
        sep = STEP_JOIN[self.task.kind] if after_cut else ""
        return f"{sep}{self.task.transition} \\boxed{{{problem.answer}}}."

    @staticmethod
    def shown_exposure(problem: Problem, r: float) -> float:
        """The r the cut takes: 1 for a reference shown whole at any r > 0 (answer_only)."""
        return 1.0 if problem.whole_reference and r > 0 else r

    def reference(self, problem: Problem, r: float) -> str:
        """The first r of problem's reference solution (in cfg's exposure unit), then the
        answer suffix under keep_answer."""
        r = self.shown_exposure(problem, r)
        text, whole = self.cutter.prefix(problem.solution, problem.steps, r)
        return text + self.answer_suffix(problem, whole, bool(text))

    def teacher(self, problem: Problem, r: float) -> str:
        reference = self.reference(problem, r)
        if no_reference(reference):
            return self.without_reference(problem)
        return self.chat(self.templates.teacher_prompt(problem.problem, reference),
                         self.task.teacher_thinking)

    def without_reference(self, problem: Problem) -> str:
        """The teacher's prompt at r = 0 (no_reference): the student's prompt, or under
        task.empty_reference=template the teacher's template, empty reference, teacher thinking."""
        if self.templates.empty_reference == "student":
            return self.student(problem)
        return self.chat(self.templates.teacher_prompt(problem.problem, ""), self.task.teacher_thinking)

    def teacher_ids(self, problem: Problem, r: float) -> tuple[list[int], bool]:
        """(teacher prompt ids, whether the reference was cut from its end to fit
        task.max_teacher_tokens). Ids: template head + the cut's ids + answer suffix + tail;
        an empty reference gives the ids of the r = 0 prompt's text (`without_reference`: the
        student's prompt by default), tokenized whole as TRL does (no reference ids to keep)."""
        tok = self.tokenizer
        r = self.shown_exposure(problem, r)
        ref_ids, whole = self.cutter.prefix_ids(problem.solution, problem.steps, r)
        suffix = self.answer_suffix(problem, whole, bool(ref_ids))
        suffix_ids = tok(suffix, add_special_tokens=False)["input_ids"] if suffix else []
        if not ref_ids and not suffix_ids:  # the r = 0 rule (no_reference) on ids
            return tok(self.without_reference(problem))["input_ids"], False
        head, tail = self.chat(self.templates.teacher_prompt(problem.problem, _SLOT),
                               self.task.teacher_thinking).split(_SLOT)
        head_ids = tok(head)["input_ids"]
        tail_ids = tok(tail, add_special_tokens=False)["input_ids"]
        budget, cut = self.task.max_teacher_tokens, False
        if budget:
            room = max(0, budget - len(head_ids) - len(suffix_ids) - len(tail_ids))
            cut = len(ref_ids) > room
            if cut and not suffix_ids and problem.answer:
                # A reference cut to fit loses its end, where its boxed answer is: the teacher is
                # shown the transition sentence and the answer after the cut instead.
                suffix_ids = tok(self.answer_suffix(problem, False, True, force=True),
                                 add_special_tokens=False)["input_ids"]
                room = max(0, budget - len(head_ids) - len(suffix_ids) - len(tail_ids))
            ref_ids = list(ref_ids[:room])
        return [*head_ids, *ref_ids, *suffix_ids, *tail_ids], cut

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


def eval_prompts_for(problems: list[Problem], cfg: RunConfig, tokenizer,
                     exposure: float | None) -> list[str]:
    """Average@k's prompts: the student's with eval.thinking (None: the student's own
    setting), or teacher prompts at `exposure` (the teacher's setting, unchanged)."""
    if exposure is not None:
        return prompts_for(problems, cfg, tokenizer, exposure)
    prompts = Prompts(cfg, tokenizer)
    return [prompts.evaluation(p, cfg.eval.thinking) for p in problems]
