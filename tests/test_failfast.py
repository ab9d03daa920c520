"""Any rank's failure ends a run of several processes within seconds, non-zero, with its reason.

python -m pytest -q tests/test_failfast.py

Two plain processes with the env:// variables set, as submitit's tasks get them (not torchrun,
whose agent would tear the group down itself and hide what the harness does):
harness/compute/failfast.py must end rank 0 when rank 1 raises or is killed, instead of leaving
it in a gloo collective until the process group's timeout (launcher.collective_timeout_min).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 150  # the two processes start, build the model and train a step: ~20 s on 2 cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_ranks(runs: Path, fault: str, extra: list[str] = ()) -> tuple[list[int], float]:
    """Both ranks' exit codes and the wall time until both ended (killed at the deadline)."""
    port = free_port()
    procs = []
    t0 = time.monotonic()
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "HARNESS_FAULT": fault}
        cmd = [sys.executable, "-m", "harness.run", "profile=smoke", f"results={runs}", "exposure=1",
               "train.steps=3", "train.checkpoint_every=0", "probe.every=0",
               "launcher.collective_timeout_min=30", *extra]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(runs.parent / f"rank{rank}.err", "w")))
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, DEADLINE_S - (time.monotonic() - t0))))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank still runs {DEADLINE_S} s after the start: {fault} hangs the run")
    return codes, time.monotonic() - t0


def status(runs: Path) -> dict:
    return json.loads((runs / "opsd-r1-s0" / "status.json").read_text())


@pytest.mark.parametrize("kind", ["raise", pytest.param("kill", marks=pytest.mark.slow)])
def test_a_failing_rank_1_ends_both_ranks_with_its_reason(tmp_path, smoke_base, kind):
    runs = tmp_path / "runs"
    codes, wall = two_ranks(runs, f"opsd-r1-s0:{kind}@1/1")
    assert all(c != 0 for c in codes), codes
    s = status(runs)
    assert s["state"] == "failed" and s["failed_rank"] == 1, s
    want = "InjectedFault" if kind == "raise" else "died without an exception"
    assert want in s["reason"], s["reason"]
    print(f"{kind} on rank 1: both ranks ended in {wall:.0f} s")


@pytest.mark.slow  # ~15 s: make test-slow
def test_a_failing_rank_0_ends_rank_1(tmp_path, smoke_base):
    runs = tmp_path / "runs"
    codes, _ = two_ranks(runs, "opsd-r1-s0:raise@2/0")
    assert all(c != 0 for c in codes), codes
    s = status(runs)
    assert s["state"] == "failed" and s["failed_rank"] == 0 and "InjectedFault" in s["reason"], s


def test_a_world_that_does_not_divide_the_batch_is_one_line(tmp_path, smoke_base):
    runs = tmp_path / "runs"
    codes, _ = two_ranks(runs, "", ["train.prompts_per_step=3"])
    assert codes == [2, 2]
    err = (tmp_path / "rank0.err").read_text().strip().splitlines()
    assert err[-1].startswith("error: ") and "prompts_per_step" in err[-1] and "3" in err[-1], err[-3:]
    assert not (runs / "opsd-r1-s0").exists()  # nothing written
