"""ATESD controller end to end on the smoke profile: a run, the progress measure's RNG, the
controller and baseline ablations, resume (the units: tests/test_controller.py).

python -m pytest -q tests/test_controller_runs.py
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from harness.config.settings import compose_resolved
from harness.run import run
from harness.runs.rundir import read_jsonl
from harness.runs.schema import CONTROLLER_ROW
from harness.sources.controller import FEATURES, ControllerExposure
from harness.sources.learning_progress import ref_nll, val_accuracy


def _run(tmp_path, *overrides):
    cfg, resolved_yaml = compose_resolved(["profile=smoke", f"results={tmp_path}", *overrides])
    run(cfg, resolved_yaml)
    return tmp_path / cfg.run_name, cfg


def _rows(folder, kind):
    return [r for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] == kind]


def _check_controller_run(folder, cfg) -> list[dict]:
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    train, ctrl = _rows(folder, "train"), _rows(folder, "controller")
    steps, hold = cfg.train.steps, cfg.controller.hold
    assert [r["step"] for r in train] == list(range(1, steps + 1))
    assert [r["step"] for r in ctrl] == [s for s in range(1, steps + 1) if s % hold == 0 or s == steps]
    for c in ctrl:  # the window's steps used the window's sampled exposure
        start = c["step"] - hold
        assert {t["exposure"] for t in train if start < t["step"] <= c["step"]} == {c["ctrl_r"]}
        assert c["ctrl_a"] >= 1 and c["ctrl_b"] >= 1 and 0 < c["ctrl_r"] < 1
        for key in ("window", "ctrl_progress", "ctrl_delta", "ctrl_baseline",
                    *[f"ctrl_state_{n}" for n in FEATURES]):
            assert key in c, key
        assert set(c) <= set(CONTROLLER_ROW), set(c) - set(CONTROLLER_ROW)  # all documented
    return ctrl


def test_atesd_smoke_run(tmp_path, smoke_base):
    folder, cfg = _run(tmp_path, "method=atesd")
    assert folder.name == "atesd-s0"
    ctrl = _check_controller_run(folder, cfg)
    assert len(ctrl) == 2 and "ctrl_policy_loss" in ctrl[1]  # W = 2: decision 0 credited at window 1
    assert ctrl[1]["ctrl_credited"] == 0
    assert (folder / "eval.json").is_file()


def test_measuring_progress_leaves_the_training_rng_alone(smoke_base):
    """P samples with its own fixed seed under a forked RNG: training draws what it would have."""
    from harness.config.settings import compose
    from harness.models.tiny import load
    from harness.tasks.datasets import TaskData

    smoke_cfg = compose(["profile=smoke", "method=atesd"])  # P reads controller.*

    model, tok = load(smoke_base)
    problems = TaskData(smoke_cfg.task).validation
    torch.manual_seed(123)
    before = torch.get_rng_state()
    p1 = val_accuracy(model, tok, smoke_cfg, problems)
    assert torch.equal(torch.get_rng_state(), before)
    assert val_accuracy(model, tok, smoke_cfg, problems) == p1  # same draws every window
    assert 0.0 <= p1 <= 1.0
    nll = ref_nll(model, tok, smoke_cfg, problems)
    assert math.isfinite(nll) and nll > 0
    small = replace(smoke_cfg, controller=replace(smoke_cfg.controller, progress_batch_size=3))
    assert ref_nll(model, tok, small, problems) == pytest.approx(nll, rel=1e-5)  # padding is inert


CONTROLLER_ABLATIONS = {  # ablation -> what it must have set
    "immediate_reward": {"credit_windows": 1, "gamma": 0.0, "advantage": "baseline"},
    "loss_reward": {"progress": "train_loss", "credit_windows": 1},
    "nll_progress": {"progress": "ref_nll"},
    "no_hold": {"hold": 1},
    "bandit": {"state": "none"},
    "paper_controller": {"credit_windows": 3, "gamma": 0.9, "advantage": "baseline"},
    "frozen_policy": {"lr": 0.0},
    "shuffled_rewards": {"shuffle_rewards": 5},
}
NEW_ABLATIONS = ("paper_controller", "frozen_policy", "shuffled_rewards")  # unit-tested in test_controller.py


@pytest.mark.parametrize("ablation", [pytest.param(a, marks=pytest.mark.slow) if a in NEW_ABLATIONS else a
                                      for a in sorted(CONTROLLER_ABLATIONS)])
def test_controller_ablation_runs(tmp_path, smoke_base, ablation):
    folder, cfg = _run(tmp_path, f"ablation={ablation}")
    assert folder.name == f"atesd-{ablation}-s0"
    for key, value in CONTROLLER_ABLATIONS[ablation].items():
        assert getattr(cfg.controller, key) == value
    ctrl = _check_controller_run(folder, cfg)
    if ablation == "bandit":
        assert all(c["ctrl_state_progress"] == 0.0 for c in ctrl)
    if ablation == "nll_progress":
        assert all(c["ctrl_progress"] < 0 for c in ctrl)  # minus an NLL
    if ablation in ("immediate_reward", "no_hold"):
        assert any("ctrl_policy_loss" in c for c in ctrl)


@pytest.mark.parametrize("ablation,name,want", [
    ("random", "random-s0", None),
    pytest.param("initial_beta", "random-initial_beta-s0", None, marks=pytest.mark.slow),
    ("linear_up", "schedule-linear_up-s0", [0.0, 1 / 3, 2 / 3, 1.0]),
    ("linear_down", "schedule-linear_down-s0", [1.0, 2 / 3, 1 / 3, 0.0]),
    ("step", "schedule-step-s0", [0.0, 0.0, 1.0, 1.0]),
    ("fixed_best", "opsd-r1-s0", [1.0] * 4),
])
def test_baseline_ablation_runs(tmp_path, smoke_base, ablation, name, want):
    folder, cfg = _run(tmp_path, f"ablation={ablation}")
    assert folder.name == name
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    exposures = [r["exposure"] for r in _rows(folder, "train")]
    if want is None:  # random (either draw): held for controller.hold steps, re-drawn after
        h = cfg.controller.hold
        assert all(exposures[i] == exposures[i - i % h] for i in range(len(exposures)))
        assert exposures[0] != exposures[h]
    else:
        assert exposures == pytest.approx(want)
    assert not _rows(folder, "controller")


def test_resume_restores_the_controller(tmp_path, smoke_base, monkeypatch):
    # windows every step (an update before the checkpoint); P from the weights (NLL), not 0/8 correct
    overrides = ["method=atesd", "controller.hold=1", "controller.progress=ref_nll"]
    full, _ = _run(tmp_path / "full", *overrides)

    original = ControllerExposure.step_end

    def crash_at_3(self, step, stats):
        if step == 3:
            raise RuntimeError("preempted")
        return original(self, step, stats)

    monkeypatch.setattr(ControllerExposure, "step_end", crash_at_3)
    with pytest.raises(RuntimeError, match="preempted"):
        _run(tmp_path / "cut", *overrides)
    cut = tmp_path / "cut" / "atesd-s0"
    assert (cut / "checkpoints" / "checkpoint-2" / "exposure_source.pt").is_file()
    saved = torch.load(cut / "checkpoints" / "checkpoint-2" / "exposure_source.pt", weights_only=False)
    assert saved["window"] == 2 and saved["learner"]["optim"]["state"]  # Adam has stepped

    monkeypatch.setattr(ControllerExposure, "step_end", original)
    restored = []
    original_load = ControllerExposure.load_state_dict
    monkeypatch.setattr(ControllerExposure, "load_state_dict",
                        lambda self, s: (restored.append(s), original_load(self, s))[1])
    _run(tmp_path / "cut", *overrides)
    assert len(restored) == 1 and restored[0]["decision"] == saved["decision"]

    def strip(folder, kind):
        return [{k: v for k, v in r.items() if k not in ("wall_time", "ctrl_seconds")}
                for r in _rows(folder, kind)]

    assert [r["step"] for r in _rows(cut, "train")] == [1, 2, 3, 4]  # exactly once
    assert strip(cut, "controller") == strip(full, "controller")
    assert strip(cut, "train") == strip(full, "train")  # same rollouts, losses, exposures
