"""Interleaved rounds: every way once per round, in turn, so machine noise hits all alike.

python -m harness.bench --only step --rounds 5   # every benchmark times through `interleave`

A round runs each way once; the order rotates from round to round so that no way always
runs first (or right after the same neighbour). Warm-up rounds run first, untimed: the
first call of a torch path pays one-off costs (kernel selection, allocator growth).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleave(ways: dict[str, Callable[[int], object]], rounds: int,
               warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each call of each way, per round; way(i) gets the round index i
    (warm-up rounds get negative indices) so that the ways of one round can share a seed."""
    names = list(ways)
    for i in range(-warmup, 0):
        for name in names:
            ways[name](i)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            ways[name](i)
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def paired_median(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] - b[i]: the cost of what a adds to b, measured within
    each round so that slow phases of the machine cancel."""
    return statistics.median(x - y for x, y in zip(a, b, strict=True))
