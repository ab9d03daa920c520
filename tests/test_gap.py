"""The competence-gap mechanisms: references and their steps, the training chains, and what stays
unchanged (evaluation suites, validation, the base model's key).

python -m pytest -q tests/test_gap.py
"""

from __future__ import annotations

import random

import pytest

from harness.config.gap import GapConfig, effective_tag
from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.models.base_identity import base_key
from harness.tasks.datasets import TaskData
from harness.tasks.gap import HORIZON_MAX, gapped, horizon_ops, leap, solution_tokens
from harness.tasks.synthetic import _apply, build_problem, parse_problem, sample_problem
from harness.tasks.training import training_problems


def recompute(step: str, modulus: int) -> tuple[int, int, int]:
    """(operations in the step, its start value, whether its written result follows)."""
    left, right = step.removesuffix(" ;").split(" = ")
    words = left.split()
    acc = int(words[0])
    for op, b in zip(words[1::2], words[2::2]):
        acc = _apply(op, acc, int(b), modulus)
    return len(words[1::2]), int(words[0]), int(acc == int(right))


@pytest.mark.parametrize("ops_per_step", [2, 3, 4])
def test_leap_reference_steps_follow_and_cover_every_operation(ops_per_step: int) -> None:
    rng = random.Random(ops_per_step)
    for _ in range(200):
        p = sample_problem(rng, rng.randint(1, 12), 13)
        q = leap(p, 13, ops_per_step)
        operands, ops = parse_problem(p.problem)
        *work, answer = q.steps
        assert answer == f"ans {p.answer}" and q.answer == p.answer and q.id == p.id
        assert " ".join(q.steps) == q.solution
        counts = [recompute(s, 13) for s in work]
        assert all(ok for _, _, ok in counts)  # each written step's result follows from it
        assert sum(n for n, _, _ in counts) == len(ops)  # every operation, once
        assert all(n == ops_per_step for n, _, _ in counts[:-1])
        assert counts[0][1] == operands[0]


def test_leap_of_one_operation_a_step_is_the_reference() -> None:
    p = build_problem([3, 4, 5, 6], ["+", "x", "-"], 13)
    assert leap(p, 13, 1) == p
    assert leap(p, 13, 2).solution == "3 + 4 x 5 = 9 ; 9 - 6 = 3 ; ans 3"


def test_gap_level_zero_or_none_changes_nothing() -> None:
    p = build_problem([3, 4, 5], ["+", "x"], 13)
    assert gapped(p, GapConfig(), 13) == p
    assert gapped(p, GapConfig("leap", 0), 13) == p
    assert horizon_ops(GapConfig("horizon", 0), [2, 5]) is None
    assert horizon_ops(GapConfig("leap", 2), [2, 5]) is None


def test_horizon_shifts_training_chains_and_fits_a_rollout() -> None:
    assert horizon_ops(GapConfig("horizon", 1), [2, 5]) == (3, 6)
    assert horizon_ops(GapConfig("horizon", 2), [2, 5]) == (4, 7)
    assert horizon_ops(GapConfig("horizon", 5), [2, 5]) == (7, HORIZON_MAX)
    assert horizon_ops(GapConfig("horizon", 5), [6, 9]) == (HORIZON_MAX, HORIZON_MAX)
    assert solution_tokens(HORIZON_MAX) <= compose([]).train.max_completion_length
    cfg = compose(["gap.kind=horizon", "gap.level=4"])
    ops = [len(parse_problem(p.problem)[1]) for p in training_problems(cfg, TaskData(cfg.task), 300)]
    assert min(ops) == 6 and max(ops) == 9


def test_gap_leaves_evaluation_validation_and_base_model_alone() -> None:
    plain = compose([])
    for over in (["gap.kind=horizon", "gap.level=5"], ["gap.kind=leap", "gap.level=2"]):
        cfg = compose(over)
        a, b = TaskData(plain.task), TaskData(cfg.task)
        assert a.suites == b.suites and a.validation == b.validation
        assert base_key(cfg) == base_key(plain)  # the shipped base serves every gap level
        assert cfg.run_name != plain.run_name


def test_leap_training_problems_keep_the_problems_and_answers() -> None:
    plain, cfg = compose([]), compose(["gap.kind=leap", "gap.level=1"])
    mine = training_problems(cfg, TaskData(cfg.task), 50)
    theirs = training_problems(plain, TaskData(plain.task), 50)
    assert [p.problem for p in mine] == [p.problem for p in theirs]
    assert [p.answer for p in mine] == [p.answer for p in theirs]
    assert all(len(m.steps) <= len(t.steps) for m, t in zip(mine, theirs))
    assert any(len(m.steps) < len(t.steps) for m, t in zip(mine, theirs))


def test_run_names_carry_gap_and_reference() -> None:
    assert compose(["gap.kind=horizon", "gap.level=2", "exposure=0.5"]).run_name == "opsd-horizon2-r0.5-s0"
    assert compose(["reference=shuffled"]).run_name == "opsd-ref_shuffled-r1-s0"
    assert effective_tag("x", {"kind": "leap", "level": 1}, "corrupted") == "x_leap1_ref_corrupted"
    assert effective_tag(None, None, "own") is None
    assert compose(["task.empty_reference=template"]).run_name == "opsd-r0_template-r1-s0"


@pytest.mark.parametrize("overrides, named", [
    (["gap.kind=bogus"], "gap.kind='bogus'"),
    (["gap.kind=horizon", "gap.level=6"], "gap.level=6"),
    (["gap.level=1"], "gap.level=1"),
    (["gap.kind=horizon", "gap.level=3", "train.max_completion_length=40"], "train.max_completion_length=40"),
    (["reference=corrupted", "task.keep_answer=true"], "reference='corrupted'"),
    (["reference=nobody"], "reference='nobody'"),
    (["gap.kind=horizon", "gap.level=1", "gap.share=0"], "gap.share=0"),
    (["gap.kind=leap", "gap.level=1", "gap.share=0.5"], "gap.share=0.5"),
    (["gap.kind=noisy", "gap.level=2", "task.keep_answer=true"], "gap.kind='noisy'"),
])
def test_bad_gap_is_one_line_naming_the_value(overrides: list[str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose(overrides)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_mixed_horizon_draws_share_of_longer_chains_and_names_the_run() -> None:
    cfg = compose(["gap.kind=horizon", "gap.level=2", "gap.share=0.5"])
    assert cfg.run_name == "opsd-horizon2mix50-r1-s0"
    problems = training_problems(cfg, TaskData(cfg.task), 400)
    longer = sum(len(p.steps) - 1 > 5 for p in problems)  # [6, 7] ops only come from the longer stream
    # [4, 7] half the time, [2, 5] otherwise: P(ops > 5) = 0.5 x 2/4 = 0.25
    assert 0.18 < longer / 400 < 0.32
    assert max(len(p.steps) - 1 for p in problems) == 7 and min(len(p.steps) - 1 for p in problems) == 2
    # share 1 is the plain horizon stream, problem for problem
    whole = compose(["gap.kind=horizon", "gap.level=2"])
    one = compose(["gap.kind=horizon", "gap.level=2", "gap.share=1.0"])
    data = TaskData(whole.task)
    assert training_problems(whole, data, 20) == training_problems(one, data, 20)


def test_noisy_corrupts_its_share_of_references_and_keeps_problems_and_answers() -> None:
    clean_cfg, cfg = compose([]), compose(["gap.kind=noisy", "gap.level=3"])
    assert cfg.run_name == "opsd-noisy3-r1-s0"
    clean = training_problems(clean_cfg, TaskData(clean_cfg.task), 400)
    noisy = training_problems(cfg, TaskData(cfg.task), 400)
    assert [(p.id, p.problem, p.answer) for p in clean] == [(p.id, p.problem, p.answer) for p in noisy]
    wrong = [q for p, q in zip(clean, noisy, strict=True) if q.solution != p.solution]
    assert 0.24 < len(wrong) / 400 < 0.36  # level 3: 30%
    for q in wrong:  # wrong from a drawn step on: the written final answer is not the true one
        assert q.steps[-1] != f"ans {q.answer}"
    # the same problem id is corrupted alike wherever it recurs
    by_id: dict[str, str] = {}
    for q in noisy:
        assert by_id.setdefault(q.id, q.solution) == q.solution


def test_a_mixed_horizon_sweep_plans_its_base_run_without_the_gap():
    """The sweep's base run drops the run-only keys, gap.share too (a share without a horizon is refused)."""
    from harness.front.plan import base_overrides

    point = ["gap.kind=horizon", "gap.level=1", "gap.share=0.5", "exposure=0.5", "seed=0"]
    assert base_overrides(point) == ["method=base"]
    assert compose(base_overrides(point)).run_name == "base"
