"""The cluster path's small rules: devices per task, stale env, the global batch, resume at another world.

python -m pytest -q tests/test_cluster_units.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.compute.distributed import export_submitit_env, local_device_index, ranks
from harness.config.fields import ConfigError
from harness.config.settings import compose
from harness.run import refuse_other_world
from harness.runs.rundir import RunDir
from harness.runs.runlock import process_alive


@pytest.mark.parametrize(("local_rank", "visible", "want"), [(0, 8, 0), (5, 8, 5), (1, 1, 0), (3, 2, 1)])
def test_a_rank_takes_its_gpu_among_the_ones_it_sees(local_rank, visible, want):
    # GRES autobind: every task sees one GPU, its own, as device 0 (cuda:LOCAL_RANK would fail)
    assert local_device_index(local_rank, visible) == want


def test_a_distributed_cuda_rank_without_a_gpu_is_refused():
    with pytest.raises(RuntimeError, match="sees no GPU"):
        local_device_index(0, 0)


def test_a_stale_master_port_does_not_stop_a_submitit_task(monkeypatch):
    """sbatch exports the submitting shell's env: MASTER_PORT left by torchrun made export() raise."""
    for key, value in {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "123",
                       "SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
                       "SUBMITIT_LOCAL_NODEID": "0", "SUBMITIT_LOCAL_GLOBALID": "1",
                       "SUBMITIT_LOCAL_LOCALID": "1", "MASTER_PORT": "1", "MASTER_ADDR": "stale-host",
                       "LOCAL_RANK": "7"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    saved = dict(os.environ)  # export() writes os.environ itself: restored whole, or later tests see 2 ranks
    try:
        export_submitit_env()
        keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "MASTER_ADDR")
        got = {k: os.environ.get(k) for k in keys}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert (got["RANK"], got["WORLD_SIZE"], got["LOCAL_RANK"]) == ("1", "2", "1")
    assert got["MASTER_PORT"] != "1" and got["MASTER_ADDR"] != "stale-host"


def test_processes_default_to_one_per_gpu():
    assert (ranks(0), ranks(4), ranks(0, 2), ranks(2, 2)) == (1, 4, 2, 2)


def test_the_batch_is_global_and_a_world_that_does_not_divide_it_is_refused():
    cfg = compose(["profile=smoke", "train.prompts_per_step=8", "launcher.gpus_per_node=4"])
    assert cfg.rows_per_step == 8 and cfg.rows_per_rank(4) == 2
    with pytest.raises(ConfigError, match="launcher.gpus_per_node.*3.*8 rows"):
        compose(["profile=smoke", "train.prompts_per_step=8", "launcher.gpus_per_node=3"])
    with pytest.raises(ConfigError, match="train.micro_batch.*4.*2 rows"):
        compose(["profile=smoke", "train.prompts_per_step=8", "launcher.processes=4", "train.micro_batch=4"])
    with pytest.raises(ConfigError, match="WORLD_SIZE.*3"):
        cfg.check_micro_batch(3)


def test_the_paper_presets_train_the_published_batch_of_32_at_any_gpu_count():
    for preset in ("paper_qwen3_1p7b", "paper_qwen3_4b", "paper_qwen3_8b"):
        for gpus in (1, 2, 8):
            overrides = [f"experiment={preset}", f"launcher.gpus_per_node={gpus}", "train.micro_batch=1"]
            assert compose(overrides).rows_per_step == 32


def test_a_resume_at_another_world_size_is_refused_in_one_line(tmp_path):
    rd = RunDir(tmp_path / "opsd-r1-s0")
    (rd.checkpoints / "checkpoint-2").mkdir(parents=True)
    rd.set_status("running", world_size=2)
    refuse_other_world(rd, 2)  # the same world resumes
    with pytest.raises(ConfigError, match="trained by 2 process.*this start has 4.*gpus_per_node=2") as err:
        refuse_other_world(rd, 4)
    assert "\n" not in str(err.value)
    assert json.loads((rd.path / "status.json").read_text())["world_size"] == 2  # nothing changed


def test_a_zombie_is_dead_to_the_watchdog():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(100):  # exited but not reaped: a zombie until wait()
        if not process_alive(child.pid):
            break
        time.sleep(0.05)
    assert not process_alive(child.pid)
    child.wait()
    assert process_alive(os.getpid())
