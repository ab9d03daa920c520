"""Drive one exposure source through a simulated run, feeding it what it reads in a real run.

python -m pytest -q tests/test_policybed.py

The order within a step is the trainers' (harness/trainers/hooks.py write_step): the batch's
exposures are asked for, its rollouts graded (record, for sources that want outcomes), the
step trained, the probe rows handed in (observe_probe, sources that need the probe), then
step_end with the train row. ATESD reads P, the probe NLL and G through SimMeasures, the
controller's measures seam (harness/sources/controller.py Measures).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

from harness.policybed.student import SimStudent
from harness.sources.base import ExposureSource


class SimMeasures:
    """The controller's measures (P, probe NLL, G) read off a simulated student."""

    def __init__(self, student: SimStudent) -> None:
        self.student = student

    def progress(self) -> float:
        return self.student.measure_progress()

    def probe_nll(self) -> float:
        return self.student.probe_nll()

    def teacher_logp(self, r: float) -> float:
        return self.student.teacher_logp(r)


@dataclass
class Trajectory:
    """What one run did: the batch-mean exposure and q of each step, the rows the source logged."""

    r_steps: list[float] = field(default_factory=list)
    q_steps: list[float] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def drive(source: ExposureSource, student: SimStudent) -> Trajectory:
    """Run `source` over the student's whole training; the student is left trained."""
    # target_mismatch prints a job-log line per decision: 30 per run, thousands per table
    with contextlib.redirect_stdout(io.StringIO()):
        return drive_quietly(source, student)


def drive_quietly(source: ExposureSource, student: SimStudent) -> Trajectory:
    out = Trajectory()
    source.attach(student.problems())
    source.bind(None, None)
    for step in range(1, student.total_steps + 1):
        ids = student.problem_ids(step)
        rs = source.exposures(ids)
        correct = student.outcomes(ids)
        if source.wants_outcomes:
            source.record(ids, correct)
        probe = student.probe_rows()
        row = student.train(step, rs, correct)
        source.observe_probe(step, probe if source.needs_probe else [])
        out.rows += [{"step": step, **r} for r in source.step_end(step, row)]
        out.r_steps.append(row["exposure"])
    out.q_steps = list(student.q_steps)
    return out
