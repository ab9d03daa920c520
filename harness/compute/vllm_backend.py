"""vLLM, the GPU-only sampler: TRL's vLLM rollouts (train.generation) and Average@k sampling (eval.backend).

python -m pytest -q tests/test_gpu_paths.py tests/test_generation_bounds.py   # choices, bounds, sync

The whole vLLM surface of the harness is here, so a GPU run exercises exactly these
and nothing else differs from the CPU path the tests run:
- `rollout_args(train)`: the SDFTConfig / GRPOConfig keys of train.generation (TRL samples;
  both configs name the keys alike in TRL 1.16): top_k always, vLLM's keys when it is chosen;
- `eval_backend(choice)`: which sampler an evaluation uses (auto: vLLM when importable
  and CUDA is there); `check_eval_budget(cfg)`: an HF evaluation it cannot serve, refused;
- `vllm_engine(...)`: one engine for every suite of an evaluation (`sample_completions_vllm`
  is its one-call form), the same completions_P_K structure as harness/evaluation/sampling.py's HF path;
- `install_drift_free_sync(trainer)`: TRL's LoRA weight sync without merging into the base.
vllm is imported lazily (`_vllm()`): the CPU install has no vllm.
"""

from __future__ import annotations

import gc
import importlib.util
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness.config.schema import ConfigError, RunConfig
from harness.config.train import TrainConfig

if TYPE_CHECKING:
    from harness.evaluation.progress import BatchLog

# Student rollout prompts are a problem in the chat template: AIME / HMMT / OpenThoughts-math
# problems are a few hundred tokens. vLLM plans its KV cache for max_model_len, so the
# rollouts' engine gets this bound + train.max_completion_length instead of Qwen3's 40,960
# context (a prompt past this bound would get fewer new tokens; pass prompt_tokens to raise it).
ROLLOUT_PROMPT_TOKENS = 2048
VLLM_EXTRA = "pip install -e '.[vllm]'"


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def generation_backend(train: TrainConfig, cuda: bool | None = None,
                       installed: bool | None = None) -> str:
    """'hf' or 'vllm' for train.generation (auto: vLLM where it is importable on CUDA);
    None arguments ask torch / the installed packages. vllm without CUDA: ConfigError."""
    on_cuda = torch.cuda.is_available() if cuda is None else cuda
    if train.generation == "auto":
        has_vllm = vllm_installed() if installed is None else installed
        return "vllm" if on_cuda and has_vllm else "hf"
    if train.generation == "vllm" and not on_cuda:
        raise ConfigError(f"train.generation={train.generation!r} is invalid: vLLM needs CUDA "
                          "and this machine has none (train.generation=hf)")
    return train.generation


def rollout_args(train: TrainConfig, cuda: bool | None = None, installed: bool | None = None,
                 prompt_tokens: int = ROLLOUT_PROMPT_TOKENS) -> dict[str, Any]:
    """SDFTConfig / GRPOConfig keys of the rollouts: top_k always (HF generate and vLLM
    alike), and for vLLM its mode and memory share; colocated, also its context
    (prompt_tokens + train.max_completion_length) and TRL's sleep mode (train.vllm_sleep).
    ConfigError before the trainer is built when vllm is asked for without CUDA."""
    args: dict[str, Any] = {"top_k": train.top_k}
    if generation_backend(train, cuda, installed) == "hf":
        return args
    args.update(use_vllm=True, vllm_mode=train.vllm_mode,
                vllm_gpu_memory_utilization=train.vllm_gpu_memory)
    if train.vllm_mode == "colocate":  # a server sizes itself (trl vllm-serve's own flags)
        args.update(vllm_max_model_length=prompt_tokens + train.max_completion_length,
                    vllm_enable_sleep_mode=train.vllm_sleep)
    return args


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


def check_eval_budget(cfg: RunConfig, cuda: bool | None = None, installed: bool | None = None) -> None:
    """One-line ConfigError when the evaluation would run on HF generate with more new
    tokens than eval.hf_max_new_tokens (a thinking budget of 38,912 tokens x batch 64 is a
    KV cache of hundreds of GB), unless eval.force_hf. Call it before training starts and
    when a sweep is planned; cuda / installed describe the machine the run will use."""
    e = cfg.eval
    if e.force_hf or e.max_new_tokens <= e.hf_max_new_tokens:
        return
    if eval_backend(e.backend, cuda, installed) == "hf":
        raise ConfigError(f"eval.max_new_tokens={e.max_new_tokens} is invalid with eval.backend="
                          f"{e.backend!r} resolving to hf here: HF generate serves at most "
                          f"eval.hf_max_new_tokens={e.hf_max_new_tokens} (eval.backend=vllm on CUDA "
                          f"with {VLLM_EXTRA}, or eval.force_hf=true)")


def free_device_memory() -> None:
    """Drop unreachable tensors and hand the caching allocator's free blocks back: vLLM V1
    refuses to start when free memory is below its share, and training's cached blocks
    count as used."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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


def merged_weight(layer, weight: torch.Tensor) -> torch.Tensor:
    """A new tensor: `weight` plus each active adapter's delta of a peft LoraLayer (peft's own
    get_delta_weight, B A scaled), summed in fp32 and cast back; `weight` is not touched."""
    merged = weight.float()
    for adapter in layer.active_adapters:
        if adapter in layer.lora_A:
            merged = merged + layer.get_delta_weight(adapter).float()
    return merged.to(weight.dtype)


def merged_lora_state(base) -> dict[str, torch.Tensor]:
    """The state dict of a peft-wrapped model as the plain model's: `<layer>.base_layer.weight`
    back under `<layer>.weight` with the adapters merged (merged_weight); adapter tensors left out."""
    from peft.tuners.lora import LoraLayer

    state = {k.replace(".base_layer", ""): v for k, v in base.state_dict().items() if "lora_" not in k}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            state[f"{name}.weight"] = merged_weight(module, state[f"{name}.weight"])
    return state


def merged_named_params(model) -> Iterator[tuple[str, torch.Tensor]]:
    """(name as the plain model's, tensor) for every weight of a peft model, one at a time:
    a LoRA layer's weight merged into a copy (merged_weight), every other weight as it is.
    Names follow TRL's sync: `base_model.model.` and `.base_layer` dropped, adapters and
    modules_to_save originals left out."""
    from peft.tuners.lora import LoraLayer

    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}
    for name, param in model.named_parameters():
        if "lora_" in name or "original_module" in name:
            continue
        plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
        layer = layers.get(name.removesuffix(".base_layer.weight")) if name.endswith(
            ".base_layer.weight") else None
        yield plain, param.data if layer is None else merged_weight(layer, param.data)


def install_drift_free_sync(trainer) -> bool:
    """Make a TRL trainer's vLLM weight sync (trainer.vllm_generation.sync_weights, TRL 1.16)
    send LoRA-merged copies instead of merging the adapter into the base and unmerging it
    again every step, which rounds the bf16 base - the frozen teacher of teacher.mode=base -
    a little each time (TRL #6688). The rest of sync_weights (sleep-mode wake-up, server or
    colocate load, prefix-cache reset) is TRL's. True when installed; False without vLLM
    rollouts or without LoRA (a plain model is sent as it is: nothing is merged)."""
    from accelerate.utils import is_peft_model

    gen = getattr(trainer, "vllm_generation", None)
    if gen is None or not is_peft_model(gen.model):
        return False
    if gen._dist.is_fsdp:
        raise ConfigError("train.generation='vllm' with LoRA is invalid under FSDP: its weight sync "
                          "merges into the shared base (use DDP, launcher.gpus_per_node as is)")

    def iter_named_params() -> Iterator[tuple[str, torch.Tensor]]:
        model = gen.model
        # ZeRO-3: every rank gathers (a collective); elsewhere a no-op, as in TRL.
        with gen._dist.gather_params(list(model.parameters())):
            for name, tensor in merged_named_params(model):
                yield gen._fix_param_name_to_vllm(name, extra_prefixes=["modules_to_save.default."]), tensor

    gen._iter_named_params = iter_named_params  # sync_weights calls self._iter_named_params()
    return True


def drop_expandable_segments(train: TrainConfig, cuda: bool | None = None, installed: bool | None = None,
                             env: dict[str, str] | None = None) -> bool:
    """Remove `expandable_segments:True` from PYTORCH_CUDA_ALLOC_CONF (which many clusters set)
    when this run's rollouts use vLLM's sleep mode: vLLM's CuMemAllocator, which sleep mode uses,
    refuses that allocator setting (review C2). Called before CUDA starts; True when it dropped it."""
    import os

    env = os.environ if env is None else env
    conf = env.get("PYTORCH_CUDA_ALLOC_CONF", "")
    if "expandable_segments:True" not in conf or not train.vllm_sleep or train.vllm_mode != "colocate":
        return False
    if generation_backend(train, cuda, installed) != "vllm":
        return False
    kept = [x for x in conf.split(",") if x.strip() and x.strip() != "expandable_segments:True"]
    if kept:
        env["PYTORCH_CUDA_ALLOC_CONF"] = ",".join(kept)
    else:
        env.pop("PYTORCH_CUDA_ALLOC_CONF")
    print("note: PYTORCH_CUDA_ALLOC_CONF expandable_segments:True dropped for this run: vLLM's sleep mode "
          "(train.vllm_sleep) cannot run with it", flush=True)
    return True


# ---- TRL's colocated rollout engine: seeded from the run's seed, and ATESD's progress sampler ---------
_ROLLOUT_ENGINE: weakref.ref | None = None  # TRL's VLLMGeneration of this process's trainer


def rollout_seed(seed: int, rank: int) -> int:
    """The sampling seed of rank `rank`'s colocated rollout engine in a run of seed `seed`."""
    return seed * 1000 + rank


def adopt_rollout_engine(trainer) -> bool:
    """Make TRL's colocated vLLM engine (trainer.vllm_generation, TRL 1.16) the run's own; True
    when there is one. TRL builds it with seed=process_index (trl/generation/vllm_generation.py
    `seed=accelerator.process_index // tensor_parallel_size`), so seeds 0, 1, 2 of a run drew the
    same rollouts (review C2), and its one SamplingParams per step cannot carry a seed per
    request. The colocated engine runs in this process (external launcher) and draws unseeded
    requests from the device's default generator, so reseeding that generator once the engine
    exists makes the rollouts follow the run's `seed` and the rank. The engine is also kept
    (weakly) for ATESD's progress sampling (`rollout_engine`)."""
    global _ROLLOUT_ENGINE
    gen = getattr(trainer, "vllm_generation", None)
    if gen is None or getattr(gen, "mode", None) != "colocate":
        return False
    _ROLLOUT_ENGINE = weakref.ref(gen)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(rollout_seed(int(trainer.args.seed), int(trainer.accelerator.process_index)))
    return True


def rollout_engine(model) -> Any | None:
    """The adopted colocated engine of the trainer that trains `model`, where it can serve other
    samples: a tensor-parallel size of 1 (a larger group needs every rank in each call)."""
    gen = _ROLLOUT_ENGINE() if _ROLLOUT_ENGINE is not None else None
    if gen is None or gen.model is not model or getattr(gen, "tensor_parallel_size", 1) != 1:
        return None
    return gen


def sample_on_rollout_engine(gen, tokenizer, prompts: list[str], k: int, temperature: float, top_p: float,
                             max_new_tokens: int, seed: int) -> list[list[str]] | None:
    """completions_P_K from TRL's colocated engine at the model's current weights, prompt i
    seeded seed + i (as VLLMEngine.sample); None when a prompt does not fit the engine's context
    (ROLLOUT_PROMPT_TOKENS + train.max_completion_length): the caller samples on HF then. The
    weights are pushed first (TRL's sync_weights, which also wakes them from sleep mode; the
    trainer pushes them again before its next rollouts) and the engine sleeps again after, as
    TRL's generate leaves it."""
    _, SamplingParams = _vllm()
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if max(len(x) for x in ids) + max_new_tokens > gen.max_model_length:
        return None
    gen.sync_weights()
    if gen.enable_sleep_mode:
        gen.llm.wake_up(tags=["kv_cache"])
    try:
        params = [SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                 seed=seed + i, skip_special_tokens=True) for i in range(len(ids))]
        outs = gen.llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
    finally:
        if gen.enable_sleep_mode:
            gen.llm.sleep(level=2)
            gen._llm_weights_sleeping = True  # TRL's own flag: its next generate pushes the weights again
    return [[o.text for o in out.outputs] for out in outs]


def _vllm():
    """(LLM, SamplingParams) of the installed vllm (tests put a recorder here)."""
    from vllm import LLM, SamplingParams

    return LLM, SamplingParams


class VLLMEngine:
    """One vLLM engine over a model's exported weights; `sample` serves any number of prompt
    sets (every suite of an evaluation) with the same engine."""

    def __init__(self, llm, tokenizer) -> None:
        self.llm, self.tokenizer = llm, tokenizer

    def sample(self, prompts: list[str], k: int, temperature: float, top_p: float,
               max_new_tokens: int, seed: int, log: BatchLog | None = None,
               piece: int = 0) -> list[list[str]]:
        """completions_P_K as harness.evaluation.sampling.sample_completions returns it. Prompts go in as
        the same token ids the HF path feeds (no special tokens added); each prompt has its
        own seed (seed + its index), so the draws do not depend on how vLLM batches them (a
        common random number across runs: the same problem draws with the same seed), nor on
        `piece`: prompts per generate call (0: all), each piece appended to `log` once drawn
        (harness/evaluation/progress.py), so a requeue redraws only the piece in flight."""
        piece = piece or max(1, len(prompts))
        out: list[list[str]] = []
        for b, start in enumerate(range(0, len(prompts), piece)):
            if log is not None and not log.owns(b):  # another rank's piece (harness/evaluation/shards.py)
                out.extend([] for _ in prompts[start:start + piece])
                continue
            done = log.get(b) if log is not None else None
            if done is not None:
                out.extend(done["texts"])
                continue
            part = self._generate(prompts[start:start + piece], k, temperature, top_p, max_new_tokens,
                                  seed + start)
            if log is not None:
                log.put(b, part, None)
            out.extend(part)
        return out

    def _generate(self, prompts: list[str], k: int, temperature: float, top_p: float,
                  max_new_tokens: int, seed: int) -> list[list[str]]:
        _, SamplingParams = _vllm()
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        params = [SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                 seed=seed + i, skip_special_tokens=True) for i in range(len(prompts))]
        outs = self.llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        return [[o.text for o in out.outputs] for out in outs]


@contextmanager
def vllm_engine(model, tokenizer, seed: int, gpu_memory: float,
                trust_remote_code: bool = False, max_model_len: int | None = None) -> Iterator[VLLMEngine]:
    """A VLLMEngine on the model's current weights (exported to a temporary folder; TMPDIR
    picks where). GPU memory is freed before LLM() starts (training's cached blocks) and
    after it ends (training or the next evaluation goes on); the engine is dropped on exit
    even where a caller still holds the VLLMEngine."""
    LLM, _ = _vllm()
    with tempfile.TemporaryDirectory(prefix="harness-vllm-") as folder:
        export_weights(model, tokenizer, Path(folder))
        free_device_memory()
        # generation_config="vllm": the sampling is exactly the given params, never the
        # defaults of the model's generation_config.json (Qwen3 ships top_k 20, top_p 0.95).
        engine = VLLMEngine(None, tokenizer)
        try:
            # max_model_len: eval.max_model_len (the public OPSD evaluation's 40,960), None: config.json's
            engine.llm = LLM(model=folder, dtype="auto", seed=seed, gpu_memory_utilization=gpu_memory,
                             generation_config="vllm", trust_remote_code=trust_remote_code,
                             **({"max_model_len": max_model_len} if max_model_len else {}),
                             **data_parallel_args())
            yield engine
        finally:
            engine.llm = None  # the last reference: the engine shuts down and frees its memory
            free_device_memory()


def data_parallel_args() -> dict[str, str]:
    """One engine per rank in a run of several processes (a data-parallel evaluation,
    harness/evaluation/shards.py): vLLM's external launcher takes the rank's device from the
    torch.distributed environment, as TRL 1.16's colocated engine does
    (trl/generation/vllm_generation.py, `distributed_executor_backend="external_launcher"`)."""
    import os

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return {"distributed_executor_backend": "external_launcher"} if several else {}


def sample_completions_vllm(model, tokenizer, prompts: list[str], k: int, temperature: float,
                            top_p: float, max_new_tokens: int, seed: int, gpu_memory: float,
                            trust_remote_code: bool = False) -> list[list[str]]:
    """completions_P_K from a one-off engine (vllm_engine); an evaluation of several suites
    uses one engine for all of them (harness/evaluation/suites.py)."""
    with vllm_engine(model, tokenizer, seed, gpu_memory, trust_remote_code) as engine:
        return engine.sample(prompts, k, temperature, top_p, max_new_tokens, seed)
