"""Graders: exact final answer for the synthetic task, last \\boxed{} + math-verify for real math.

python -c "from harness.tasks.grading import grade; print(grade('synthetic', '1 + 2 = 3 ; ans 3', '3'))"
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ANS_RE = re.compile(r"\bans\s+(\S+)")


def extract_synthetic(completion: str) -> str | None:
    """The token after the last `ans` marker, or None when the model never answered."""
    found = _ANS_RE.findall(completion)
    return found[-1] if found else None


def grade_synthetic(completion: str, gold: str) -> tuple[str | None, bool]:
    pred = extract_synthetic(completion)
    return pred, pred is not None and pred == gold.strip()


def extract_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, with nested braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def grade_math(completion: str, gold: str) -> tuple[str | None, bool]:
    """math-verify on the last boxed answer, in a worker process with a per-sample deadline
    (harness/tasks/safe_verify.py: safe in any thread or process)."""
    from harness.tasks.safe_verify import verify_answer

    pred = extract_boxed(completion)
    if pred is None:
        return None, False
    return pred, verify_answer(gold, pred)


GRADERS: dict[str, Callable[[str, str], tuple[str | None, bool]]] = {
    "synthetic": grade_synthetic,
    "math": grade_math,
}


def grade(kind: str, completion: str, gold: str) -> tuple[str | None, bool]:
    if kind not in GRADERS:
        raise ValueError(f"unknown grader {kind!r}; choose one of {sorted(GRADERS)}")
    return GRADERS[kind](completion, gold)
