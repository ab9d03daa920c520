"""What makes a base model what it is (the config keys that shape its weights, their hash) and
where a run finds it.

python -m harness.models.base   # its cache folder: base.cache_dir/<profile>-<base_key(cfg)>

The key names the cache folder of a build (harness/models/base.py) and is compared with
the shipped model's manifest (harness/models/shipped.py, harness/models/basecheck.py). Light on
purpose (no torch): a sweep's preflight and every job resolve the base model before
a job holds its training slot.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from harness.config.schema import ConfigError, RunConfig
from harness.config.task import TaskConfig
from harness.models.shipped import SHIPPED_DIR, read_manifest, verify
from harness.runs.rundir import describe_diff

BASE_VERSION = 2  # bump when the recipe in harness/models/base.py changes meaning
# base.* keys that say where or whether a model is built, not what it is.
NOT_SHAPING = ("cache_dir", "build_missing")
# model.* keys that say how a run loads or adapts the weights, not what the base model is
# (LoRA is applied at run time; the base is built in fp32 whatever the run's dtype).
# attn_implementation: the attention kernel a run computes with, not the weights it starts from.
MODEL_NOT_SHAPING = ("dtype", "trust_remote_code", "lora", "attn_implementation")


# task.* keys added with the math task: at their defaults they leave the synthetic base
# model's SFT rows unchanged, so they enter the key only when set (old keys stay valid).
TASK_KEYS_SINCE_MATH = ("train_data", "eval_data", "chat_template", "student_thinking",
                        "teacher_thinking", "keep_answer", "transition", "max_teacher_tokens",
                        "empty_reference")


def task_shaping(cfg: RunConfig) -> dict:
    defaults = asdict(TaskConfig())
    return {k: v for k, v in asdict(cfg.task).items()
            if k not in TASK_KEYS_SINCE_MATH or v != defaults[k]}


def base_shaping(cfg: RunConfig) -> dict:
    """Everything that shapes the base model's weights (the key is its hash)."""
    base = {k: v for k, v in asdict(cfg.base).items() if k not in NOT_SHAPING}
    model = {k: v for k, v in asdict(cfg.model).items() if k not in MODEL_NOT_SHAPING}
    return {"v": BASE_VERSION, "model": model, "base": base,
            "task": task_shaping(cfg), "unit": cfg.exposure_unit}


def base_key(cfg: RunConfig) -> str:
    return hashlib.sha1(json.dumps(base_shaping(cfg), sort_keys=True).encode()).hexdigest()[:12]


def cache_path(cfg: RunConfig) -> Path:
    return Path(cfg.base.cache_dir) / f"{cfg.profile}-{base_key(cfg)}"


def resolve_base(cfg: RunConfig) -> Path | None:
    """The base model folder for cfg, None when it must be built (build_missing), or
    ConfigError (one line) when it is missing and may not be built on demand."""
    if cfg.model.path:
        return Path(cfg.model.path)
    if cfg.task.kind != "synthetic":  # base models are built and shipped for the synthetic task only
        raise ConfigError(f"model.path=None is invalid: task={cfg.task.kind} needs a model "
                          f"(no base model is shipped or built for it)")
    manifest = read_manifest(SHIPPED_DIR)
    if manifest is not None and manifest["key"] == base_key(cfg):
        verify(SHIPPED_DIR)
        return SHIPPED_DIR
    if (cache_path(cfg) / "config.json").is_file():
        return cache_path(cfg)
    if cfg.base.build_missing:
        return None
    diff = describe_diff(manifest["shaping"], base_shaping(cfg)) if manifest else "no shipped model"
    raise ConfigError(f"no base model for this base config (differs from the shipped one: {diff}); "
                      f"build it first with `make base ARGS='<the same overrides>'`")
