"""A controller trained across runs on the policy test bed: the policy carried from run to run.

python -m harness.policybed --meta 40 --save-policy /tmp/policy.pt   # the table's meta rows

meta_train runs ATESD over `runs` training seeds of one case one after another, each run's
policy starting from the last one's end (its Adam state and advantage buffer start afresh, as in
a new run), at Adam lr META_LR, and returns the final policy weights. Why not the default 0.05:
within a run, progress falls, so late decisions get mostly negative normalised advantages,
which flatten the policy at late states; carried over 40 runs at lr 0.05 that can drive a
training stream's policy to Beta(1, 1) at late states (the softplus head saturated: no
gradient left), and the trained policy then depends on the stream (high_easy, two streams of
40 runs: frozen regret 0.38 and 0.04). At 0.02 both streams gave 0.04.
The table then runs ATESD on its own seeds with controller.init_policy set to those weights,
as a real run would load them, and with lr 0 (`frozen`: the policy used as trained) or the
default lr (`continued`). Training seeds start at TRAIN_SEED0, far from the table's seeds,
so the evaluation is on held-out seeds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from harness.policybed import sources
from harness.policybed.adapter import drive
from harness.policybed.cases import Case
from harness.policybed.student import SimStudent

TRAIN_SEED0 = 10_000
META_LR = 0.02  # the policy's Adam lr while trained across runs (module docstring)


def meta_train(case: Case, runs: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ATESD policy's weights after `runs` training runs of `case`, carried run to run."""
    weights: dict[str, Any] | None = None
    extra = (*extra, f"controller.lr={META_LR}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.pt"
        for k in range(runs):
            start = extra
            if weights is not None:
                torch.save(weights, path)
                start = (*extra, f"controller.init_policy={path}")
            student = SimStudent(case, sources.total_steps("atesd", start), TRAIN_SEED0 + k)
            source = sources.build("atesd", student, start)
            drive(source, student)
            weights = {name: w.clone() for name, w in source.learner.policy.state_dict().items()}
    assert weights is not None, "meta_train needs runs >= 1"
    return weights


def init_overrides(path: Path, frozen: bool) -> tuple[str, ...]:
    """The overrides that start ATESD from the weights saved at `path` (frozen: lr 0)."""
    return (f"controller.init_policy={path}", *(("controller.lr=0",) if frozen else ()))
