"""The model's config (a saved model, a hub id or the tiny base), LoRA, and the tiny base's SFT recipe.

python -c "from harness.config.model import ModelConfig; help(ModelConfig)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.config.fields import LR_SCHEDULES, F, in_unit, require

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name on the Hugging Face hub
DTYPES = ("auto", "float32", "bfloat16", "float16")  # harness/compute/device.py decides what auto is
ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3")  # harness/models/attention.py
# Qwen3's linear layers (attention and MLP): the public OPSD runs adapt all of them.
QWEN3_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def is_hub_id(path: str) -> bool:
    """A model path that names a hub repo (org/name) rather than a local folder: not
    checked on disk here, from_pretrained finds (or fails to find) it at load time."""
    from pathlib import Path

    return not Path(path).exists() and HUB_ID.fullmatch(path) is not None


@dataclass
class LoraConfig:
    """LoRA adapters through peft; the base weights stay frozen (harness/trainers/opsd.py)."""

    r: int = F(0, "adapter rank; 0 trains all weights (no LoRA)")
    alpha: float | None = F(None, "LoRA alpha (scale alpha / r); null: 2 r (the public r 64 / alpha 128)")
    dropout: float = F(0.0, "dropout on the adapter input")
    target_modules: list[str] = F(QWEN3_LINEAR, "module names that get adapters")

    def __post_init__(self) -> None:
        require(self.r >= 0, "model.lora.r", self.r, ">= 0 (0: off)")
        require(self.alpha is None or self.alpha > 0, "model.lora.alpha", self.alpha, "> 0 or null")
        require(0 <= self.dropout < 1, "model.lora.dropout", self.dropout, "in [0, 1)")
        require(len(self.target_modules) >= 1, "model.lora.target_modules", self.target_modules,
                "at least one module name")


@dataclass
class ModelConfig:
    path: str | None = F(None, "a saved model folder or a hub id (org/name); null builds and "
                               "trains the tiny base model")
    hidden_size: int = F(128, "tiny model width")
    num_layers: int = F(4, "tiny model depth")
    num_heads: int = F(4, "attention heads")
    num_kv_heads: int = F(2, "key/value heads (GQA)")
    intermediate_size: int = F(512, "MLP width")
    dtype: str = F("auto", f"weights/compute precision, one of {DTYPES}; auto: bfloat16 on CUDA, "
                           "float32 on the CPU")
    trust_remote_code: bool = F(False, "let from_pretrained run the checkpoint's own code")
    attn_implementation: str = F("auto", "attention kernel: auto (flash_attention_2 on CUDA where flash_attn "
                                         "or kernels is importable, else sdpa) | sdpa | eager | "
                                         "flash_attention_2 | flash_attention_3 | a hub kernel org/name "
                                         "(kernels-community/flash-attn2); flash kernels build no L x L "
                                         "mask (harness/models/attention.py)")
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"):
            require(getattr(self, name) >= 1, f"model.{name}", getattr(self, name), ">= 1")
        require(self.hidden_size % self.num_heads == 0, "model.hidden_size", self.hidden_size,
                "must be divisible by model.num_heads")
        require(self.dtype in DTYPES, "model.dtype", self.dtype, f"one of {DTYPES}")
        attn = self.attn_implementation
        require(attn in ATTENTION or HUB_ID.fullmatch(attn) is not None, "model.attn_implementation", attn,
                f"one of {ATTENTION} or a hub kernel org/name")
        if self.path is not None and not is_hub_id(self.path):
            from pathlib import Path

            require((Path(self.path) / "config.json").is_file(), "model.path", self.path,
                    "is neither a saved model folder (no config.json) nor a hub id org/name")


@dataclass
class BaseTrainConfig:
    """SFT of the tiny base model (TRL SFTTrainer)."""

    steps: int = F(5000, "optimiser steps")
    batch_size: int = F(8, "sequences per step (small: more updates per row)")
    lr: float = F(1e-3, "peak learning rate")
    lr_schedule: str = F("cosine", "transformers lr_scheduler_type of the SFT")
    weight_decay: float = F(0.0, "AdamW weight decay of the SFT")
    seed: int = F(0, "seed of init and data")
    student_fraction: float = F(0.5, "share of examples in the student format (no reference)")
    full_ref_fraction: float = F(0.5, "of teacher-format examples, share with the full reference")
    warmup_ops: list[int] = F([1, 2], "[min, max] operations of the problems in the first "
                                      "warmup_share of the SFT rows (short chains: cheap steps that "
                                      "teach the arithmetic table)")
    warmup_share: float = F(0.3, "share of the SFT rows drawn with warmup_ops (0: none)")
    step_error: float = F(0.15, "chance that a step result the model computes itself (not copied "
                               "from the shown reference) is wrong in the SFT targets")
    error_from: float = F(0.75, "share of the SFT steps after which targets carry step_error "
                               "(before it they are clean, so the arithmetic is learned first)")
    cache_dir: str = F(".cache/base", "where built base models are kept, keyed by config hash")
    build_missing: bool = F(False, "build the base model on demand when neither the shipped model "
                                   "nor the cache has one for this config (false: refuse; `make base` "
                                   "builds it)")

    def __post_init__(self) -> None:
        require(self.steps >= 1, "base.steps", self.steps, ">= 1")
        require(self.batch_size >= 1, "base.batch_size", self.batch_size, ">= 1")
        require(self.lr > 0, "base.lr", self.lr, "> 0")
        require(self.weight_decay >= 0, "base.weight_decay", self.weight_decay, ">= 0")
        in_unit("base.student_fraction", self.student_fraction)
        in_unit("base.full_ref_fraction", self.full_ref_fraction)
        in_unit("base.step_error", self.step_error)
        in_unit("base.warmup_share", self.warmup_share)
        lo_hi = list(self.warmup_ops)
        require(len(lo_hi) == 2 and 1 <= lo_hi[0] <= lo_hi[1] <= 12, "base.warmup_ops", lo_hi,
                "[min, max] with 1 <= min <= max <= 12")
        in_unit("base.error_from", self.error_from)
        require(self.lr_schedule in LR_SCHEDULES, "base.lr_schedule", self.lr_schedule,
                f"one of {LR_SCHEDULES}")
