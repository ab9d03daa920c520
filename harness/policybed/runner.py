"""Run bed sources over many seeds and summarise them against the oracle.

python -m harness.policybed --seeds 20

Per source and case, over seeds:
  regret      the oracle's normalised regret of each run (harness/policybed/oracle.py): the share
              of the best schedule's gain over c_0 the run missed; mean and a 95% t interval
  to 10%      decisions until the source is within 10% of the best fixed r: the first window k
              (of controller.hold steps) from which on the run's q summed over the remaining
              windows is at least 0.9 times the best fixed r's (q: the share of the best gain a
              step made); the median over seeds, and the share of seeds that got there at all.
              0: from the start; a source that only gets there in its last windows needed ~K.
  late r      the mean batch exposure of the last third of training: mean (sd over seeds);
              its sd shows whether seeds agree (the review's random-walk test, science.md 4b)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.policybed import sources
from harness.policybed.adapter import Trajectory, drive
from harness.policybed.cases import Case
from harness.policybed.oracle import Oracle, final_competence, oracle
from harness.policybed.student import SimStudent

WITHIN = 0.9  # "within 10% of the best fixed r"


@dataclass(frozen=True)
class Summary:
    """One source on one case, over seeds."""

    source: str
    case: str
    regrets: tuple[float, ...]
    to_within: tuple[int | None, ...]  # per seed: decisions to within 10%, None if never
    late_r: tuple[float, ...]

    @property
    def regret(self) -> float:
        return float(np.mean(self.regrets))

    @property
    def regret_ci(self) -> float:
        """Half-width of the 95% t interval of the mean regret (0 with one seed)."""
        n = len(self.regrets)
        if n < 2:
            return 0.0
        return float(stats.t.ppf(0.975, n - 1) * np.std(self.regrets, ddof=1) / np.sqrt(n))

    @property
    def decisions(self) -> float | None:
        """Median decisions to within 10% over the seeds that got there (None: none did)."""
        got = [k for k in self.to_within if k is not None]
        return float(np.median(got)) if got else None

    @property
    def reached(self) -> float:
        return sum(k is not None for k in self.to_within) / len(self.to_within)


def decisions_to_within(q_T: Sequence[float], best_fixed_q_T: Sequence[float], hold: int) -> int | None:
    """First window k from which on the run makes >= WITHIN of the best fixed r's gain share."""
    q = np.asarray(q_T, dtype=float)
    best = np.asarray(best_fixed_q_T, dtype=float)
    starts = range(0, len(q), hold)
    for k, s in enumerate(starts):
        if q[s:].sum() >= WITHIN * best[s:].sum():
            return k
    return None


def run_one(name: str, case: Case, seed: int, extra: tuple[str, ...] = ()) -> Trajectory:
    student = SimStudent(case, sources.total_steps(name, extra), seed)
    return drive(sources.build(name, student, extra), student)


def summarise(name: str, case: Case, seeds: Sequence[int], extra: tuple[str, ...] = (),
              orc: Oracle | None = None) -> Summary:
    total, hold = sources.total_steps(name, extra), sources.hold(extra)
    orc = orc or oracle(case, total)
    regrets, to_within, late = [], [], []
    for seed in seeds:
        traj = run_one(name, case, seed, extra)
        regrets.append(orc.regret(final_competence(traj.q_steps)))
        to_within.append(decisions_to_within(traj.q_steps, orc.best_fixed_q, hold))
        late.append(float(np.mean(traj.r_steps[-(total // 3):])))
    return Summary(name, case.name, tuple(regrets), tuple(to_within), tuple(late))
