"""A tiny chat model with a LoRA adapter that changes its outputs, for the tests of the weights
handed to vLLM (tests/test_lora_sync.py, tests/test_gpu_paths.py).

python -m pytest -q tests/test_lora_sync.py tests/test_gpu_paths.py
"""

from __future__ import annotations

from pathlib import Path

import torch


def weighted_lora_model(model_dir: Path, dtype: torch.dtype):
    """model_dir's model in dtype with LoRA r 4 on q_proj and up_proj; lora_B, which starts at 0
    (a no-op adapter), drawn from N(0, 0.5) (seed 0) so that the adapter matters."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.config.model import LoraConfig
    from harness.models.tiny import lora_adapter_config

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = get_peft_model(base, lora_adapter_config(LoraConfig(r=4, target_modules=["q_proj", "up_proj"])))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model
