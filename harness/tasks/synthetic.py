"""Synthetic multi-step modular arithmetic: the embedded CPU task.

python -c "from harness.tasks.synthetic import make_suite; [print(p) for p in make_suite('medium_k4', 2)]"

A problem is a left-to-right chain `a0 op1 a1 op2 a2 ... opk ak` over Z_M with
ops + - x. The reference solution spells one step per operation:
`a0 op1 a1 = r1 ; r1 op2 a2 = r2 ; ... ; ans rk`. Difficulty is k (number of
operations). One token per number and symbol (see harness/models/tiny.py): the
harness/DESIGN.md (Prototype findings) records that a character-level variant gave a teacher no better than
the student, while this one gave a clearly better teacher.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from harness.tasks.problem import Problem

OPS = ("+", "-", "x")
MIN_OPS, MAX_OPS = 1, 12
MAX_MODULUS = 100  # the tokenizer carries one token per integer below this


def _apply(op: str, a: int, b: int, modulus: int) -> int:
    if op == "+":
        return (a + b) % modulus
    if op == "-":
        return (a - b) % modulus
    return (a * b) % modulus


def build_problem(operands: list[int], ops: list[str], modulus: int) -> Problem:
    """Deterministic problem from its operands and operators."""
    text = " ".join([str(operands[0])] + [f"{o} {b}" for o, b in zip(ops, operands[1:])])
    steps, acc = [], operands[0]
    for op, b in zip(ops, operands[1:]):
        nxt = _apply(op, acc, b, modulus)
        steps.append(f"{acc} {op} {b} = {nxt} ;")
        acc = nxt
    steps.append(f"ans {acc}")
    pid = hashlib.sha1(f"{modulus}|{text}".encode()).hexdigest()[:12]
    return Problem(id=f"m{modulus}-k{len(ops)}-{pid}", problem=text,
                   solution=" ".join(steps), answer=str(acc), steps=tuple(steps))


STEP_TOKENS = 6  # `acc op b = next ;`: the result is token 4 of its step


def parse_problem(text: str) -> tuple[list[int], list[str]]:
    """(operands, ops) of a problem text `a0 op1 a1 ...`."""
    words = text.split()
    return [int(w) for w in words[0::2]], words[1::2]


def erring_solution(problem: Problem, modulus: int, error_rate: float, rng: random.Random,
                    clean_tokens: int = 0) -> str:
    """The solution a solver that errs would write: each step result at token index >=
    clean_tokens (the part not copied from a shown reference) is, with probability
    error_rate, replaced by a uniformly drawn wrong value, and the chain goes on from it."""
    operands, ops = parse_problem(problem.problem)
    acc, steps = operands[0], []
    for i, (op, b) in enumerate(zip(ops, operands[1:])):
        nxt = _apply(op, acc, b, modulus)
        if i * STEP_TOKENS + 4 >= clean_tokens and rng.random() < error_rate:
            nxt = (nxt + rng.randrange(1, modulus)) % modulus
        steps.append(f"{acc} {op} {b} = {nxt} ;")
        acc = nxt
    return " ".join([*steps, f"ans {acc}"])


def sample_problem(rng: random.Random, num_ops: int, modulus: int) -> Problem:
    operands = [rng.randrange(modulus) for _ in range(num_ops + 1)]
    ops = [rng.choice(OPS) for _ in range(num_ops)]
    return build_problem(operands, ops, modulus)


@dataclass(frozen=True)
class SuiteSpec:
    """A held-out eval suite: `num_ops` operations, `size` problems."""

    name: str
    num_ops: int
    size: int


def check_range(num_ops: int, modulus: int) -> None:
    if not MIN_OPS <= num_ops <= MAX_OPS:
        raise ValueError(f"difficulty num_ops={num_ops} is outside [{MIN_OPS}, {MAX_OPS}]")
    if not 2 <= modulus <= MAX_MODULUS:
        raise ValueError(f"modulus={modulus} is outside [2, {MAX_MODULUS}]")


def _suite_seed(seed: int, name: str) -> int:
    # Eval suites use their own RNG stream, derived from the name, so adding a suite
    # never changes another suite's problems.
    return int(hashlib.sha1(f"eval|{seed}|{name}".encode()).hexdigest()[:8], 16)


def make_suite(name: str, num_ops: int, size: int = 100, modulus: int = 13,
               seed: int = 0) -> list[Problem]:
    """Held-out eval problems, distinct within the suite, deterministic by seed."""
    check_range(num_ops, modulus)
    rng = random.Random(_suite_seed(seed, name))
    seen: dict[str, Problem] = {}
    tries = 0
    while len(seen) < size:
        tries += 1
        if tries > 50 * size:
            raise ValueError(f"suite {name}: cannot draw {size} distinct problems at "
                             f"num_ops={num_ops}, modulus={modulus}")
        p = sample_problem(rng, num_ops, modulus)
        seen.setdefault(p.problem, p)
    return list(seen.values())


def train_stream(ops_range: tuple[int, int], modulus: int, seed: int,
                 exclude: set[str]) -> Iterator[Problem]:
    """Endless training problems; any problem text in `exclude` (eval suites) is skipped."""
    lo, hi = ops_range
    check_range(lo, modulus)
    check_range(hi, modulus)
    rng = random.Random(seed * 7919 + 17)
    while True:
        p = sample_problem(rng, rng.randint(lo, hi), modulus)
        if p.problem not in exclude:
            yield p


def take(stream: Iterator[Problem], n: int) -> list[Problem]:
    return [next(stream) for _ in range(n)]
