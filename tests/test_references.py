"""Reference-content controls (reference=own|shuffled|corrupted|answer_only) and the r = 0 point
both ways (task.empty_reference=student|template).

python -m pytest -q tests/test_references.py
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.config.task import TaskConfig
from harness.models.qwen3_shaped import FIXTURES
from harness.models.tiny import build_tokenizer
from harness.prompts.templates import Prompts, ReferenceCutter
from harness.tasks.datasets import TaskData
from harness.tasks.gap import leap
from harness.tasks.grading import extract_boxed
from harness.tasks.math_data import STEP_SEP, split_steps
from harness.tasks.problem import Problem
from harness.tasks.references import apply_reference, parse_step
from harness.tasks.synthetic import _apply, build_problem, sample_problem, take, train_stream
from harness.tasks.training import training_problems

SYNTH = TaskConfig()
MATH_OVERRIDES = ["task=math", f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
                  f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
                  f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}"]  # hmmt25: a hub id, not read
MATH = compose(MATH_OVERRIDES).task


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def stream(n: int, seed: int = 0) -> list[Problem]:
    return take(train_stream((2, 5), 13, seed, set()), n)


def with_repeats(n_distinct: int, n: int) -> list[Problem]:
    """n problems drawn with repeats from n_distinct distinct ones (same ids)."""
    distinct = list({p.id: p for p in stream(n_distinct)}.values())
    rng = random.Random(1)
    return distinct + [rng.choice(distinct) for _ in range(n - len(distinct))]


def math_problem(i: int, problem: str | None = None, answer: str = "5") -> Problem:
    solution = STEP_SEP.join([f"First, {i} + 2 = {i + 2}.", f"Then {i + 2} x 3 = {3 * (i + 2)}.",
                              f"So the answer is \\boxed{{{answer}}}."])
    return Problem(id=f"math-{i}", problem=problem or f"What is problem {i}?", solution=solution,
                   answer=answer, steps=split_steps(solution))


def by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}


def check_shuffled(before: list[Problem], after: list[Problem]) -> dict[str, Problem]:
    """Every occurrence of an id gets one reference, never its own nor one of the same
    problem/solution text; the references handed out are a permutation of the distinct ones."""
    assert [p.id for p in after] == [p.id for p in before]
    own, seen = by_id(before), {}
    for p in after:
        assert seen.setdefault(p.id, p) == p  # one reference per id
        assert (p.problem, p.answer) == (own[p.id].problem, own[p.id].answer)
        assert p.solution != own[p.id].solution
        donor = next(q for q in own.values() if q.solution == p.solution)
        assert donor.problem != p.problem and donor.steps == p.steps
    assert Counter(p.solution for p in seen.values()) == Counter(p.solution for p in own.values())
    return seen


# ---- own, unknown ------------------------------------------------------------------------------
def test_own_is_unchanged():
    for task, ps in ((SYNTH, stream(20)), (MATH, [math_problem(i) for i in range(3)])):
        assert apply_reference("own", ps, task, 0) == ps


def test_an_unknown_kind_is_one_line_naming_it():
    with pytest.raises(ValueError, match=r"^reference='bogus' is invalid: one of .*own") as err:
        apply_reference("bogus", stream(3), SYNTH, 0)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^reference='bogus' is invalid") as err:
        compose(["reference=bogus"])
    assert "\n" not in str(err.value)


# ---- shuffled ----------------------------------------------------------------------------------
def test_shuffled_never_gives_a_problem_its_own_reference_and_matches_lengths():
    before = with_repeats(300, 500)
    after = check_shuffled(before, apply_reference("shuffled", before, SYNTH, 0))
    # Every step count has many problems here: the length always matches exactly.
    assert all(len(p.steps) == len(by_id(before)[pid].steps) for pid, p in after.items())


def test_shuffled_pairs_the_two_problems_that_share_a_step_count():
    rng = random.Random(0)
    pair = [sample_problem(rng, 3, 13), sample_problem(rng, 3, 13)]
    lone = [sample_problem(rng, k, 13) for k in (1, 2, 4, 5)]
    for seed in range(10):
        before = lone + pair + pair
        after = check_shuffled(before, apply_reference("shuffled", before, SYNTH, seed))
        assert after[pair[0].id].solution == pair[1].solution
        assert after[pair[1].id].solution == pair[0].solution
    # A length nobody else has: it still gets (and gives) another problem's reference.
    before = lone[:1] + pair
    check_shuffled(before, apply_reference("shuffled", before, SYNTH, 0))


def test_shuffled_is_deterministic_by_seed_and_differs_across_seeds():
    before = with_repeats(100, 200)
    a, b = (apply_reference("shuffled", before, SYNTH, 3) for _ in range(2))
    assert a == b
    assert apply_reference("shuffled", before, SYNTH, 4) != a
    # The assignment depends on the problems, not on their order in the list.
    assert by_id(apply_reference("shuffled", before[::-1], SYNTH, 3)) == by_id(a)


def test_shuffled_raises_on_a_single_distinct_problem():
    p = stream(1)[0]
    with pytest.raises(ValueError, match=r"^reference=shuffled needs at least 2 .*got 1 problem") as err:
        apply_reference("shuffled", [p, p, p], SYNTH, 0)
    assert "\n" not in str(err.value)


def test_shuffled_math_skips_problems_with_the_same_text():
    """Two rows of one problem text (a dataset duplicate) never get each other's reference."""
    ps = [math_problem(0, "Same?"), math_problem(1, "Same?"), *(math_problem(i) for i in range(2, 6))]
    for seed in range(20):
        check_shuffled(ps, apply_reference("shuffled", ps, MATH, seed))
    with pytest.raises(ValueError, match="shares problem"):
        apply_reference("shuffled", ps[:2] + ps[2:3], MATH, 0)  # both duplicates need ps[2]'s


# ---- corrupted ---------------------------------------------------------------------------------
def check_corrupted(p: Problem, c: Problem, modulus: int) -> int:
    """The drawn step j: steps before it as they were, its result wrong, every later step
    computing on from the wrong value, `ans` the wrong final value. Returns j."""
    assert (c.id, c.problem, c.answer) == (p.id, p.problem, p.answer)
    assert c.solution == " ".join(c.steps) and len(c.steps) == len(p.steps)
    j = next(i for i, (a, b) in enumerate(zip(p.steps, c.steps)) if a != b)
    acc = parse_step(p.steps[0])[0]
    for i, step in enumerate(c.steps[:-1]):
        first, pairs = parse_step(step)
        assert pairs == parse_step(p.steps[i])[1]
        result = int(step.split()[-2])
        value = first
        for op, b in pairs:
            value = _apply(op, value, b, modulus)
        assert first == acc
        if i == j:
            assert result != value  # the first wrong step
        else:
            assert result == value  # the chain computes on (before j: the true chain)
        acc = result
    assert c.steps[-1] == f"ans {acc}" and str(acc) != p.answer
    return j


def test_corrupted_chain_is_consistent_after_the_drawn_step():
    ps = list(by_id(stream(300)).values())
    leaped = [leap(p, 13, 2) for p in ps[:50]]
    for before in (ps, leaped):
        after = apply_reference("corrupted", before, SYNTH, 0)
        steps = [check_corrupted(p, c, 13) for p, c in zip(before, after)]
        assert len(set(steps)) > 2  # the drawn step varies
    assert apply_reference("corrupted", ps, SYNTH, 0) == apply_reference("corrupted", ps, SYNTH, 0)
    assert apply_reference("corrupted", ps, SYNTH, 1) != apply_reference("corrupted", ps, SYNTH, 0)


def test_corrupted_answer_is_wrong_even_past_a_collapsing_step():
    """`x 0` maps any value to 0: an error before it cannot reach the answer, so the drawn step
    is one after it; a composite modulus (12: `x 6` keeps only the parity) likewise."""
    p = build_problem([3, 4, 0, 5], ["+", "x", "+"], 13)
    q = build_problem([3, 4, 6, 5], ["+", "x", "-"], 12)
    for seed in range(30):
        assert check_corrupted(p, apply_reference("corrupted", [p], SYNTH, seed)[0], 13) >= 1
        check_corrupted(q, apply_reference("corrupted", [q], replace(SYNTH, modulus=12), seed)[0], 12)


def test_corrupted_math_from_a_drawn_step_with_a_wrong_boxed_answer():
    ps = [math_problem(i, answer=a) for i, a in enumerate(["5", "\\frac{5}{6}", "x", "12"])]
    after = apply_reference("corrupted", ps, MATH, 0)
    assert after == apply_reference("corrupted", ps, MATH, 0)
    drawn = set()
    for seed in range(10):
        for p, c in zip(ps, apply_reference("corrupted", ps, MATH, seed)):
            assert (c.id, c.problem, c.answer) == (p.id, p.problem, p.answer)
            assert c.solution == STEP_SEP.join(c.steps) and len(c.steps) == len(p.steps)
            wrong = extract_boxed(c.solution)
            assert wrong not in (None, p.answer)
            j = next(i for i, (a, b) in enumerate(zip(p.steps, c.steps)) if a != b)
            assert all(a != b for a, b in zip(p.steps[j:], c.steps[j:]))  # every step on is changed
            drawn.add(j)
    assert drawn == {0, 1, 2}
    assert extract_boxed(after[2].solution) == "x+1"  # no digit: `<answer>+1`
    assert extract_boxed(after[1].solution).startswith("\\frac{5}{")


# ---- answer_only -------------------------------------------------------------------------------
def test_answer_only_is_the_final_answer():
    ps = stream(5)
    for p, a in zip(ps, apply_reference("answer_only", ps, SYNTH, 0)):
        assert (a.solution, a.steps, a.answer) == (f"ans {p.answer}", (f"ans {p.answer}",), p.answer)
    m = math_problem(0, answer="\\frac{5}{6}")
    a = apply_reference("answer_only", [m], MATH, 0)[0]
    assert (a.solution, a.steps) == ("\\boxed{\\frac{5}{6}}", ("\\boxed{\\frac{5}{6}}",))


def test_answer_only_is_shown_whole_at_any_exposure_above_zero(tok):
    """The bare token cut of `ans <answer>` (2 tokens) would show `ans` alone at r <= 0.5; the
    teacher's prompts show the whole answer at every r > 0 and nothing at r = 0."""
    p = apply_reference("answer_only", stream(1), SYNTH, 0)[0]
    assert p.whole_reference and not stream(1)[0].whole_reference
    tokens = ReferenceCutter(tok, "tokens")
    assert tokens.prefix(p.solution, p.steps, 0.25) == ("ans", False)  # the cut alone
    prompts = Prompts(compose(["reference=answer_only"]), tok)
    for r in (0.1, 0.25, 0.5, 1.0):
        assert prompts.reference(p, r) == p.solution
        assert prompts.teacher_ids(p, r) == prompts.teacher_ids(p, 1.0)
    assert prompts.reference(p, 0.0) == ""


def test_keep_answer_is_refused_where_it_would_show_the_true_answer():
    keep = replace(SYNTH, keep_answer=True)
    for kind in ("shuffled", "corrupted"):
        with pytest.raises(ValueError, match=f"^reference={kind} with task.keep_answer=true"):
            apply_reference(kind, stream(4), keep, 0)
    assert apply_reference("answer_only", stream(2), keep, 0)[0].solution.startswith("ans ")


# ---- through the config ------------------------------------------------------------------------
def test_training_problems_under_reference_shuffled():
    cfg = compose(["reference=shuffled"])
    data = TaskData(cfg.task)
    own = training_problems(compose([]), data, 64)
    shuffled = training_problems(cfg, data, 64)
    check_shuffled(own, shuffled)
    assert cfg.run_name != compose([]).run_name and "ref_shuffled" in cfg.run_name


# ---- task.empty_reference ----------------------------------------------------------------------
def test_empty_reference_is_checked_and_keyed_only_when_set():
    from harness.models.base_identity import base_key

    with pytest.raises(ConfigError, match=r"^task.empty_reference='bogus' is invalid"):
        compose(["task.empty_reference=bogus"])
    assert base_key(compose(["task.empty_reference=student"])) == base_key(compose([]))
    assert base_key(compose(["task.empty_reference=template"])) != base_key(compose([]))


def test_r0_under_template_is_the_teacher_template_with_an_empty_reference(tok):
    default, template = compose([]), compose(["task.empty_reference=template"])
    for p in stream(8):
        text = template.task.teacher_template.format(problem=p.problem, reference="")
        prompts = Prompts(template, tok)
        assert prompts.teacher(p, 0.0) == text == prompts.templates.teacher_prompt(p.problem, " ")
        assert prompts.teacher_ids(p, 0.0) == (tok(text)["input_ids"], False)
        assert prompts.teacher(p, 1.0) == Prompts(default, tok).teacher(p, 1.0)
        student = Prompts(default, tok)
        assert student.teacher(p, 0.0) == student.student(p)
        assert student.teacher_ids(p, 0.0) == (tok(student.student(p))["input_ids"], False)


def test_r0_under_template_on_the_math_chat_template():
    """The chat-template path: the teacher's template and thinking setting at r = 0."""
    from harness.models.qwen3_shaped import build_tokenizer as chat_tokenizer

    chat = chat_tokenizer()
    default, template = compose(MATH_OVERRIDES), compose([*MATH_OVERRIDES, "task.empty_reference=template"])
    p = math_problem(0)
    prompts, student = Prompts(template, chat), Prompts(default, chat)
    text = prompts.chat(template.task.teacher_template.format(problem=p.problem, reference=""), True)
    assert prompts.teacher(p, 0.0) == text and text.endswith("<|im_start|>assistant\n")
    assert prompts.teacher_ids(p, 0.0) == (chat(text)["input_ids"], False)
    assert student.teacher(p, 0.0) == student.student(p) != text
