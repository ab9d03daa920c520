"""Honest devices: a run asking for GPUs where CUDA is not usable is refused in one line, and one
process that sees several GPUs trains on one, never under nn.DataParallel.

python -m pytest -q tests/test_devices_honest.py

The rule (harness/compute/device.py): launcher.gpus_per_node > 0 needs usable CUDA on the job's
machine; launcher.gpus_per_node=0 is how a run asks for the CPU. The refusal comes before anything
is written and names torch, its CUDA build and the driver. The sweep planner does not check it
(it may run on a login node without GPUs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.compute import device
from harness.compute.device import Precision, driver_version, require_cuda
from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.front.preflight import check_all, check_job

ROOT = Path(__file__).resolve().parent.parent
TOO_OLD = ("CUDA initialization: The NVIDIA driver on your system is too old (found version 12080). "
           "Please update your GPU driver")


def launch(results: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.run", f"results={results}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA is not usable")
@pytest.mark.parametrize("overrides", [["profile=smoke", "launcher.gpus_per_node=1"],
                                       # before: the misleading "HF generate serves at most ..." line
                                       ["experiment=paper_qwen3_1p7b"]])
def test_a_run_asking_for_gpus_without_cuda_is_one_line_before_anything_is_written(tmp_path, overrides):
    res = tmp_path / "res"
    r = launch(res, *overrides)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-3000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line = errors[0]
    assert line.startswith("error: launcher.gpus_per_node=1 asks for GPUs, but CUDA is not usable here: ")
    assert f"torch {torch.__version__} (CUDA build " in line
    assert "driver" in line and line.endswith("or set launcher.gpus_per_node=0 to run on the CPU")
    # Nothing of the harness's: no run folder, no lock (Hydra's own log of the call aside).
    assert not res.exists() or [p.name for p in res.iterdir()] == [".hydra"]


def test_the_rule_on_both_sides():
    require_cuda(0, usable=(False, ""))  # asks for the CPU: runs there
    require_cuda(2, usable=(True, ""))  # asks for GPUs and CUDA works
    with pytest.raises(ConfigError) as err:
        require_cuda(1, usable=(False, TOO_OLD))
    msg = str(err.value)
    assert "\n" not in msg and "found version 12080" in msg and f"torch {torch.__version__}" in msg


def test_the_job_checks_the_machine_and_the_planner_does_not(monkeypatch):
    monkeypatch.setattr(device, "cuda_usable", lambda: (False, ""))
    gpu = compose(["profile=smoke", "launcher.gpus_per_node=1"])
    check_all([gpu])  # the planner may run on a login node without GPUs
    with pytest.raises(ConfigError, match=r"^launcher\.gpus_per_node=1 asks for GPUs"):
        check_job(gpu)
    check_job(compose(["profile=smoke"]))  # launcher.gpus_per_node=0: the CPU, as asked


@pytest.mark.skipif(Path("/proc/driver/nvidia/version").exists(), reason="a real driver answers first")
def test_the_driver_is_named_from_nvidia_smi_or_found_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert driver_version().startswith("no NVIDIA driver found")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 550.54.15\n")
    smi.chmod(0o755)
    assert driver_version() == "NVIDIA driver 550.54.15"


# --- one process, several GPUs (review B5) ------------------------------------------------------

@pytest.mark.parametrize("method", ["opsd", "grpo"])
def test_one_process_that_sees_4_gpus_trains_on_one_not_under_data_parallel(monkeypatch, method):
    """transformers counts the visible GPUs of a process outside torch.distributed into
    args.n_gpu, and Trainer wraps the model in nn.DataParallel when it is > 1 (and multiplies
    the batch by it). Here torch sees 4 GPUs; the trainer arguments must say 1."""
    import harness.trainers.build as build

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(build, "choose", lambda *a, **k: Precision("cuda", "float32"))  # use_cpu off
    cfg = compose(["profile=smoke", f"method={method}"])
    args = (build.sdft_args if method == "opsd" else build.grpo_args)(cfg, "OUT")
    assert args.n_gpu == 1
    assert args.train_batch_size == args.per_device_train_batch_size == cfg.micro_batch
    assert os.environ.get("WORLD_SIZE") is None
