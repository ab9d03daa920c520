"""make reproduce: a tiny stage list on the smoke profile end to end, then again (nothing runs),
--dry-run plans without writing, --only, bad input, the real stage list.

python -m pytest -q tests/test_reproduce.py
"""

from __future__ import annotations

import json
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
