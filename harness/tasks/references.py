"""Reference-content controls: what the teacher is shown in place of a problem's own reference.

python -m harness.run reference=shuffled exposure=0.5 profile=smoke   # or corrupted, answer_only

`apply_reference` runs on a run's training problems only (harness/tasks/training.py). It replaces
`solution` and `steps` and keeps `id`, `problem` and `answer` (grading uses `answer`). The trainer
finds a problem's reference by id, so every occurrence of an id in the list gets the same one.
Every kind is deterministic given the run's seed.

- `own`: the problem's own reference, unchanged.
- `shuffled`: another training problem's reference. A seeded derangement over the list's
  distinct problems (by id): the references handed out are exactly the list's own, none goes to
  its own problem nor to one with the same problem or solution text. Synthetic task: a partner
  with the same number of steps when one exists (so the length matches exactly).
- `corrupted`: the own reference, wrong from a drawn step on (`corrupt_synthetic`, `corrupt_math`).
- `answer_only`: the final answer alone: `ans <answer>` (synthetic), `\\boxed{<answer>}` (math).
  It is shown whole at any r > 0 (Problem.whole_reference; harness/prompts/templates.py
  Prompts.shown_exposure): the paper's exposure 0 with the answer kept, so its runs do not
  depend on r > 0 (a token cut of the 2-token `ans <answer>` would show `ans` alone at r <= 0.5).

Known limit: the answer suffix of task.keep_answer, and the one forced after a reference cut to
task.max_teacher_tokens, show `problem.answer`, the problem's own answer; a shuffled or corrupted
reference followed by it would hand the teacher the true answer. keep_answer is refused with
those two kinds here; the forced suffix only acts on references longer than the budget.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace

from harness.config.gap import REFERENCES
from harness.config.task import TaskConfig
from harness.prompts.templates import STEP_JOIN
from harness.tasks.grading import extract_boxed
from harness.tasks.math_data import split_steps
from harness.tasks.problem import Problem
from harness.tasks.synthetic import _apply

Builder = Callable[[dict[str, Problem], TaskConfig, int], dict[str, Problem]]


def apply_reference(kind: str, problems: list[Problem], task: TaskConfig, seed: int) -> list[Problem]:
    """problems with the reference `kind` (harness/config/gap.py REFERENCES) in place of their own."""
    if kind not in REFERENCES:
        raise ValueError(f"reference={kind!r} is invalid: one of {REFERENCES}")
    if kind == "own":
        return list(problems)
    if task.keep_answer and kind in ("shuffled", "corrupted"):
        raise ValueError(f"reference={kind} with task.keep_answer=true would show the problem's own "
                         "answer after the replaced reference: set task.keep_answer=false")
    by_id = {p.id: p for p in sorted(problems, key=lambda p: p.id)}
    replaced = BUILDERS[kind](by_id, task, seed)
    return [replaced[p.id] for p in problems]


def _rng(*parts: object) -> random.Random:
    # A string seed hashes with sha512 (random.seed version 2): the same in every process,
    # whatever PYTHONHASHSEED is.
    return random.Random("|".join(str(p) for p in parts))


def _with_reference(problem: Problem, steps: tuple[str, ...], task: TaskConfig) -> Problem:
    return replace(problem, solution=STEP_JOIN[task.kind].join(steps), steps=steps)


# ---- shuffled ------------------------------------------------------------------------------
def shuffled(by_id: dict[str, Problem], task: TaskConfig, seed: int) -> dict[str, Problem]:
    """id -> the problem with another problem's reference (its solution and steps as they are)."""
    if len({p.solution for p in by_id.values()}) < 2:
        raise ValueError(f"reference=shuffled needs at least 2 training problems with distinct "
                         f"references, got {len(by_id)} problem(s)")
    length = (lambda p: len(p.steps)) if task.kind == "synthetic" else (lambda p: 0)
    donors = derangement(list(by_id.values()), length, _rng("shuffled", seed))
    return {pid: replace(by_id[pid], solution=d.solution, steps=d.steps) for pid, d in donors.items()}


def _clash(receiver: Problem, donor: Problem) -> bool:
    """Whether donor's reference would be receiver's own (same id, problem or solution text)."""
    return (receiver.id == donor.id or receiver.problem == donor.problem
            or receiver.solution == donor.solution)


def derangement(problems: list[Problem], length: Callable[[Problem], int],
                rng: random.Random) -> dict[str, Problem]:
    """receiver id -> donor: one random cycle per length class (each receives the next one's
    reference), the classes of one problem pooled into a cycle of their own, then clashes
    (same problem or solution text) swapped away. A permutation of the problems."""
    classes: dict[int, list[Problem]] = {}
    for p in problems:
        classes.setdefault(length(p), []).append(p)
    cycles = [rng.sample(ps, len(ps)) for _, ps in sorted(classes.items()) if len(ps) > 1]
    lone = [ps[0] for _, ps in sorted(classes.items()) if len(ps) == 1]
    if len(lone) > 1:
        cycles.append(rng.sample(lone, len(lone)))
    elif lone:  # a length nobody else has: it joins the cycle of the nearest length
        cycle = min(cycles, key=lambda c: abs(length(c[0]) - length(lone[0])))
        cycle.insert(rng.randrange(len(cycle) + 1), lone[0])
    donors = {c[i].id: c[(i + 1) % len(c)] for c in cycles for i in range(len(c))}
    _swap_clashes(donors, {p.id: p for p in problems}, length, rng)
    return donors


def _swap_clashes(donors: dict[str, Problem], by_id: dict[str, Problem],
                  length: Callable[[Problem], int], rng: random.Random) -> None:
    """Swap the donor of each receiver that clashes with another receiver's, the other receiver
    staying clash-free too (so each swap removes one clash), same length first."""
    for rid in list(donors):
        receiver = by_id[rid]
        if not _clash(receiver, donors[rid]):
            continue
        others = rng.sample([o for o in donors if o != rid], len(donors) - 1)
        others.sort(key=lambda o: length(by_id[o]) != length(receiver))
        for oid in others:
            if not _clash(receiver, donors[oid]) and not _clash(by_id[oid], donors[rid]):
                donors[rid], donors[oid] = donors[oid], donors[rid]
                break
        else:
            raise ValueError(f"reference=shuffled: every other reference shares problem {rid}'s "
                             "problem or solution text")


# ---- corrupted -----------------------------------------------------------------------------
def corrupted(by_id: dict[str, Problem], task: TaskConfig, seed: int) -> dict[str, Problem]:
    corrupt = corrupt_synthetic if task.kind == "synthetic" else corrupt_math
    return {pid: _with_reference(p, corrupt(p, task, _rng("corrupted", seed, pid)), task)
            for pid, p in by_id.items()}


Step = tuple[int, list[tuple[str, int]]]  # a step's first operand and its (op, operand) pairs


def parse_step(step: str) -> Step:
    """`a op b [op c ...] = r ;` (one or several ops: harness/tasks/gap.py leap) -> (a, pairs)."""
    words = step.split()
    lhs = words[:-3]
    if len(lhs) < 3 or len(lhs) % 2 == 0 or words[-3:-2] != ["="] or words[-1] != ";":
        raise ValueError(f"reference=corrupted: {step!r} is not a step `a op b = r ;`")
    return int(lhs[0]), [(op, int(b)) for op, b in zip(lhs[1::2], lhs[2::2], strict=True)]


def _run(acc: int, pairs: list[tuple[str, int]], modulus: int) -> int:
    for op, b in pairs:
        acc = _apply(op, acc, b, modulus)
    return acc


def _final(parsed: list[Step], j: int, value: int, modulus: int) -> int:
    """The chain's last value when step j's result is `value` and every later step computes on."""
    for _, pairs in parsed[j + 1:]:
        value = _run(value, pairs, modulus)
    return value


def corrupt_synthetic(problem: Problem, task: TaskConfig, rng: random.Random) -> tuple[str, ...]:
    """The steps with step j's result a wrong value v and every later step computing on from it
    (`v op b = next ;`), `ans` the corrupted final value. j is uniform over the operation steps
    whose error reaches the answer and v uniform over the wrong values that reach it: every step
    and every wrong value, unless a later `x 0` (or, for a composite modulus, a multiplier
    sharing a factor with it) maps them to the true answer; the last step always qualifies.
    So the corrupted answer is never the true one."""
    if not problem.steps or not problem.steps[-1].startswith("ans "):
        raise ValueError(f"reference=corrupted: problem {problem.id} has no steps ending in `ans r`")
    parsed = [parse_step(s) for s in problem.steps[:-1]]
    m = task.modulus
    true, acc = [], parsed[0][0]
    for _, pairs in parsed:
        acc = _run(acc, pairs, m)
        true.append(acc)
    wrong = {j: [v for v in range(m) if v != true[j] and _final(parsed, j, v, m) != true[-1]]
             for j in range(len(parsed))}
    j = rng.choice([j for j in wrong if wrong[j]])
    acc = rng.choice(wrong[j])
    steps = [*problem.steps[:j], _step_text(parsed[j][0], parsed[j][1], acc)]
    for _, pairs in parsed[j + 1:]:
        nxt = _run(acc, pairs, m)
        steps.append(_step_text(acc, pairs, nxt))
        acc = nxt
    return (*steps, f"ans {acc}")


def _step_text(acc: int, pairs: list[tuple[str, int]], result: int) -> str:
    return " ".join([str(acc), *(f"{op} {b}" for op, b in pairs), "=", str(result), ";"])


_NUMBER = re.compile(r"\d+")


def _bump_last_number(text: str, rng: random.Random) -> str:
    """text with its last integer raised by a drawn 1..9 (text as it is when it has none)."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return text
    m = found[-1]
    return f"{text[:m.start()]}{int(m.group()) + rng.randint(1, 9)}{text[m.end():]}"


def wrong_answer(answer: str, rng: random.Random) -> str:
    """answer with its last integer raised by 1..9 (`5` -> `8`, `\\frac{5}{6}` -> `\\frac{5}{9}`);
    `<answer>+1` when it holds no digit."""
    bumped = _bump_last_number(answer, rng)
    return bumped if bumped != answer else f"{answer}+1"


def _set_last_boxed(text: str, content: str) -> str:
    inner = extract_boxed(text)
    start = text.rfind("\\boxed{") + len("\\boxed{")
    return f"{text[:start]}{content}{text[start + len(inner):]}"


def corrupt_math(problem: Problem, task: TaskConfig, rng: random.Random) -> tuple[str, ...]:
    """The reference's steps (paragraphs, harness/tasks/math_data.py split_steps; joined back with
    STEP_SEP) with, from a uniformly drawn step j on, the last integer of each step raised by a
    drawn 1..9, then the last \\boxed{} of the reference set to `wrong_answer` (appended as a
    step of its own when the reference has none). An empty reference stays empty."""
    steps = list(problem.steps or split_steps(problem.solution))
    if not steps:
        return ()
    j = rng.randrange(len(steps))
    wrong = wrong_answer(problem.answer, rng)
    steps = steps[:j] + [_bump_last_number(s, rng) for s in steps[j:]]
    boxed = [i for i, s in enumerate(steps) if extract_boxed(s) is not None]
    if boxed:
        steps[boxed[-1]] = _set_last_boxed(steps[boxed[-1]], wrong)
    else:
        steps.append(f"\\boxed{{{wrong}}}")
    return tuple(steps)


# ---- answer_only ---------------------------------------------------------------------------
def answer_only(by_id: dict[str, Problem], task: TaskConfig, seed: int) -> dict[str, Problem]:
    """The final answer alone, one step: `ans <answer>` or `\\boxed{<answer>}` (seed unused)."""
    shown = "ans {}" if task.kind == "synthetic" else "\\boxed{{{}}}"
    return {pid: replace(_with_reference(p, (shown.format(p.answer),), task), whole_reference=True)
            for pid, p in by_id.items()}


BUILDERS: dict[str, Builder] = {"shuffled": shuffled, "corrupted": corrupted, "answer_only": answer_only}
