"""The oracle of the policy test bed: the best fixed r and the best schedule, from the known function.

python -m harness.policybed   # the table's oracle rows

A run's final competence is a function of the shares q_t of the best gain its steps made
(harness/policybed/cases.py): 1 - c_T = (1 - c_0) prod_t (1 - eta q_t), taken without the
gain noise, so that regret measures the exposures chosen and nothing else. The best schedule
plays r*(t) at every step (q_t = 1, the largest each factor can be); the best fixed r is the
best of a 0.001 grid (q_t of a fixed r is known at every step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.policybed.cases import C0, ETA, Case

GRID = np.linspace(0.0, 1.0, 1001)


def final_competence(q_T: Sequence[float] | np.ndarray) -> float:
    """c_T of a run whose steps made the shares q_t of the best gain (no gain noise)."""
    return float(1.0 - (1.0 - C0) * np.prod(1.0 - ETA * np.asarray(q_T, dtype=float)))


def fixed_q(case: Case, r: float, total_steps: int) -> np.ndarray:
    """q_t of exposure r held for the whole run."""
    return np.array([case.q(r, t, total_steps) for t in range(1, total_steps + 1)])


@dataclass(frozen=True)
class Oracle:
    """What the known function allows: the best schedule's and the best fixed r's c_T."""

    best_schedule_c: float
    best_fixed_r: float
    best_fixed_c: float
    best_fixed_q: np.ndarray  # q_t of the best fixed r, per step

    def regret(self, c_final: float) -> float:
        """Normalised regret: the share of the best schedule's gain over c_0 that a run missed."""
        return (self.best_schedule_c - c_final) / (self.best_schedule_c - C0)


def oracle(case: Case, total_steps: int) -> Oracle:
    steps = np.arange(1, total_steps + 1)
    r_star = np.array([case.r_star(int(t), total_steps) for t in steps])
    q_GT = np.exp(-((GRID[:, None] - r_star[None, :]) ** 2) / (2 * case.width ** 2))
    c_G = 1.0 - (1.0 - C0) * np.prod(1.0 - ETA * q_GT, axis=1)
    best = int(np.argmax(c_G))
    return Oracle(best_schedule_c=final_competence(np.ones(total_steps)), best_fixed_r=float(GRID[best]),
                  best_fixed_c=float(c_G[best]), best_fixed_q=q_GT[best])
