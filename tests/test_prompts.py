"""The one prompt module: student and teacher prompts, the exposure cut in both units, the r = 0 rule.

python -m pytest -q tests/test_prompts.py
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from harness.models.tiny import build_tokenizer
from harness.prompts.cut import check_exposure, prefix_length
from harness.prompts.templates import Prompts, PromptTemplates, completion_text, prompts_for
from harness.tasks.datasets import TaskData


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def problems(smoke_cfg):
    return TaskData(smoke_cfg.task).validation[:8]


def steps_cfg(cfg):
    return replace(cfg, exposure_unit="steps")


def test_r0_teacher_context_is_the_student_context(smoke_cfg, tok, problems):
    for cfg in (smoke_cfg, steps_cfg(smoke_cfg)):
        prompts = Prompts(cfg, tok)
        for p in problems:
            assert prompts.reference(p, 0.0) == ""
            assert prompts.teacher(p, 0.0) == prompts.student(p)
    tpl = PromptTemplates()
    assert tpl.teacher_prompt("1 + 2", "") == tpl.teacher_prompt("1 + 2", "  ") == tpl.student_prompt("1 + 2")


def test_r1_shows_the_full_reference(smoke_cfg, tok, problems):
    for cfg in (smoke_cfg, steps_cfg(smoke_cfg)):
        prompts = Prompts(cfg, tok)
        for p in problems:
            assert prompts.reference(p, 1.0) == p.solution
            assert prompts.teacher(p, 1.0) == cfg.task.teacher_template.format(
                problem=p.problem, reference=p.solution)


def test_token_and_step_units_cut_differently(smoke_cfg, tok, problems):
    by_tokens, by_steps = Prompts(smoke_cfg, tok), Prompts(steps_cfg(smoke_cfg), tok)
    differ = 0
    for p in problems:
        ids = tok(p.solution, add_special_tokens=False)["input_ids"]
        want_tokens = tok.decode(ids[:math.ceil(0.5 * len(ids))])
        want_steps = " ".join(p.steps[:math.ceil(0.5 * len(p.steps))])
        assert by_tokens.reference(p, 0.5) == want_tokens
        assert by_steps.reference(p, 0.5) == want_steps
        assert p.solution.startswith(want_tokens) and p.solution.startswith(want_steps)
        differ += want_tokens != want_steps
    assert differ  # the units are not the same cut under two names


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5"])
def test_bad_exposure_is_one_line_naming_the_value(smoke_cfg, tok, problems, bad):
    with pytest.raises(ValueError) as err:
        Prompts(smoke_cfg, tok).teacher(problems[0], bad)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"exposure={bad!r} is invalid")
    with pytest.raises(ValueError, match=r"^probe.exposures item=1.5 is invalid: must be in \[0, 1\]$"):
        check_exposure(1.5, "probe.exposures item")


def test_check_exposure_accepts_the_closed_unit_interval():
    assert [check_exposure(r) for r in (0, 0.25, 1)] == [0.0, 0.25, 1.0]
    assert prefix_length(0.5, 5) == 3


def test_completion_and_student_prompts(smoke_cfg, tok, problems):
    prompts = Prompts(smoke_cfg, tok)
    p = problems[0]
    assert prompts.completion(p.solution) == " " + p.solution + tok.eos_token
    assert completion_text(p.solution) == " " + p.solution
    assert prompts.student(p) == smoke_cfg.task.student_template.format(problem=p.problem)
    assert prompts_for(problems, smoke_cfg, tok, None) == [prompts.student(x) for x in problems]
    assert prompts_for(problems, smoke_cfg, tok, 0.5) == [prompts.teacher(x, 0.5) for x in problems]


def test_the_template_holds_the_order(smoke_cfg, tok, problems):
    task = replace(smoke_cfg.task, teacher_template="{problem} | ref : {reference} ?")
    after = replace(smoke_cfg, task=task)
    p = problems[0]
    assert Prompts(after, tok).teacher(p, 1.0) == f"{p.problem} | ref : {p.solution} ?"


def test_a_bad_unit_is_refused(tok):
    from harness.prompts.templates import ReferenceCutter

    with pytest.raises(ValueError, match="exposure_unit='words' is invalid"):
        ReferenceCutter(tok, "words")


def test_teacher_ids_are_the_tokenized_teacher_text_for_the_word_tokenizer(smoke_cfg, tok, problems):
    """The trainer's id-built teacher context equals what tokenizing the teacher text gave
    before (one token per word: no boundary can move), in both units and at every r."""
    for cfg in (smoke_cfg, steps_cfg(smoke_cfg)):
        prompts = Prompts(cfg, tok)
        for p in problems:
            for r in (0.0, 0.2, 0.5, 1.0):
                assert prompts.teacher_ids(p, r) == (tok(prompts.teacher(p, r))["input_ids"], False)
