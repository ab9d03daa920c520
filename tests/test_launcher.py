"""launcher.* keys reach submitit (hydra.launcher.*) and never make a relaunch a config conflict.

python -m pytest -q tests/test_launcher.py
"""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.config.schema import ConfigError
from harness.config.settings import CONFIG_DIR, compose_resolved
from harness.runs.rundir import refuse_config_conflict


def hydra_launcher(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_slurm_launcher_keys_map_onto_submitit():
    got = hydra_launcher(["launcher=slurm", "launcher.partition=gpu", "launcher.gpus_per_node=4",
                          "launcher.cpus_per_task=8", "launcher.mem_gb=64", "launcher.timeout_min=30",
                          "launcher.array_parallelism=5", "launcher.max_requeues=2",
                          "launcher.signal_delay_s=60"])
    assert got["_target_"].endswith("SlurmLauncher")
    assert {k: got[k] for k in ("partition", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb",
                                "timeout_min", "array_parallelism", "max_num_timeout", "signal_delay_s")} == {
        "partition": "gpu", "gpus_per_node": 4, "tasks_per_node": 4, "cpus_per_task": 8, "mem_gb": 64,
        "timeout_min": 30, "array_parallelism": 5, "max_num_timeout": 2, "signal_delay_s": 60}


@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_a_cpu_run_is_one_task_without_a_gpu_request(launcher):
    got = hydra_launcher([f"launcher={launcher}"])
    assert got["tasks_per_node"] == 1 and got["gpus_per_node"] is None
    assert got["timeout_min"] == 120 and got["cpus_per_task"] == 1


def test_changed_launcher_settings_resume_the_same_run_folder(tmp_path):
    cfg, resolved = compose_resolved(["profile=smoke", f"results={tmp_path}"])
    folder = tmp_path / cfg.run_name
    folder.mkdir()
    (folder / "config.yaml").write_text(resolved)
    relaunch, _ = compose_resolved(["profile=smoke", f"results={tmp_path}", "launcher=slurm",
                                    "launcher.timeout_min=30", "launcher.gpus_per_node=2"])
    refuse_config_conflict(relaunch)  # no ConfigError: how a run is launched is not what it computes
    other, _ = compose_resolved(["profile=smoke", f"results={tmp_path}", "train.lr=0.5"])
    with pytest.raises(ConfigError, match="train.lr"):
        refuse_config_conflict(other)
    with pytest.raises(ConfigError, match="launcher.timeout_min"):
        compose_resolved(["launcher.timeout_min=0"])
