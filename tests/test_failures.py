"""Kills, non-finite losses and concurrent sweeps: every train step written exactly once.

python -m pytest -q tests/test_failures.py

Faults are real: HARNESS_FAULT (harness/runs/faults.py) makes the named run SIGKILL itself
or turn its loss into NaN at a given step; everything else is the normal code path.
"""

import json
import os
import subprocess
import sys

import pytest

from harness.runs.rundir import read_json, read_jsonl

# 6 steps, a checkpoint at step 4: kill@2 is before the first checkpoint, kill@5 after it.
RUN = ["profile=smoke", "exposure=1", "train.steps=6", "train.checkpoint_every=4"]


def launch(results, fault=None, extra=()):
    env = {**os.environ, "HARNESS_FAULT": fault or ""}
    cmd = [sys.executable, "-m", "harness.run", *RUN, f"results={results}", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def train_rows(folder):
    return [{k: v for k, v in r.items() if k != "wall_time"}
            for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] in ("train", "probe")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, smoke_base):
    root = tmp_path_factory.mktemp("whole")
    assert launch(root).returncode == 0
    return root / "opsd-r1-s0"


@pytest.mark.parametrize("kill_step,resumed_from", [(2, None), (5, 4)])
def test_killed_run_relaunched_writes_each_step_once(tmp_path, uninterrupted, kill_step, resumed_from):
    folder = tmp_path / "opsd-r1-s0"
    r = launch(tmp_path, fault=f"opsd-r1-s0:kill@{kill_step}")
    assert r.returncode == -9, r.stderr[-2000:]  # SIGKILL: no handler ran
    assert read_json(folder / "status.json")["state"] == "running"  # what a crash leaves
    assert max(x["step"] for x in read_jsonl(folder / "metrics.jsonl")) == kill_step
    r = launch(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    status = read_json(folder / "status.json")
    assert status["state"] == "done" and status["starts"] == 2
    steps = [x["step"] for x in read_jsonl(folder / "metrics.jsonl") if x["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    got, want = train_rows(folder), train_rows(uninterrupted)
    assert [(x["step"], x["kind"]) for x in got] == [(x["step"], x["kind"]) for x in want]
    if resumed_from is None:  # redone whole from the same seed: the same rows
        assert got == want
    else:  # rows up to the checkpoint kept as written; after it, resumed from saved RNG state
        for a, b in zip(got, want):
            for key, value in b.items():
                if isinstance(value, float):
                    assert a[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (a["step"], key)
    ev, ev_want = (json.loads((f / "eval.json").read_text())["suites"] for f in (folder, uninterrupted))
    assert ev.keys() == ev_want.keys()


def test_nonfinite_loss_fails_that_run_and_the_sweep_goes_on(tmp_path, smoke_base):
    res = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.front.sweep", "--exposures", "0,1", "--results", str(res),
           "--", "profile=smoke"]
    env = {**os.environ, "HARNESS_FAULT": "opsd-r1-s0:nan@2"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    bad = read_json(res / "opsd-r1-s0" / "status.json")
    assert bad["state"] == "failed"
    assert bad["reason"] == "NonFiniteError: non-finite loss at step 2: nan"
    assert [x["step"] for x in read_jsonl(res / "opsd-r1-s0" / "metrics.jsonl")
            if x["kind"] == "train"] == [1]  # the poisoned step wrote no row
    assert read_json(res / "opsd-r0-s0" / "status.json")["state"] == "done"
    assert "opsd-r1-s0 failed: NonFiniteError: non-finite loss at step 2: nan" in r.stdout


def test_two_sweeps_on_one_results_root_train_each_run_once(tmp_path, smoke_base):
    res = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.front.sweep", "--exposures", "0,1", "--results", str(res),
           "--", "profile=smoke"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out[-2000:] + err[-2000:]
    for name in ("base", "opsd-r0-s0", "opsd-r1-s0"):
        status = read_json(res / name / "status.json")
        assert status["state"] == "done" and status["starts"] == 1, (name, status)
    for name in ("opsd-r0-s0", "opsd-r1-s0"):
        steps = [x["step"] for x in read_jsonl(res / name / "metrics.jsonl") if x["kind"] == "train"]
        assert steps == [1, 2, 3, 4], (name, steps)


def test_bad_fault_spec_is_one_clear_error(monkeypatch):
    from harness.runs import faults

    monkeypatch.setenv("HARNESS_FAULT", "opsd-r1-s0:explode@2")
    with pytest.raises(ValueError, match="'opsd-r1-s0:explode@2' is not <run name>:<kill|nan>@<step>"):
        faults.planned("opsd-r1-s0", "kill")
    monkeypatch.setenv("HARNESS_FAULT", "a:kill@3,b:nan@1")
    assert faults.planned("a", "kill") == {3} and faults.planned("b", "kill") == set()
