"""source=per_problem: each problem's exposure from the student's own record on it.

python -m harness.run source=per_problem profile=smoke

The rule (a scaffold that fades): after each step, every record key k the step's rollouts
touched moves by r_k += up * (share of its rollouts that failed) - down * (share that
succeeded), clipped to per_problem.bounds. A problem the student fails gets more of the
reference next time, one it solves gets less, until it solves it with none. Keys not seen
yet start at r_init. Why this direction and not the paper's "hard problems prefer low
exposure": on the embedded default full exposure wins on every suite (results/README.md,
claim (b)), so more help where the student fails is where exposure pays; `up` and `down`
set how fast the scaffold moves (up = down: a failure and a success cancel).

The record's key: `id` (the problem itself: for datasets whose problems recur over epochs)
or `steps` (the number of reference steps, the difficulty class: the embedded task draws a
fresh problem every time, so an id is never seen twice and `id` would leave every problem
at r_init). The record is checkpointed and resumes exactly; with several processes rank 0
keeps it and decides for every rank (harness/sources/shared.py). Each step writes one
`kind: exposure` row per problem (its exposure and its number of reference steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.fields import F, in_unit, require
from harness.registry import Component, register
from harness.sources.base import ExposureSource

KEYS = ("steps", "id")


@dataclass
class PerProblemConfig:
    key: str = F("steps", f"what the record is kept by, one of {KEYS}: steps (the number of "
                          "reference steps; the embedded task never repeats a problem) | id")
    r_init: float = F(0.5, "exposure of a key not seen yet")
    bounds: list[float] = F([0.0, 1.0], "[lowest, highest] exposure a key can reach")
    up: float = F(0.1, "rise per step of a key whose rollouts all failed")
    down: float = F(0.1, "fall per step of a key whose rollouts all succeeded")

    def __post_init__(self) -> None:
        require(self.key in KEYS, "per_problem.key", self.key, f"one of {KEYS}")
        for name in ("r_init", "up", "down"):
            in_unit(f"per_problem.{name}", getattr(self, name))
        lo_hi = list(self.bounds)
        require(len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1] <= 1, "per_problem.bounds", lo_hi,
                "[lowest, highest] with 0 <= lowest <= highest <= 1")
        require(lo_hi[0] <= self.r_init <= lo_hi[1], "per_problem.r_init", self.r_init,
                f"within per_problem.bounds {lo_hi}")


def update(record: dict[str, float], outcomes: Sequence[tuple[str, bool]],
           pc: PerProblemConfig) -> dict[str, float]:
    """The record after one step's graded rollouts [(key, correct)] (a new dict)."""
    tally: dict[str, list[int]] = {}
    for key, correct in outcomes:
        tally.setdefault(key, [0, 0])[0 if correct else 1] += 1
    out = dict(record)
    for key, (wins, fails) in tally.items():
        n = wins + fails
        r = out.get(key, pc.r_init) + pc.up * fails / n - pc.down * wins / n
        out[key] = min(max(r, pc.bounds[0]), pc.bounds[1])
    return out


class PerProblemExposure(ExposureSource):
    per_problem = True
    wants_outcomes = True

    def __init__(self, total_steps: int, pc: PerProblemConfig) -> None:
        super().__init__(total_steps)
        self.pc = pc
        self.record_r: dict[str, float] = {}
        self.pending: list[tuple[str, bool]] = []
        self.keys: dict[str, str] = {}  # problem id -> record key

    def attach(self, problems: dict[str, Any]) -> None:
        self.keys = {pid: pid if self.pc.key == "id" else str(len(p.steps)) for pid, p in problems.items()}

    def key(self, problem_id: str) -> str:
        return self.keys.get(problem_id, problem_id)

    def exposures(self, problem_ids: Sequence[str]) -> list[float]:
        return [self.record_r.get(self.key(pid), self.pc.r_init) for pid in problem_ids]

    def record(self, problem_ids: Sequence[str], correct: Sequence[bool]) -> None:
        self.pending += [(self.key(pid), bool(c)) for pid, c in zip(problem_ids, correct, strict=True)]

    def step_end(self, step: int, stats: dict[str, Any]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        self.record_r, self.pending = update(self.record_r, self.pending, self.pc), []
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "record": dict(self.record_r), "pending": list(self.pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.record_r = state["step"], dict(state["record"])
        self.pending = [(k, bool(c)) for k, c in state["pending"]]


register(Component(kind="source", name="per_problem", label="Per-problem r", rank=7,
                   config_key="per_problem", config=PerProblemConfig,
                   build=lambda cfg, evaluator=None: PerProblemExposure(cfg.train.steps, cfg.per_problem)))
