"""The simulated students of the policy test bed: one Case each, progress a known function of r.

python -m harness.policybed --cases high_easy,rising   # the table for some cases

A case's student has one number of state, its competence c (its validation accuracy). At
step t of T, with the batch's exposures r_i (one per problem; scalar sources repeat one r):

    dc = eta * (1 - c) * mean_i q(r_i, t),   q(r, t) = exp(-(r - r*(t))^2 / (2 width^2))
    r*(t) = r_start + (r_end - r_start) * t / T

so progress slows as the student improves ((1 - c): diminishing returns), and the exposure
that makes the most of a step is r*(t), which moves over training when r_end != r_start.
q <= 1, so 1 - c_T = (1 - c_0) prod_t (1 - eta mean q_t) is smallest when every step has
q = 1: the best schedule is r*(t) itself (harness/policybed/oracle.py).
Noise is set per case: `noise` is the sd of each measurement of P (a validation accuracy of
64 problems x 4 samples has a binomial sd of about 0.03; common random numbers make the
delta's noise smaller), `gain_noise` a relative sd on each step's gain (the student's own
randomness). eta is set so that the best schedule takes c from 0.2 to 0.8 in 150 steps.
Easy cases: the best r is fixed and far from the initial Beta's mean 0.5, the noise small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_STEPS = 150  # the default profile's train.steps (harness/config/train.py)
C0 = 0.2  # competence before training
ETA = math.log(4.0) / DEFAULT_STEPS  # best schedule: 1 - c falls 0.8 -> 0.2 over 150 steps


@dataclass(frozen=True)
class Case:
    """One simulated student: where its best exposure lies, how sharply, and how noisy."""

    name: str
    r_start: float  # r* at t = 0
    r_end: float  # r* at t = T
    width: float = 0.25  # how fast a step's value falls off away from r*
    noise: float = 0.002  # sd of one measurement of P
    gain_noise: float = 0.0  # relative sd of each step's gain
    easy: bool = False  # the ATESD test asserts the stated regret on these
    note: str = ""

    def r_star(self, t: int, total: int) -> float:
        """The exposure that makes the most of step t (1-based) of total."""
        return self.r_start + (self.r_end - self.r_start) * (t - 1) / max(total - 1, 1)

    def q(self, r: float, t: int, total: int) -> float:
        """The share of the best possible gain that exposure r makes of step t."""
        return math.exp(-((r - self.r_star(t, total)) ** 2) / (2 * self.width ** 2))


CASES = {c.name: c for c in (
    Case("high_easy", 0.85, 0.85, easy=True, note="best r 0.85 throughout, low noise"),
    Case("low_easy", 0.15, 0.15, easy=True, note="best r 0.15 throughout, low noise"),
    Case("rising", 0.1, 0.9, note="best r moves 0.1 -> 0.9 over training, low noise"),
    Case("falling", 0.9, 0.1, note="best r moves 0.9 -> 0.1 over training, low noise"),
    Case("high_realistic", 0.85, 0.85, noise=0.02, gain_noise=0.3,
         note="best r 0.85, P's noise of a 64 x 4 validation accuracy"),
)}
