"""One run over 2 CPU processes (torch.distributed, gloo): different data per rank, one set of weights.

python -m pytest -q tests/test_distributed.py

torchrun sets RANK/WORLD_SIZE/MASTER_ADDR as submitit does on SLURM with
launcher.gpus_per_node=N (harness/compute/distributed.py); each rank runs tests/dist_worker.py,
i.e. the harness's own run(). Rank 0 alone writes the run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_ranks(runs: Path, seen: Path, n: int, overrides: list[str]) -> list[dict]:
    """Run tests/dist_worker.py on n gloo processes (torchrun) into results root `runs`; each
    rank's record (from `seen`), rank 0 first. tests/test_rank_equivalence.py runs it at 1 and 2."""
    seen.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n),
           "--standalone", str(ROOT / "tests" / "dist_worker.py"), str(seen), f"results={runs}", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads((seen / f"rank-{r}.json").read_text()) for r in range(n)]


def run_two_ranks(tmp_path: Path, overrides: list[str]) -> tuple[Path, dict, dict]:
    """Run tests/dist_worker.py on 2 gloo processes; (results root, rank 0's record, rank 1's)."""
    runs = tmp_path / "runs"
    r0, r1 = run_ranks(runs, tmp_path / "seen", 2, ["profile=smoke", *overrides])
    return runs, r0, r1


def metrics_rows(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_train_one_step_on_different_data_to_the_same_weights(tmp_path, smoke_base):
    runs, r0, r1 = run_two_ranks(tmp_path, ["train.steps=1", "train.checkpoint_every=1", "probe.every=1"])
    assert r0["global_step"] == r1["global_step"] == 1
    # Each rank trained on its own share of the step's prompts...
    assert r0["problem_ids"] and r1["problem_ids"]
    assert not set(r0["problem_ids"]) & set(r1["problem_ids"]), (r0, r1)
    # ...from the same start, and DDP's gradient all-reduce left one set of weights.
    assert r0["before"] == r1["before"]
    assert r0["after"] == r1["after"] != r0["before"]
    # Rank 0 alone wrote the folder: one train row for the step, not one per rank.
    folder = runs / "opsd-r1-s0"
    rows = metrics_rows(folder)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1]
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    assert (folder / "eval.json").is_file() and (folder / "checkpoints" / "checkpoint-1").is_dir()


def test_atesd_on_two_processes_uses_rank_0s_exposure_on_every_rank(tmp_path, smoke_base):
    """Each rank sees other statistics (its own half of the batch), so without rank 0
    deciding for both (harness/sources/shared.py) their controllers learn from other
    rewards: with each rank deciding alone, step 4's r differed (0.51375 vs 0.51380).
    The loss-change reward, immediate, with a 1-step hold: the policy updates from step 3 on."""
    runs, r0, r1 = run_two_ranks(tmp_path, [
        "method=atesd", "train.steps=4", "controller.hold=1", "controller.progress=train_loss",
        "controller.credit_windows=1", "probe.every=0", "train.checkpoint_every=0", "eval.k=1"])
    assert len(r0["exposures"]) == 4
    assert r0["exposures"] == r1["exposures"], (r0["exposures"], r1["exposures"])
    assert len(set(r0["exposures"])) == 4  # a new decision each window, the same on both
    rows = metrics_rows(runs / "atesd-s0")
    assert [r["exposure"] for r in rows if r["kind"] == "train"] == r0["exposures"]
    ctrl = [r for r in rows if r["kind"] == "controller"]
    assert [r["window"] for r in ctrl] == [0, 1, 2, 3]  # written once, by rank 0
    assert [r["ctrl_r"] for r in ctrl] == r0["exposures"]
