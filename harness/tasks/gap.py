"""Competence-gap mechanisms of the synthetic task: training references that outrun the student.

python -c "from harness.tasks.gap import leap; from harness.tasks.synthetic import build_problem; \
    print(leap(build_problem([1, 2, 3, 4], ['+', 'x', '-'], 13), 13, 2).solution)"

Two mechanisms (harness/config/gap.py GapConfig), each applied to the training problems only;
the base model, the evaluation suites and the validation set stay as they are:
- `horizon`: training chains `level` operations longer than task.train_ops (the base model
  learned [2, 5]; level 2 trains on [4, 7]), at most HORIZON_MAX so a solution fits the 64-token
  rollout. The student's
  rollouts derail more often on them, and a teacher shown the rest of the reference pulls
  toward values that no longer follow from the rollout's own steps.
- `leap`: the reference writes one step for level + 1 operations (`a op b op c = r ;`), the
  student still one step per operation: the reference skips reasoning the student writes out.
- `noisy`: level x 10% of the training references (drawn per problem id and seed) are wrong
  from a drawn step on, the chain recomputed after it (harness/tasks/references.py
  corrupt_synthetic): a reference set with errors, as real solution sets have. The student's
  problems and their graded answers are unchanged, so GRPO does not see the noise; a teacher shown
  less of a wrong reference sees fewer of its wrong steps.
"""

from __future__ import annotations

from dataclasses import replace

from harness.config.fields import require
from harness.config.gap import GapConfig
from harness.tasks.problem import Problem
from harness.tasks.synthetic import STEP_TOKENS, _apply, parse_problem

HORIZON_MAX = 10  # ops: 6 x 10 solution tokens + `ans r` + the end token = 63 <= 64


def horizon_ops(gap: GapConfig, train_ops: list[int] | tuple[int, int]) -> tuple[int, int] | None:
    """The training chains' [min, max] operations under `horizon`; None: task.train_ops as it is."""
    if gap.kind != "horizon" or not gap.active:
        return None
    lo, hi = train_ops
    shift = gap.level
    return min(lo + shift, HORIZON_MAX), min(hi + shift, HORIZON_MAX)


def solution_tokens(num_ops: int) -> int:
    """Tokens of a one-step-per-operation solution and its end token."""
    return STEP_TOKENS * num_ops + 3


def check_fits(gap: GapConfig, train_ops: list[int], max_completion_length: int) -> None:
    """ConfigError when the longest training solution under the gap cannot fit a rollout."""
    ops = horizon_ops(gap, train_ops)
    if ops is None:
        return
    need = solution_tokens(ops[1])
    require(need <= max_completion_length, "train.max_completion_length", max_completion_length,
            f"gap.kind=horizon gap.level={gap.level} trains on {ops[1]}-operation chains, "
            f"whose solutions take {need} tokens")


def leap(problem: Problem, modulus: int, ops_per_step: int) -> Problem:
    """problem with its reference rewritten at ops_per_step operations a written step."""
    operands, ops = parse_problem(problem.problem)
    pairs = list(zip(ops, operands[1:], strict=True))
    acc, steps = operands[0], []
    for start in range(0, len(pairs), ops_per_step):
        words = [str(acc)]
        for op, b in pairs[start:start + ops_per_step]:
            acc = _apply(op, acc, b, modulus)
            words += [op, str(b)]
        steps.append(f"{' '.join(words)} = {acc} ;")
    steps.append(f"ans {acc}")
    return replace(problem, solution=" ".join(steps), steps=tuple(steps))


def gapped(problem: Problem, gap: GapConfig, modulus: int) -> Problem:
    """The training problem as the gap shows it to the teacher (leap rewrites its reference)."""
    if gap.kind == "leap" and gap.active:
        return leap(problem, modulus, gap.level + 1)
    return problem


def noisy_share(gap: GapConfig) -> float:
    """The share of corrupted references under `noisy` (level x 10%); 0 otherwise."""
    return gap.level / 10 if gap.kind == "noisy" and gap.active else 0.0

