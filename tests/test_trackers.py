"""Trackers: metrics rows -> namespaced scalars, train.report_to checks, TensorBoard end to end.

python -m pytest -q tests/test_trackers.py

The end-to-end tests read the run's event files back with TensorBoard's own
EventAccumulator and compare every scalar with the row of metrics.jsonl it came from.
"""

import os
import subprocess
import sys

import pytest

from harness.config.schema import ConfigError
from harness.config.settings import compose, compose_resolved
from harness.run import run
from harness.runs.rundir import read_json, read_jsonl
from harness.trainers.trackers import (
    eval_summary_scalars,
    parse_report_to,
    read_tensorboard,
    scalars,
    trl_report_to,
)


def test_train_row_scalars():
    row = {"step": 3, "kind": "train", "exposure": 0.5, "loss": 0.2, "mismatch_kl_st": 0.1,
           "mismatch_kl_ts": 0.3, "teacher_entropy": 1.0, "student_entropy": 1.5,
           "rollout_accuracy": 0.25, "completion_length": 12.0, "lr": 1e-4, "grad_norm": None,
           "wall_time": 4.0}
    assert scalars(row) == {
        "exposure/r": 0.5, "train/loss": 0.2, "mismatch/kl_st": 0.1, "mismatch/kl_ts": 0.3,
        "entropy/teacher": 1.0, "entropy/student": 1.5, "train/rollout_accuracy": 0.25,
        "train/completion_length": 12.0, "train/lr": 1e-4, "train/wall_time": 4.0,
    }  # grad_norm None: left out, not logged as 0


def test_probe_row_scalars_name_the_exposure():
    for r, tag in [(0.5, "r0.5"), (0.0, "r0"), (1.0, "r1"), (0.25, "r0.25")]:
        row = {"step": 2, "kind": "probe", "probe_exposure": r, "mismatch_kl_st": 0.1, "mismatch_kl_ts": 0.2}
        assert scalars(row) == {f"probe/{tag}/kl_st": 0.1, f"probe/{tag}/kl_ts": 0.2}


def test_controller_row_scalars():
    row = {"step": 4, "kind": "controller", "window": 1, "ctrl_r": 0.3, "ctrl_a": 1.2, "ctrl_b": 2.0,
           "ctrl_state_mismatch": 0.05, "ctrl_delta": None, "ctrl_reward": 0.01, "ctrl_credited": 0}
    assert scalars(row) == {"controller/window": 1.0, "controller/r": 0.3, "controller/a": 1.2,
                            "controller/b": 2.0, "controller/state_mismatch": 0.05,
                            "controller/reward": 0.01, "controller/credited": 0.0}


def test_eval_row_and_eval_json_scalars():
    row = {"step": 2, "kind": "eval", "seconds": 1.5, "eval_easy_k3": 0.5, "eval_hard_k5": 0.0}
    assert scalars(row) == {"eval/seconds": 1.5, "eval/easy_k3/average": 0.5, "eval/hard_k5/average": 0.0}
    summary = {"suites": {"easy_k3": {"average": 0.5, "se": 0.1, "k": 2, "num_problems": 4,
                                      "pass@1": 0.5, "pass@2": 0.75}}, "k": 2, "seconds": 3.0}
    assert eval_summary_scalars(summary) == {
        "eval/easy_k3/average": 0.5, "eval/easy_k3/se": 0.1, "eval/easy_k3/pass_at_1": 0.5,
        "eval/easy_k3/pass_at_2": 0.75, "eval/seconds": 3.0}


def test_report_to_lists_and_bad_values():
    assert parse_report_to("none") == []
    assert parse_report_to("tensorboard") == ["tensorboard"]
    assert parse_report_to(" tensorboard , none") == ["tensorboard"]
    assert trl_report_to("none") == "none" and trl_report_to("tensorboard") == ["tensorboard"]
    with pytest.raises(ConfigError) as err:
        compose(["profile=smoke", "train.report_to=tensorbord"])
    msg = str(err.value)
    assert "\n" not in msg and "train.report_to='tensorbord'" in msg and "tensorboard" in msg


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_report_to_a_tracker_not_installed_is_one_line(name):
    try:
        __import__(name)
        pytest.skip(f"{name} is installed")
    except ImportError:
        pass
    with pytest.raises(ConfigError) as err:
        # quoted: unquoted, Hydra reads a comma as a sweep over values
        compose(["profile=smoke", f'train.report_to="tensorboard,{name}"'])
    assert "\n" not in str(err.value) and f"{name} is not installed" in str(err.value)
    assert "train.report_to" in str(err.value)


def assert_tensorboard_equals_metrics(folder, last_step):
    """Every metrics.jsonl row's scalars are in the event files once, at its step, same value."""
    board = read_tensorboard(folder)
    want: dict[str, list[tuple[int, float]]] = {}
    for row in read_jsonl(folder / "metrics.jsonl"):
        for name, x in scalars(row).items():
            want.setdefault(name, []).append((row["step"], x))
    for name, points in want.items():
        assert [s for s, _ in board[name]] == [s for s, _ in points], name
        assert [v for _, v in board[name]] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-7), name
    summary = read_json(folder / "eval.json")
    for name, x in eval_summary_scalars(summary).items():
        assert board[name] == [(last_step, pytest.approx(x, rel=1e-6))], name
    return board


def test_smoke_run_tensorboard_has_probe_controller_and_mismatch(tmp_path, smoke_base):
    cfg, resolved_yaml = compose_resolved(["method=atesd", "profile=smoke", "train.report_to=tensorboard",
                                           f"results={tmp_path}"])
    run(cfg, resolved_yaml)
    folder = tmp_path / cfg.run_name
    board = assert_tensorboard_equals_metrics(folder, cfg.train.steps)
    assert [s for s, _ in board["mismatch/kl_st"]] == [1, 2, 3, 4]
    assert [s for s, _ in board["probe/r0.5/kl_st"]] == [1, 2, 4]  # step 1 and every probe.every=2
    assert [s for s, _ in board["controller/a"]] == [2, 4]  # one per controller.hold=2 window
    for name in ("controller/b", "controller/r", "exposure/r", "train/loss", "eval/easy_k3/average"):
        assert name in board, name
    rows = read_jsonl(folder / "metrics.jsonl")
    ctrl = [r for r in rows if r["kind"] == "controller"]
    assert [v for _, v in board["controller/a"]] == pytest.approx([r["ctrl_a"] for r in ctrl], rel=1e-6)
    # TRL's own TensorBoard logs stay where they were (report_to passed through)
    assert any((folder / "checkpoints").rglob("events.out.tfevents.*"))


def test_resumed_run_has_each_step_once_in_tensorboard(tmp_path, smoke_base):
    """Killed after its step-4 checkpoint at step 5, relaunched: the resumed attempt's step-5
    scalars replace the killed one's (purge_step), as its metrics.jsonl rows do."""
    args = [sys.executable, "-m", "harness.run", "method=atesd", "profile=smoke", "train.steps=6",
            "train.checkpoint_every=4", "train.report_to=tensorboard", f"results={tmp_path}"]
    name = compose(args[3:-1]).run_name
    killed = subprocess.run(args, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HARNESS_FAULT": f"{name}:kill@5"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [s for s, _ in read_tensorboard(tmp_path / name)["mismatch/kl_st"]] == [1, 2, 3, 4, 5]
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "HARNESS_FAULT": ""})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    board = assert_tensorboard_equals_metrics(tmp_path / name, 6)
    assert [s for s, _ in board["mismatch/kl_st"]] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in board["controller/a"]] == [2, 4, 6]
