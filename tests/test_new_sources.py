"""source=target_mismatch (the probe curve inverted) and source=per_problem (a record per problem).

python -m pytest -q tests/test_new_sources.py

Units on hand-made inputs: the inversion on monotone, flat and non-monotone curves and on
targets outside them; the per-problem update on a hand-made record of successes and
failures; the record's checkpoint round trip. Then real runs: each source with each student
loss that has a teacher (opsd, antisd, sdar) on the smoke profile, and a per-problem run
killed after its checkpoint and resumed, whose exposures equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.runs.rundir import read_jsonl
from harness.sources.per_problem import PerProblemConfig, PerProblemExposure, update
from harness.sources.target_mismatch import TargetMismatchConfig, TargetMismatchExposure, invert, isotonic

CURVE = [(0.0, 0.0), (0.25, 0.025), (0.5, 0.08), (0.75, 0.114), (1.0, 0.345)]


def test_inversion_interpolates_a_monotone_curve():
    r, predicted, why = invert(CURVE, 0.08, current=0.3)
    assert (r, predicted) == (0.5, 0.08) and "interpolated" in why
    r, _, _ = invert(CURVE, 0.097, current=0.3)  # halfway between r = .5 and .75
    assert r == pytest.approx(0.625)
    r, _, _ = invert(list(reversed(CURVE)), 0.0125, current=0.3)  # any order of points
    assert r == pytest.approx(0.125)


def test_inversion_at_targets_outside_the_curve_takes_its_ends():
    r, predicted, why = invert(CURVE, 1.0, current=0.3)
    assert (r, predicted) == (1.0, 0.345) and "above the curve" in why
    r, predicted, why = invert([(0.25, 0.02), (1.0, 0.3)], 0.001, current=0.3)
    assert (r, predicted) == (0.25, 0.02) and "below the curve" in why


def test_a_target_at_a_plateau_on_top_takes_the_plateaus_lowest_r():
    # the fit reaches 0.1 at r = 0.5 and stays there: the lowest r reaching it is 0.5, not 1
    r, predicted, why = invert([(0.0, 0.0), (0.5, 0.1), (1.0, 0.1)], 0.1, current=0.3)
    assert (r, predicted) == (0.5, 0.1) and "interpolated between r = 0 and 0.5" in why
    # a non-monotone tail pooled into a top plateau (0.12, 0.08 -> 0.1, 0.1) likewise
    r, _, why = invert([(0.0, 0.0), (0.5, 0.12), (1.0, 0.08)], 0.1, current=0.3)
    assert r == pytest.approx(0.5) and "not monotone" in why
    assert invert([(0.0, 0.0), (0.5, 0.1), (1.0, 0.1)], 0.1 + 1e-9, current=0.3)[0] == 1.0  # above it


def test_a_flat_curve_keeps_the_r_in_force():
    r, _, why = invert([(0.0, 0.05), (0.5, 0.05), (1.0, 0.05)], 0.08, current=0.3)
    assert r == 0.3 and "flat" in why
    assert invert([(0.5, 0.05)], 0.08, current=0.7)[0] == 0.7  # one point is no curve


def test_a_non_monotone_curve_is_fitted_non_decreasing_first():
    assert isotonic([0.0, 0.1, 0.06, 0.2]) == pytest.approx([0.0, 0.08, 0.08, 0.2])
    curve = [(0.0, 0.0), (0.5, 0.1), (0.75, 0.06), (1.0, 0.2)]
    r, predicted, why = invert(curve, 0.08, current=0.3)
    assert "not monotone" in why and predicted == 0.08
    assert r == pytest.approx(0.5)  # the lowest r where the fit reaches 0.08 (its plateau)


def test_target_schedule_and_decisions_at_window_starts():
    tm = TargetMismatchConfig(kl=0.1, kl_end=0.3, hold=2, r_init=0.4)
    src = TargetMismatchExposure(10, tm)
    assert src.exposures(["a", "b"]) == [0.4, 0.4] and src.target(5) == pytest.approx(0.2)
    assert src.step_end(1, {"mismatch_kl_st": 0.5}) == []  # no probe curve yet: r_init kept
    src.observe_probe(2, [{"probe_exposure": r, "mismatch_kl_st": k} for r, k in CURVE])
    (row,) = src.step_end(2, {"mismatch_kl_st": 0.2})
    assert row["tm_target"] == pytest.approx(0.14) and row["tm_realised"] == pytest.approx(0.35)
    assert src.current() == row["tm_r"] and 0.75 < row["tm_r"] < 1.0
    assert src.step_end(3, {}) == []  # inside the window: held
    again = TargetMismatchExposure(10, tm)
    again.load_state_dict(json.loads(json.dumps(src.state_dict())))
    assert again.state_dict() == src.state_dict()
    # restored mid-window (from JSON, as a checkpoint is): the next decision is the same, from the
    # restored curve and the restored window's realised mismatch, with no new probe in between
    for s in (src, again):
        s.step_end(3, {"mismatch_kl_st": 0.1})
    (mine,), (theirs,) = src.step_end(4, {"mismatch_kl_st": 0.3}), again.step_end(4, {"mismatch_kl_st": 0.3})
    assert mine == theirs and mine["tm_realised"] == pytest.approx(0.2)  # steps 3 and 4 of the window
    assert mine["tm_target"] == pytest.approx(0.18) and again.current() == src.current() == mine["tm_r"]


def test_per_problem_update_on_a_hand_made_record():
    pc = PerProblemConfig(r_init=0.5, bounds=[0.1, 0.9], up=0.2, down=0.1)
    record = update({}, [("a", False), ("a", False), ("b", True), ("c", True), ("c", False)], pc)
    assert record == pytest.approx({"a": 0.7, "b": 0.4, "c": 0.55})  # c: +0.2/2 - 0.1/2
    record = update(record, [("a", False)] * 3 + [("b", True)] * 4, pc)
    assert record == pytest.approx({"a": 0.9, "b": 0.3, "c": 0.55})  # a clipped at the upper bound
    for _ in range(5):
        record = update(record, [("b", True)], pc)
    assert record["b"] == pytest.approx(0.1)  # clipped at the lower bound


def test_per_problem_source_keys_records_and_round_trips_its_state():
    problems = {"p1": SimpleNamespace(steps=("x", "y")), "p2": SimpleNamespace(steps=("x", "y")),
                "p3": SimpleNamespace(steps=("x", "y", "z"))}
    src = PerProblemExposure(4, PerProblemConfig(key="steps", up=0.2, down=0.2))
    src.attach(problems)
    src.record(["p1", "p3"], [False, True])
    assert src.exposures(["p1", "p2", "p3"]) == [0.5, 0.5, 0.5]  # decided at the step's end
    src.step_end(1, {})
    assert src.exposures(["p1", "p2", "p3"]) == pytest.approx([0.7, 0.7, 0.3])  # p2 shares p1's key
    src.record(["p2"], [True])
    state = json.loads(json.dumps(src.state_dict()))
    again = PerProblemExposure(4, PerProblemConfig(key="steps", up=0.2, down=0.2))
    again.attach(problems)
    again.load_state_dict(state)
    again.step_end(2, {}), src.step_end(2, {})
    assert again.exposures(list(problems)) == src.exposures(list(problems))
    by_id = PerProblemExposure(4, PerProblemConfig(key="id"))
    by_id.attach(problems)
    by_id.record(["p1"], [False])
    by_id.step_end(1, {})
    assert by_id.exposures(["p1", "p2"]) == pytest.approx([0.6, 0.5])


@pytest.mark.parametrize("bad, says", [
    (["source=per_problem", "per_problem.key=ops"], "per_problem.key='ops' is invalid"),
    (["source=per_problem", "per_problem.bounds=[0.6,1]"], "per_problem.r_init=0.5 is invalid"),
    (["source=per_problem", "per_problem.bounds=[0.9,0.2]"], "per_problem.bounds=[0.9, 0.2] is invalid"),
    (["source=target_mismatch", "target_mismatch.kl=-1"], "target_mismatch.kl=-1.0 is invalid"),
    (["source=target_mismatch", "target_mismatch.hold=0"], "target_mismatch.hold=0 is invalid"),
    (["source=target_mismatch", "probe.every=0"], "probe.every=0 is invalid"),  # it would never move
    (["source=target_mismatch", "probe.every=3", "target_mismatch.hold=10"],
     "target_mismatch.hold=10 is invalid: a multiple of probe.every=3"),
])
def test_bad_knobs_are_one_line_naming_them(bad, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        compose(["profile=smoke", *bad])


def launch(results, overrides, fault=""):
    cmd = [sys.executable, "-m", "harness.run", "profile=smoke", f"results={results}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HARNESS_FAULT": fault})


@pytest.mark.parametrize("source", ["target_mismatch", "per_problem"])
# opsd in make test; the GRPO-side losses (a run each) in make test-slow
@pytest.mark.parametrize("loss", ["opsd", pytest.param("antisd", marks=pytest.mark.slow),
                                  pytest.param("sdar", marks=pytest.mark.slow)])
def test_each_new_source_runs_with_each_teacher_loss(source, loss, smoke_base, tmp_path):
    knobs = ["target_mismatch.hold=1", "probe.every=1"] if source == "target_mismatch" else []
    r = launch(tmp_path, [f"source={source}", f"loss={loss}", "train.steps=2", *knobs])
    assert r.returncode == 0, r.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    rows = read_jsonl(folder / "metrics.jsonl")
    train = [x for x in rows if x["kind"] == "train"]
    assert [x["step"] for x in train] == [1, 2]
    if source == "target_mismatch":
        decisions = [x for x in rows if x["kind"] == "controller"]
        assert [x["step"] for x in decisions] == [1, 2] and "target_mismatch step 1" in r.stdout
        assert train[1]["exposure"] == decisions[0]["tm_r"]  # step 1's decision governs step 2
    else:
        per = [x for x in rows if x["kind"] == "exposure"]
        assert {x["step"] for x in per} == {1, 2} and all(x["ref_steps"] >= 2 for x in per)
        assert train[0]["exposure"] == 0.5 and train[0]["exposure_spread"] == 0.0  # all unseen


@pytest.mark.slow  # three runs (~20 s): make test-slow
def test_per_problem_record_resumes_exactly(smoke_base, tmp_path):
    """Killed after its step-2 checkpoint and relaunched: the same exposures as in one go."""
    run = ["source=per_problem", "train.steps=4", "train.checkpoint_every=2", "per_problem.up=0.3"]
    assert launch(tmp_path / "whole", run).returncode == 0
    assert launch(tmp_path / "cut", run, fault="per_problem-s0:kill@3").returncode == -9
    assert launch(tmp_path / "cut", run).returncode == 0

    def exposures(root):
        return [(x["step"], x["problem_id"], x["exposure"])
                for x in read_jsonl(root / "per_problem-s0" / "metrics.jsonl") if x["kind"] == "exposure"]

    whole = exposures(tmp_path / "whole")
    assert len({r for _, _, r in whole}) > 1  # the record moved
    assert exposures(tmp_path / "cut") == whole
