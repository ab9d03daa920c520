"""`make sweep`: a smoke sweep through the submitit local launcher, skip on relaunch, bad input.

python -m pytest -q tests/test_sweep.py
"""

import subprocess
import sys

import pytest

from harness.rundir import read_json

FILES = ["config.yaml", "status.json", "metrics.jsonl", "eval.json", "eval_samples.jsonl"]


def sweep(results, *args, exposures="0,1"):
    cmd = [sys.executable, "-m", "harness.sweep", "--exposures", exposures, "--seeds", "0",
           "--results", str(results), *args, "--", "profile=smoke"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_smoke_sweep_two_exposures_then_skip(tmp_path, smoke_base):
    res = tmp_path / "runs"
    r = sweep(res)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("opsd-r0-s0", "opsd-r1-s0"):
        for f in FILES:
            assert (res / name / f).is_file(), (name, f)
        assert any((res / name / "checkpoints").iterdir())
        assert read_json(res / name / "status.json")["state"] == "done"
    assert (res / "base" / "eval.json").is_file()
    assert list((res / ".hydra").glob("multirun-*/.submitit"))  # went through submitit
    assert "opsd-r0-s0" in r.stdout and "KL(S||T)" in r.stdout  # the closing table
    assert "8/8" in r.stderr  # the progress bar over both runs' 4 steps reached the end
    before = (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns
    r2 = sweep(res)
    assert r2.returncode == 0
    assert (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns == before
    logs = "".join(p.read_text() for p in (res / ".hydra").rglob("*_log.out"))
    assert "already done" in logs


@pytest.mark.parametrize("args,exposures,msg", [
    ([], "1.5", "exposure '1.5' is outside [0, 1]"),
    ([], "abc", "exposure 'abc' is not a number"),
    ([], "", "EXPOSURES='' is empty"),
    (["--method", "nosuch"], "0", "method/nosuch"),
    (["--launcher", "cloud"], "0", "LAUNCHER='cloud'"),
])
def test_bad_input_fails_before_launch(tmp_path, args, exposures, msg):
    res = tmp_path / "runs"
    r = sweep(res, *args, exposures=exposures)
    assert r.returncode == 2
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not res.exists()


def test_bad_override_fails_before_launch(tmp_path):
    res = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.sweep", "--exposures", "0", "--results", str(res),
           "--", "profile=smoke", "teacher.mode=psychic"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "teacher.mode='psychic'" in r.stderr
    assert not res.exists()


def test_seeds_replace_an_experiment_presets_seeds():
    from argparse import Namespace

    from harness.sweep import build_groups

    def groups(seeds):
        return build_groups(Namespace(experiment="atesd_vs_fixed", seeds=seeds, exposures="", method=""),
                            ["results=/tmp/unused"])

    assert groups("") == [["method=opsd", "exposure=0,0.25,0.5,0.75,1", "seed=0,1,2"],
                          ["method=atesd", "seed=0,1,2"]]
    assert groups("4") == [["method=opsd", "exposure=0,0.25,0.5,0.75,1", "seed=4"],
                           ["method=atesd", "seed=4"]]
    with pytest.raises(ValueError, match="SEEDS='x'"):
        groups("x")


def test_folder_with_another_config_fails_before_launch(tmp_path, smoke_base):
    res = tmp_path / "runs"
    assert sweep(res, exposures="1").returncode == 0
    stamp = (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns
    cmd = [sys.executable, "-m", "harness.sweep", "--exposures", "0,1", "--results", str(res),
           "--", "profile=smoke", "loss.beta=1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "loss.beta: 0.5 -> 1.0" in r.stderr and "opsd-r" in r.stderr
    assert not (res / "opsd-r0-s0").exists()  # nothing launched
    assert (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns == stamp


def test_methods_without_a_fixed_exposure_ignore_the_exposure_grid():
    from argparse import Namespace

    from harness.sweep import build_groups, validate

    def groups(method):
        return build_groups(Namespace(experiment="", seeds="0,1", exposures="0,0.5,1", method=method),
                            ["results=/tmp/unused", "profile=smoke"])

    assert groups("atesd") == [["method=atesd", "seed=0,1"]]  # was: run names collide
    assert groups("opsd") == [["method=opsd", "exposure=0,0.5,1", "seed=0,1"]]
    names = [c.run_name for c in validate(groups("random"), ["results=/tmp/unused", "profile=smoke"])]
    assert names == ["random-s0", "random-s1"]
