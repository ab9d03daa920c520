"""Real SLURM jobs on the local single-node cluster: submitit results, arrays, cancellation, a Hydra sweep.

make slurm-up && python -m pytest -q tests/test_slurm.py

The cluster comes from tests/slurm/start_cluster.sh (`make test` starts it first);
without it these tests skip. Every wait has a deadline: a job that never finishes
fails the test instead of hanging it, and its SLURM jobs are cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit
from submitit.core.utils import UncompletedJobError

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parent.parent

# Jobs unpickle their function in a fresh interpreter where this test module (imported
# by pytest from tests/) is not importable: ship the functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUN_FILES = ["config.yaml", "status.json", "metrics.jsonl", "eval.json", "eval_samples.jsonl"]


def _cluster_problem() -> str | None:
    """Why the cluster cannot take jobs, or None when it can."""
    if shutil.which("sbatch") is None:
        return "no sbatch on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "scontrol/sacct timed out"
    if "UP" not in ping.stdout:
        return "slurmctld is not up (scontrol ping)"
    if acct.returncode != 0:  # without accounting submitit cannot see jobs that died
        return f"sacct fails: {(acct.stderr.strip().splitlines() or ['?'])[0]}"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    problem = _cluster_problem()
    if problem:
        pytest.skip(f"local SLURM cluster not usable ({problem}); start it: make slurm-up")


def _executor(folder: Path) -> submitit.AutoExecutor:
    # A fresh folder per test: job ids restart at 1 when the cluster's state is wiped,
    # and a reused folder would then hand back an old job's result.
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    ex.update_parameters(timeout_min=5, cpus_per_task=1, mem_gb=1)
    return ex


def _wait(jobs, timeout_s: float) -> None:
    """Poll until every job is done (result written or SLURM says it ended), or fail."""
    deadline = time.monotonic() + timeout_s
    while not all(j.done(force_check=True) for j in jobs):
        if time.monotonic() > deadline:
            _cancel([j.job_id for j in jobs])
            pytest.fail(f"jobs {[j.job_id for j in jobs]} not done after {timeout_s:.0f} s "
                        f"(states {[j.state for j in jobs]})")
        time.sleep(1)


def _cancel(job_ids) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=30)


def add(a: int, b: int) -> int:
    return a + b


def timed_square(x: int) -> tuple[int, float, float]:
    """x*x with the job's start and end time, to see whether array tasks overlap."""
    start = time.time()
    time.sleep(4)
    return x * x, start, time.time()


def test_submitit_job_and_array_return_results(tmp_path):
    ex = _executor(tmp_path)
    # The array first, so its two tasks get the node's two CPUs in one scheduling pass.
    array = ex.map_array(timed_square, [3, 4])
    job = ex.submit(add, 2, 3)
    _wait([job, *array], timeout_s=120)
    assert job.result() == 5
    results = [j.result() for j in array]
    assert [r[0] for r in results] == [9, 16]
    # One CPU per job on a 2-CPU node: both array tasks run at the same time.
    assert max(r[1] for r in results) < min(r[2] for r in results), results


def test_cancelled_job_raises_within_bounded_time(tmp_path):
    ex = _executor(tmp_path)
    job = ex.submit(time.sleep, 600)
    deadline = time.monotonic() + 60
    while job.get_info(mode="force").get("State") != "RUNNING":
        if time.monotonic() > deadline:
            _cancel([job.job_id])
            pytest.fail(f"job {job.job_id} did not start within 60 s (state {job.state})")
        time.sleep(0.5)
    t0 = time.monotonic()
    subprocess.run(["scancel", job.job_id], check=True, timeout=30)
    # sacct reports CANCELLED, so submitit stops waiting for a result that never comes.
    _wait([job], timeout_s=60)
    with pytest.raises(UncompletedJobError, match="CANCELLED"):
        job.result()
    assert time.monotonic() - t0 < 60


def _submitted_job_ids(root: Path) -> list[str]:
    """SLURM job ids of the submitit folders under root (named by job id, `%j`)."""
    return sorted({p.name.split("_")[0] for p in root.glob(".hydra/*/.submitit/*") if p.is_dir()})


def test_hydra_sweep_through_slurm_writes_both_run_folders(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.run", "-m", "profile=smoke", "launcher=slurm",
           "exposure=0,1", f"results={runs}"]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as err:
        _cancel(_submitted_job_ids(runs))  # the killed launcher leaves its jobs behind
        pytest.fail(f"sweep not done after {err.timeout:.0f} s; output:\n{err.output}")
    logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in runs.glob(".hydra/*/.submitit/*/*.err"))
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"
    for name in ("opsd-r0-s0", "opsd-r1-s0"):
        folder = runs / name
        for f in RUN_FILES:
            assert (folder / f).is_file(), f"{folder / f} missing\n{logs}"
        assert (folder / "checkpoints").is_dir()
        status = json.loads((folder / "status.json").read_text())
        assert status["state"] == "done", status
    assert (runs / "base" / "eval.json").is_file()  # the base evaluation ran as a job too
    # Every run of the sweep, base included, went to SLURM as one job array.
    assert len(_submitted_job_ids(runs)) == 1, _submitted_job_ids(runs)


def _release_requeued(job_ids: list[str]) -> None:
    """Make requeued jobs of these arrays eligible now. SLURM holds a requeued job for about
    two minutes (Reason=BeginTime), harmless on a cluster, but most of this test's time."""
    if not job_ids:
        return
    out = subprocess.run(["squeue", "-h", "-r", "-t", "PD", "-o", "%i %r"], capture_output=True,
                         text=True, timeout=30).stdout
    for line in out.splitlines():
        job, _, reason = line.partition(" ")
        if reason.strip() == "BeginTime" and job.split("_")[0] in job_ids:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                           capture_output=True, timeout=30)


@pytest.mark.slow  # a SLURM time limit and requeue (~60 s): make test-slow
def test_run_past_its_time_limit_is_requeued_and_writes_each_step_once(tmp_path, smoke_base):
    """launcher.timeout_min=1 and a run of ~60 s (HARNESS_FAULT slows each step): SLURM
    signals the job 15 s before its limit, submitit requeues it (the Hydra launcher is
    checkpointable) and the next start resumes the run from its last checkpoint: every
    step's metrics rows once."""
    runs, steps = tmp_path / "runs", 10
    cmd = [sys.executable, "-m", "harness.run", "-m", "profile=smoke", "launcher=slurm",
           "exposure=1", f"train.steps={steps}", "train.checkpoint_every=1",
           "launcher.timeout_min=1", "launcher.signal_delay_s=15",
           "launcher.max_requeues=6", f"results={runs}"]  # SLURM may signal up to 60 s early
    env = {**os.environ, "HARNESS_FAULT": "opsd-r1-s0:slow@4"}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    while proc.poll() is None:
        if time.monotonic() - t0 > 420:
            proc.kill()
            _cancel(_submitted_job_ids(runs))
            pytest.fail(f"sweep not done after 420 s; output:\n{proc.stdout.read()[-3000:]}")
        _release_requeued(_submitted_job_ids(runs))
        time.sleep(2)
    output = proc.stdout.read()
    logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in runs.glob(".hydra/*/.submitit/*/*.err"))
    assert proc.returncode == 0, f"{output[-3000:]}\n{logs}"
    folder = runs / "opsd-r1-s0"
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "done" and status["starts"] >= 2, (status, logs)
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, steps + 1)), logs
    assert (folder / "eval.json").is_file()
    print(f"requeue test: {status['starts']} starts, {time.monotonic() - t0:.0f} s")
