"""One simulated student of the policy test bed: its dynamics and the signals a run would log.

python -m pytest -q tests/test_policybed.py   # the formulas: harness/policybed/cases.py

Each step trains on a batch of BATCH fresh problems (like the embedded task, an id never
recurs) of DIFFICULTIES reference steps in turn. What the sources read, as a real run
logs it:
  train row      loss and mismatch_kl_st = KL(r, c) at the batch's mean exposure (with 10%
                 relative noise), rollout_accuracy (the graded batch), student_entropy = 1 - c,
                 student_confidence = c
  probe rows     KL(r, c) at r = 0, .25, .5, .75, 1 (target_mismatch), measured every step
  outcomes       problem of d steps solved with probability c^(d/2) (per_problem)
  P              c + N(0, noise) (val_accuracy; minus ref_nll reads the same P)
  probe NLL      -log c; G(r) = -2 + 1.5 r, the teacher's copy term rising with r (reward=paper)
KL(r, c) = 0.35 r^2 (1 - c) / (1 - c_0): the embedded default's step-1 probe (0 / .025 / .08 /
.114 / .345 at r = 0 .. 1, results/README.md) is about 0.35 r^2, and the gap closes as c rises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from harness.policybed.cases import C0, ETA, Case

BATCH = 8
DIFFICULTIES = (1, 2, 3, 4)
PROBE_EXPOSURES = (0.0, 0.25, 0.5, 0.75, 1.0)
KL_AT_FULL = 0.35


@dataclass
class SimStudent:
    """Competence c, trained one step at a time by the batch's exposures."""

    case: Case
    total_steps: int
    seed: int
    c: float = C0
    q_steps: list[float] = field(default_factory=list)  # the share of the best gain each step made
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 0xBED])

    # ---- the problems --------------------------------------------------------------------------
    @staticmethod
    def problem_ids(step: int) -> list[str]:
        return [f"s{step}-{i}" for i in range(BATCH)]

    @staticmethod
    def difficulty(problem_id: str) -> int:
        return DIFFICULTIES[int(problem_id.rsplit("-", 1)[1]) % len(DIFFICULTIES)]

    def problems(self) -> dict[str, SimpleNamespace]:
        """Every problem of the run, by id, shaped as per_problem reads them (`.steps`)."""
        return {pid: SimpleNamespace(steps=[""] * self.difficulty(pid))
                for step in range(1, self.total_steps + 1) for pid in self.problem_ids(step)}

    # ---- a training step -----------------------------------------------------------------------
    def kl(self, r: float) -> float:
        return KL_AT_FULL * r * r * (1.0 - self.c) / (1.0 - C0)

    def outcomes(self, problem_ids: list[str]) -> list[bool]:
        """Each rollout graded: a problem of d steps is solved with probability c^(d/2)."""
        return [bool(self.rng.random() < self.c ** (self.difficulty(pid) / 2)) for pid in problem_ids]

    def probe_rows(self) -> list[dict[str, float]]:
        return [{"probe_exposure": r, "mismatch_kl_st": self.kl(r)} for r in PROBE_EXPOSURES]

    def train(self, step: int, rs: list[float], correct: list[bool]) -> dict[str, float]:
        """One optimiser step at exposures rs: the train row (before the update), then c moves."""
        r_mean = float(np.mean(rs))
        loss = self.kl(r_mean) * (1.0 + 0.1 * self.rng.standard_normal())
        row = {"step": step, "loss": loss, "mismatch_kl_st": loss, "exposure": r_mean,
               "rollout_accuracy": float(np.mean(correct)), "student_entropy": 1.0 - self.c,
               "student_confidence": self.c}
        q = float(np.mean([self.case.q(r, step, self.total_steps) for r in rs]))
        gain = ETA * q * (1.0 + self.case.gain_noise * self.rng.standard_normal())
        self.c = min(1.0, self.c + (1.0 - self.c) * max(gain, 0.0))
        self.q_steps.append(q)
        return row

    # ---- measurements --------------------------------------------------------------------------
    def measure_progress(self) -> float:
        return self.c + self.case.noise * float(self.rng.standard_normal())

    def probe_nll(self) -> float:
        return -math.log(max(self.c, 1e-6))

    @staticmethod
    def teacher_logp(r: float) -> float:
        return -2.0 + 1.5 * r
