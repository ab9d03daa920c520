"""vLLM, the GPU-only sampler: TRL's vLLM rollouts (train.generation) and Average@k sampling (eval.backend).

python -m pytest -q tests/test_vllm_backend.py   # the choices and errors; vLLM itself runs only on a GPU

Three functions are the whole vLLM surface of the harness, so a GPU run exercises
exactly these and nothing else differs from the CPU path the tests run:
- `rollout_args(train)`: the SDFTConfig keys of train.generation (TRL does the sampling);
- `eval_backend(choice)`: which sampler an evaluation uses (auto: vLLM when importable
  and CUDA is there);
- `sample_completions_vllm(...)`: k completions per prompt, the same completions_P_K
  structure as harness/sampling.py's HF path, so grading and Average@k are shared.
vllm is imported lazily (inside the functions): the CPU install has no vllm.
"""

from __future__ import annotations

import gc
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import torch

from harness.config import ConfigError, TrainConfig


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def rollout_args(train: TrainConfig, cuda: bool | None = None) -> dict[str, Any]:
    """SDFTConfig keys for train.generation ({} for hf: TRL's transformers generate).
    cuda=None asks torch (tests pass it). ConfigError before the trainer is built when
    vllm is asked for without CUDA (vLLM has no CPU path here)."""
    if train.generation == "hf":
        return {}
    on_cuda = torch.cuda.is_available() if cuda is None else cuda
    if not on_cuda:
        raise ConfigError(f"train.generation={train.generation!r} is invalid: vLLM needs CUDA "
                          "and this machine has none (train.generation=hf)")
    return {"use_vllm": True, "vllm_mode": train.vllm_mode,
            "vllm_gpu_memory_utilization": train.vllm_gpu_memory}


def eval_backend(choice: str, cuda: bool | None = None, installed: bool | None = None) -> str:
    """'hf' or 'vllm' for eval.backend; None arguments ask torch / the installed packages."""
    on_cuda = torch.cuda.is_available() if cuda is None else cuda
    has_vllm = vllm_installed() if installed is None else installed
    if choice == "auto":
        return "vllm" if on_cuda and has_vllm else "hf"
    if choice == "vllm" and not (on_cuda and has_vllm):
        missing = "CUDA" if has_vllm else "the vllm package"
        raise ConfigError(f"eval.backend='vllm' is invalid: {missing} is missing here (eval.backend=hf)")
    return choice


def export_weights(model, tokenizer, folder: Path) -> None:
    """Save model + tokenizer as a plain checkpoint vLLM can load. A peft (LoRA) model is
    saved with its adapters merged into copies of the base weights: the model itself is
    never merged (merge + unmerge would round the frozen base weights, which are also
    teacher.mode=base's teacher, a little at every evaluation)."""
    if not hasattr(model, "get_base_model"):
        model.save_pretrained(folder)
    else:
        base = model.get_base_model()
        base.save_pretrained(folder, state_dict=merged_lora_state(base))
    tokenizer.save_pretrained(folder)


def merged_lora_state(base) -> dict[str, torch.Tensor]:
    """The state dict of a peft-wrapped model as the plain model's: `<layer>.base_layer.weight`
    back under `<layer>.weight`, plus each active adapter's delta (peft's own
    get_delta_weight, B A scaled), summed in fp32; the adapter tensors left out."""
    from peft.tuners.lora import LoraLayer

    state = {k.replace(".base_layer", ""): v for k, v in base.state_dict().items() if "lora_" not in k}
    for name, module in base.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        key = f"{name}.weight"
        weight = state[key].float()
        for adapter in module.active_adapters:
            if adapter in module.lora_A:
                weight = weight + module.get_delta_weight(adapter).float()
        state[key] = weight.to(state[key].dtype)
    return state


def sample_completions_vllm(model, tokenizer, prompts: list[str], k: int, temperature: float,
                            top_p: float, max_new_tokens: int, seed: int, gpu_memory: float,
                            trust_remote_code: bool = False) -> list[list[str]]:
    """completions_P_K as harness.sampling.sample_completions returns it, sampled by vLLM
    from the model's current weights (exported to a temporary folder; TMPDIR picks where).
    Prompts go in as the same token ids the HF path feeds (no special tokens added);
    each prompt has its own seed (seed + its index), so the draws do not depend on how
    vLLM batches them."""
    from vllm import LLM, SamplingParams

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    params = [SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                             seed=seed + i, skip_special_tokens=True) for i in range(len(prompts))]
    with tempfile.TemporaryDirectory(prefix="harness-vllm-") as folder:
        export_weights(model, tokenizer, Path(folder))
        # generation_config="vllm": the sampling is exactly `params`, never the defaults
        # of the model's generation_config.json (Qwen3 ships top_k 20, top_p 0.95).
        llm = LLM(model=folder, dtype="auto", seed=seed, gpu_memory_utilization=gpu_memory,
                  generation_config="vllm", trust_remote_code=trust_remote_code)
        try:
            outs = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        finally:
            del llm  # frees its GPU memory before training (periodic eval) goes on
            gc.collect()
            torch.cuda.empty_cache()
    return [[o.text for o in out.outputs] for out in outs]
