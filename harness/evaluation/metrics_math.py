"""Average@k, its standard error over problems, and the unbiased pass@k estimator.

python -c "from harness.evaluation.metrics_math import pass_at_k; print(pass_at_k(12, 3, 4))"
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def average_at_k(correct_P_K: Sequence[Sequence[bool]]) -> tuple[float, float]:
    """Mean over problems of the per-problem mean correctness, and its standard error.

    SE is the sample standard deviation of per-problem means over sqrt(#problems)
    (0 with a single problem).
    """
    if not correct_P_K:
        raise ValueError("average_at_k needs at least one problem")
    per_problem = [sum(map(bool, row)) / len(row) for row in correct_P_K]
    n = len(per_problem)
    mean = sum(per_problem) / n
    if n < 2:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in per_problem) / (n - 1)
    return mean, math.sqrt(var / n)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al. 2021, HumanEval)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(correct_P_K: Sequence[Sequence[bool]], k: int) -> float:
    return sum(pass_at_k(len(r), sum(map(bool, r)), k) for r in correct_P_K) / len(correct_P_K)
