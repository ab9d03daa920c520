"""Synthetic task: determinism, difficulty, train/eval disjointness, data-file errors.

python -m pytest -q tests/test_tasks.py
"""

import json

import pytest

from harness.config.settings import compose
from harness.tasks.datasets import TaskData, read_jsonl_problems
from harness.tasks.synthetic import build_problem, make_suite, take, train_stream


def test_problem_solution_is_explicit_steps():
    p = build_problem([3, 5, 2, 7, 1], ["+", "x", "-", "+"], 13)
    assert p.solution == "3 + 5 = 8 ; 8 x 2 = 3 ; 3 - 7 = 9 ; 9 + 1 = 10 ; ans 10"
    assert p.answer == "10" and len(p.steps) == 5  # 4 operation steps + the answer


def test_suites_deterministic_by_seed_and_distinct():
    a = make_suite("medium_k4", 4, 50, 13, seed=0)
    b = make_suite("medium_k4", 4, 50, 13, seed=0)
    c = make_suite("medium_k4", 4, 50, 13, seed=1)
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.id for p in a] != [p.id for p in c]
    assert len({p.problem for p in a}) == 50
    assert all(len(p.steps) - 1 >= 4 for p in a)  # >= 4 reasoning steps at medium difficulty


def test_train_stream_deterministic():
    s1 = [p.id for p in take(train_stream((2, 5), 13, 7, set()), 30)]
    s2 = [p.id for p in take(train_stream((2, 5), 13, 7, set()), 30)]
    assert s1 == s2


def test_no_eval_problem_in_training_data():
    data = TaskData(compose([]).task)
    held = data.held_out
    assert len(held) == sum(len(v) for v in data.suites.values()) + len(data.validation)
    # Small operation counts make collisions frequent (k=3 has 13^4 * 27 problems), so
    # a long stream would hit eval problems if they were not filtered out.
    seen = {p.problem for p in take(data.train_stream(0), 20000)}
    assert not seen & held


def test_suites_rise_in_difficulty():
    cfg = compose([])
    ops = [s.num_ops for s in cfg.task.suites]
    assert ops == sorted(ops) and len(ops) == 3


@pytest.mark.parametrize("ops", [0, 13])
def test_difficulty_out_of_range(ops):
    with pytest.raises(ValueError, match=f"num_ops={ops}"):
        make_suite("x", ops, 5)


def test_data_file_row_missing_field(tmp_path):
    f = tmp_path / "train.jsonl"
    rows = [{"id": "a", "problem": "1+1", "solution": "2", "answer": "2"},
            {"id": "b", "problem": "2+2", "solution": "4"}]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match=r"train.jsonl:2 lacks field\(s\) answer"):
        read_jsonl_problems(f)


def test_data_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_jsonl_problems(tmp_path / "nope.jsonl")


def test_erring_solution_errs_only_where_not_copied_and_stays_consistent():
    import random

    from harness.tasks.synthetic import STEP_TOKENS, erring_solution, make_suite, parse_problem

    problems = make_suite("e", 4, 200, modulus=13, seed=3)
    assert all(erring_solution(p, 13, 0.0, random.Random(0)) == p.solution for p in problems)
    assert all(erring_solution(p, 13, 1.0, random.Random(0), clean_tokens=999) == p.solution
               for p in problems)  # everything shown: all copied, nothing to get wrong
    rng, wrong_steps, total = random.Random(1), 0, 0
    for p in problems:
        text = erring_solution(p, 13, 0.3, rng, clean_tokens=2 * STEP_TOKENS)
        words = text.split()
        assert words[:2 * STEP_TOKENS] == p.solution.split()[:2 * STEP_TOKENS]  # shown part exact
        operands, ops = parse_problem(p.problem)
        for i in range(2, 4):  # the chain goes on from whatever the previous step wrote
            acc, op, b, _, res = words[i * STEP_TOKENS:i * STEP_TOKENS + 5]
            a_, b_ = int(acc), int(b)
            true = {"+": a_ + b_, "-": a_ - b_, "x": a_ * b_}[op] % 13
            assert op == ops[i] and b_ == operands[i + 1]
            wrong_steps += int(res) != true
            total += 1
        assert words[-1] == words[-4]  # ans repeats the last result
    assert 0.2 < wrong_steps / total < 0.4  # error_rate 0.3
