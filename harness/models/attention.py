"""python -c "from harness.models.attention import resolve; print(resolve('auto', 'cuda'))"

model.attn_implementation resolved to the kernel a run computes with, without importing torch
(the memory plan reads it on a login node). `auto`: flash attention 2 on CUDA where a flash
kernel is installed (the flash_attn package, or the `kernels` package, from which transformers
takes kernels-community/flash-attn2 when flash_attn is absent: transformers 5.23
modeling_utils.py:1786-1796), SDPA otherwise. Flash kernels never build an L x L mask: a padded
batch goes through varlen after unpadding (transformers modeling_flash_attention_utils.py), and a
packed one (harness/models/packing.py) carries no padding at all.
"""

from __future__ import annotations

import importlib.util

FLASH_PACKAGES = ("flash_attn", "kernels")


def flash_installed() -> bool:
    """A flash-attention kernel transformers can load here (flash_attn, or kernels' hub kernel)."""
    return any(importlib.util.find_spec(name) is not None for name in FLASH_PACKAGES)


def is_flash(name: str) -> bool:
    """flash_attention_2/3 or a hub flash kernel (kernels-community/flash-attn2, vllm-flash-attn3)."""
    return name.startswith("flash_attention") or "flash-attn" in name or "flash_attn" in name


def resolve(choice: str, device: str) -> str:
    """The attn_implementation passed to from_pretrained for model.attn_implementation on `device`."""
    if choice != "auto":
        return choice
    return "flash_attention_2" if str(device).startswith("cuda") and flash_installed() else "sdpa"
