"""make reproduce: a tiny stage list on the smoke profile end to end, then again (nothing runs),
--dry-run plans without writing, --only, bad input, the real stage list.

python -m pytest -q tests/test_reproduce.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.front.reproduce import STAGES, Stage, main

ROOT = Path(__file__).resolve().parent.parent
TINY = (Stage("fixed", "sweep", ("method=opsd", "exposure=0,1", "seed=0"), "two fixed exposures, seed 0"),
        Stage("figures", "analysis", ("analysis.figures",), "figures and tables"),
        Stage("claims", "analysis", ("analysis.claims", "--out", "{results}/tables/claims.md"), "claims"),
        Stage("later", "sweep", ("experiment=nosuch_yet",), "a preset not merged yet",
              "sweeps/experiment/nosuch_yet.yaml"))
RUNS = ["opsd-r0-s0", "opsd-r1-s0", "base"]


@pytest.mark.slow  # every stage end to end (~25 s): make test-slow
def test_tiny_study_end_to_end_then_nothing_to_do(tmp_path, smoke_base, capfd):
    res = tmp_path / "study"
    t0 = time.monotonic()
    assert main(["--results", str(res), "profile=smoke"], stages=TINY) == 0
    first = time.monotonic() - t0
    out = capfd.readouterr().out
    assert "=== [1/4] fixed" in out and "3 of 3 runs to do" in out
    for name in RUNS:
        assert json.loads((res / name / "status.json").read_text())["state"] == "done"
    assert (res / "figures" / "mismatch_vs_exposure.png").is_file()
    assert (res / "tables" / "average2.md").is_file()
    assert (res / "tables" / "claims.md").read_text().startswith("## The paper's claims")
    assert "unavailable (no sweeps/experiment/nosuch_yet.yaml" in out
    times = json.loads((res / "reproduce_times.json").read_text())
    assert set(times["stages"]) == {"fixed", "figures", "claims", "later"}
    assert times["stages"]["fixed"]["calls"][0]["outcome"] == "ran"

    before = {n: (res / n / "status.json").stat().st_mtime_ns for n in RUNS}
    sweeps = set((res / ".hydra").glob("multirun-*"))
    t0 = time.monotonic()
    assert main(["--results", str(res), "profile=smoke"], stages=TINY) == 0
    second = time.monotonic() - t0
    out = capfd.readouterr().out
    assert "all 3 runs done: nothing to launch" in out
    assert out.count("skipped (runs and code unchanged)") == 2  # figures, claims
    assert {n: (res / n / "status.json").stat().st_mtime_ns for n in RUNS} == before
    assert set((res / ".hydra").glob("multirun-*")) == sweeps  # no sweep was launched
    assert second < 15 and second < first / 4, (first, second)
    times = json.loads((res / "reproduce_times.json").read_text())
    assert len(times["stages"]["fixed"]["calls"]) == 2 and times["total_s"] >= first * 0.9


def test_dry_run_plans_without_writing(tmp_path, capfd):
    res = tmp_path / "study"
    assert main(["--results", str(res), "--dry-run", "profile=smoke"], stages=TINY) == 0
    out = capfd.readouterr().out
    assert "fixed" in out and "3 runs planned, 0 done, 3 to run" in out
    assert "writes analysis.figures --results" in out
    assert not res.exists()


def test_only_and_bad_input(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.front.reproduce", "--results",
                               str(tmp_path / "r"), *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)

    for args, msg in ((["--only", "nosuch"], "--only=nosuch is invalid: one of atesd_vs_fixed"),
                      (["--dry-run", "profile=nosuch"], "profile/nosuch")):
        r = cli(*args)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("--dry-run", "--only", "teacher_modes,tune", "profile=smoke")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["teacher_modes", "tune"]
    assert "19 runs planned" in lines[0]  # 12 live/ema + 6 base-teacher (the fixed sweep's) + base
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", [s.name for s in STAGES])
def test_every_stage_is_well_formed(name):
    stage = next(s for s in STAGES if s.name == name)
    assert stage.kind in ("sweep", "tune", "analysis") and stage.about
    if stage.kind == "sweep":
        assert stage.needs.startswith("sweeps/experiment/")


def test_studies_split_the_stages():
    from harness.front.reproduce import select

    default = [s.name for s in select(STAGES, "", "default")]
    extended = [s.name for s in select(STAGES, "", "extended")]
    assert default == ["atesd_vs_fixed", "controller_ablations", "teacher_modes", "tune", "paper_table",
                       "figures", "claims"]
    assert extended == ["gap_map", "gap_map_report", "tune_horizon2", "regime_confirm",
                        "regime_confirm_report"]
    assert [s.name for s in select(STAGES, "", "all")] == default + extended
    # --only names a stage of either study, whatever --study says
    assert [s.name for s in select(STAGES, "regime_confirm,tune", "default")] == ["tune", "regime_confirm"]


def test_a_tune_stage_passes_its_own_overrides_after_the_flags():
    from harness.front.reproduce import command

    stage = next(s for s in STAGES if s.name == "tune_horizon2")
    cmd = command(stage, "R", ["profile=smoke", "launcher=slurm"])
    i = cmd.index("--")
    assert cmd[cmd.index("--study") + 1] == "horizon2b" and cmd[cmd.index("--seeds") + 1] == "100"
    assert cmd[cmd.index("--results") + 1] == "R" and cmd.index("--results") < i
    assert cmd[cmd.index("--launcher") + 1] == "slurm" and cmd.index("--launcher") < i
    assert cmd[i + 1:] == ["gap.kind=horizon", "gap.level=2", "profile=smoke"]


def test_extended_study_plans_the_confirmation_from_its_tune_study(tmp_path, capfd):
    res = tmp_path / "study"
    assert main(["--results", str(res), "--dry-run", "--only", "regime_confirm"]) == 0
    assert "cannot plan yet: ablation=fixed_tuned: no tuned exposure at" in capfd.readouterr().out
    (res / "tune").mkdir(parents=True)
    (res / "tune" / "horizon2b.best.yaml").write_text("exposure: 0.25\n")
    assert main(["--results", str(res), "--dry-run", "--study", "extended"]) == 0
    out = capfd.readouterr().out
    # 10 arms x 5 fresh seeds + the base run; the tuned arm at the study's r
    assert "regime_confirm         51 runs planned, 0 done, 51 to run" in out
    assert "gap_map " in out and "atesd_vs_fixed" not in out
    from harness.front.reproduce import plan_sweep
    from harness.runs.rundir import run_folder

    stage = next(s for s in STAGES if s.name == "regime_confirm")
    names = {run_folder(c).name for c in plan_sweep(stage, str(res), [])}
    assert {"opsd-tuned_horizon2-r0.25-s3", "atesd-frozen_policy_horizon2-s7",
            "random-initial_beta_horizon2-s5", "grpo-horizon2-s4"} <= names


def test_bad_study_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness.front.reproduce", "--results", str(tmp_path / "r"),
                        "--study", "huge"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--study=huge is invalid: one of default, extended, all" in r.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("target,study", [("reproduce", "default"), ("reproduce-extended", "extended")])
def test_make_targets_pick_their_study(target, study):
    """make's own STUDY (make tune's study name) must not leak into make reproduce's --study."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "--no-print-directory", "-n", target, "STUDY=fixed_default"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)  # under make test too
    lines = [ln for ln in r.stdout.splitlines() if "harness.front.reproduce" in ln]
    assert r.returncode == 0 and len(lines) == 1, r.stdout + r.stderr
    assert f"harness.front.reproduce --study {study}" in lines[0], lines[0]
