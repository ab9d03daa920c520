"""python -m harness.memory.plan experiment=paper_qwen3_8b launcher.gpu_mem_gb=80

The predicted peak memory of one run per device, part by part, before anything launches.

python -m harness.memory.plan [hydra overrides]     # the plan of that point (GPU: per GPU)
python -m harness.memory.validate [--sizes 2x8,2x256,2x256@256,4x128x2@128] [--keep DIR]
                                                  # plan vs measured peak RSS on the CPU

Parts (harness/memory/parts.py, each function's docstring cites the library lines it follows;
bytes; b = the compute dtype's size: 2 for bf16 on CUDA, 4 for fp32 on the CPU):
- weights: parameter count x b, or x 4 for full fine-tuning on CUDA (fp32 masters under bf16
  autocast, harness/compute/device.py); a frozen teacher copy in the same dtype where
  teacher.mode=base|ema has no LoRA to switch off; ema with LoRA: a second adapter;
- LoRA + optimiser: trainable params x (4 fp32 adapter + 4 grad + 8 Adam); full fine-tuning:
  grad + Adam m, v in the weights' dtype; DDP over several GPUs adds one gradient bucket copy;
- activations of the student forward kept for the backward, per token and layer
  ACT_COEF = 10 h + 4 i + 3 H d + 5 K d values of b bytes (RMSNorm inputs and outputs,
  q/k/v and their norms, attention output, SwiGLU's gate/up/act/product; flash/SDPA
  attention keeps no T x T matrix). train.gradient_checkpointing (default true, TRL's own):
  each layer's input (h) plus one layer's ACT_COEF; false: every layer's;
- peft input casts: LoRA under bf16 saves one more copy of each adapted linear's input,
  5 h + H d + i values per token and layer (one layer with checkpointing);
- logits: the chunked loss (harness/losses/chunked.py) holds about CHUNK_LIVE (12) fp32 tensors of
  chunk_tokens x V, chunk_tokens = floor(loss.chunk_mb 2^20 / (4 V)), beside the student's
  and teacher's final hidden states (fp32) of the micro-batch's completions. Before
  harness/losses/chunked.py exists the loss holds about OLD_LOGITS fp32 [rows x completion x V]
  tensors over the whole step (issue 19's measurement): the plan follows the code in the tree;
- teacher forward: one layer's no-grad transient over rows x teacher length (4 h + 3 i values),
  plus SDPA's L x L masks of those rows (bool + additive bf16 + padded: ~5 bytes an entry; none
  on a flash kernel);
- probe: teacher hidden states of probe.exposures x micro-batch rows, and the larger of the
  chunks and one teacher forward of exposures_per_forward x rows rows (probe.max_rows) with masks;
- progress (ATESD val_accuracy): HF generate's KV cache of one batch of
  min(controller.progress_batch_size, task.val_size x controller.progress_samples) rows;
- generation: HF generate's KV cache, rows x (prompt + completion) x 2 L K d b, or vLLM's
  share train.vllm_gpu_memory x the device (train.generation=vllm|auto on CUDA, colocated;
  none in server mode);
- export: before a vLLM evaluation of a LoRA run, merged copies of the adapted weights;
- eval: vLLM's share eval.vllm_gpu_memory x the device (eval.backend vllm|auto on CUDA) or
  HF generate's KV cache of eval.batch_size rows.
The device is this process's GPU (torch.cuda total_memory once CUDA runs here; nvidia-smi on a GPU
machine that only plans) where it has one, else launcher.gpu_mem_gb: vLLM's shares are of the
physical device. Weights, optimiser and (vLLM
without sleep mode) the rollout engine live all run long; the other parts are phases that do not
overlap (generation, train step, probe, progress, export, eval), so the total is the persistent
parts plus the largest phase.

Sequence lengths: the student prompt is bounded by STUDENT_PROMPT (a documented estimate:
math problems in the chat template fit 512 tokens; synthetic ones 32), the teacher prompt by
task.max_teacher_tokens (when > 0; else TEACHER_PROMPT); each plus train.max_completion_length.

Model shapes (harness/memory/shape.py): a local folder's config.json, or QWEN3_SHAPES for the
hub ids the presets use (nothing can be downloaded at planning time); the tiny model from model.*.

`refuse_unfit(cfg)` (sweep planning, every point): a CUDA point (launcher.gpus_per_node > 0)
whose total exceeds its device (launcher.gpu_mem_gb > 0, or this machine's GPU) is a one-line
ConfigError naming the largest part, the largest train.micro_batch that fits and each memory
setting that makes it fit (fixes: probe.max_rows, gradient checkpointing, flash attention). The
CPU default is never refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace

from harness.config.schema import ConfigError, RunConfig
from harness.memory.parts import (
    GB,
    Part,
    Plan,
    activation_part,
    checkpointed_activations,
    current_loss_path,
    device_budget,
    eval_part,
    export_part,
    generation_part,
    logits_part,
    optimiser_part,
    padding_free,
    peft_cast_part,
    probe_part,
    probe_teacher_rows,
    progress_part,
    sizes,
    teacher_part,
    weight_parts,
)
from harness.memory.shape import QWEN3_SHAPES, Shape, model_shape

__all__ = ["GB", "QWEN3_SHAPES", "Part", "Plan", "Shape", "budget_gb", "fits", "fixes", "largest_fitting",
           "main", "model_shape", "plan", "refuse_unfit", "render"]


def plan(cfg: RunConfig, micro_batch: int | None = None, loss_path: str | None = None,
         gpu_mem_gb: float | None = None) -> Plan:
    """The plan of this point; micro_batch None: cfg's (RunConfig.micro_batch)."""
    path = loss_path or current_loss_path()
    mb = micro_batch or cfg.train.micro_batch or cfg.rows_per_process  # one process's rows per forward
    shape = model_shape(cfg)
    s = sizes(cfg, shape, mb, path)
    gpu_gb = cfg.launcher.gpu_mem_gb if gpu_mem_gb is None else gpu_mem_gb
    budget, basis = device_budget(gpu_gb) if s.cuda else (0.0, "")
    device = "cuda" if s.cuda else "cpu"
    if cfg.method.name == "base":  # the base run only evaluates: weights and the sampler
        parts = [Part("weights", shape.params() * s.b, "persistent"), eval_part(cfg, s, gpu_gb)]
        return Plan(device, path, s.rows, parts, budget_gb=budget, budget_basis=basis)
    ckpt = cfg.train.gradient_checkpointing
    parts = [*weight_parts(cfg, s), optimiser_part(cfg, s), activation_part(s, ckpt), logits_part(cfg, s)]
    parts += [p for p in (peft_cast_part(cfg, s, ckpt), teacher_part(cfg, s), probe_part(cfg, s),
                          progress_part(cfg, s, gpu_gb)) if p]
    export = export_part(cfg, s)
    parts += [generation_part(cfg, s, gpu_gb), *([export] if export else []), eval_part(cfg, s, gpu_gb)]
    out = Plan(device, path, s.rows, parts, budget_gb=budget, budget_basis=basis)
    if not ckpt:
        out.notes.append(f"with train.gradient_checkpointing=true the activations would be "
                         f"{checkpointed_activations(s) / GB:.2f} GB")
    if s.cuda and not padding_free(cfg, True):
        out.notes.append(f"attention: model.attn_implementation={cfg.model.attn_implementation} plans SDPA's "
                         "L x L masks (no flash kernel importable here); flash_attention_2 drops them")
    if path == "full":
        out.notes.append("harness/losses/chunked.py is not in the tree: the full-vocabulary loss, one "
                         "forward per step (train.micro_batch not yet honoured)")
    return out


def budget_gb(cfg: RunConfig) -> float:
    """The GPU a point is held against: this machine's when it has one, else launcher.gpu_mem_gb
    (0: no check)."""
    gpu = cfg.launcher.gpu_mem_gb
    return device_budget(gpu)[0] if gpu > 0 else 0.0


def fits(cfg: RunConfig, micro_batch: int, gpu_mem_gb: float, loss_path: str | None = None) -> bool:
    return plan(cfg, micro_batch, loss_path).total <= gpu_mem_gb * GB


def largest_fitting(cfg: RunConfig, loss_path: str | None = None) -> int | None:
    """The largest train.micro_batch (a divisor of a process's rows) that fits, or None."""
    rows, budget = cfg.rows_per_process, budget_gb(cfg)
    for m in sorted((d for d in range(1, rows + 1) if rows % d == 0), reverse=True):
        if fits(cfg, m, budget, loss_path):
            return m
    return None


def memory_settings(cfg: RunConfig) -> dict[str, Callable[[RunConfig], RunConfig]]:
    """The settings that lower the plan without changing what a run computes, each as an override
    and its effect on cfg: the probe one exposure a forward, gradient checkpointing, flash attention."""
    out: dict[str, Callable[[RunConfig], RunConfig]] = {}
    mb = cfg.train.micro_batch or cfg.rows_per_process
    if cfg.probe.every and probe_teacher_rows(cfg, mb) > mb:
        out[f"probe.max_rows={mb}"] = lambda c: replace(c, probe=replace(c.probe, max_rows=mb))
    if not cfg.train.gradient_checkpointing:
        out["train.gradient_checkpointing=true"] = lambda c: replace(
            c, train=replace(c.train, gradient_checkpointing=True))
    if not padding_free(cfg, cfg.launcher.gpus_per_node > 0):
        out["model.attn_implementation=flash_attention_2"] = lambda c: replace(
            c, model=replace(c.model, attn_implementation="flash_attention_2"))
    return out


def fixes(cfg: RunConfig, loss_path: str | None = None) -> list[str]:
    """The overrides (one setting, else all of memory_settings together) under which a point that
    does not fit its budget fits; [] when none does."""
    budget = budget_gb(cfg) * GB
    settings = memory_settings(cfg)
    single = [name for name, apply in settings.items()
              if plan(apply(cfg), loss_path=loss_path).total <= budget]
    if single or not settings:
        return single
    every = cfg
    for apply in settings.values():
        every = apply(every)
    return [" ".join(settings)] if plan(every, loss_path=loss_path).total <= budget else []


def refuse_unfit(cfg: RunConfig, loss_path: str | None = None) -> None:
    """ConfigError (one line) when a CUDA point's plan exceeds its GPU (budget_gb)."""
    if cfg.launcher.gpus_per_node == 0 or cfg.launcher.gpu_mem_gb <= 0:
        return  # CPU points (the embedded default) and gpu_mem_gb=0 are never refused
    p = plan(cfg, loss_path=loss_path)
    gpu = budget_gb(cfg)
    if p.total <= gpu * GB:
        return
    mb = cfg.train.micro_batch
    asked = f"train.micro_batch={mb}" if mb else f"train.micro_batch=null (all {cfg.rows_per_process} rows)"
    best = largest_fitting(cfg, loss_path)
    hints = [f"train.micro_batch<={best} fits"] if best else []
    hints += [f"{fix} fits" for fix in fixes(cfg, loss_path)]
    hint = " or ".join(hints) or "nothing fits (a smaller model, shorter rollouts or a larger GPU)"
    big = p.largest
    where = (f"launcher.gpu_mem_gb={gpu:g}" if p.budget_basis.startswith("launcher") else
             f"this machine's GPU of {gpu:g} GB (launcher.gpu_mem_gb={cfg.launcher.gpu_mem_gb:g})")
    raise ConfigError(f"{asked} does not fit {where}: predicted {p.total / GB:.1f} GB, largest part "
                      f"{big.name} {big.bytes / GB:.1f} GB; {hint}")


def render(p: Plan, cfg: RunConfig) -> str:
    where = (f"per GPU of {p.budget_gb:g} GB: {p.budget_basis}" if p.device == "cuda" else "CPU process")
    lines = [f"memory plan ({where}; {p.loss_path} loss; {p.micro_batch} rows per forward; "
             f"model {cfg.model.path or 'tiny'})"]
    for part in p.parts:
        lines.append(f"  {part.name:<32} {part.bytes / GB:9.2f} GB  [{part.phase}] {part.note}")
    lines.append(f"  {'total':<32} {p.total / GB:9.2f} GB  = persistent "
                 f"{p.phase_bytes('persistent') / GB:.2f} + largest phase {p.peak_phase} "
                 f"{p.phase_bytes(p.peak_phase) / GB:.2f}")
    lines += [f"  note: {n}" for n in p.notes]
    if p.device == "cuda" and cfg.launcher.gpu_mem_gb > 0:
        ok = p.total <= p.budget_gb * GB
        lines.append(f"  {'fits' if ok else 'does NOT fit'} {p.budget_gb:g} GB; largest fitting "
                     f"train.micro_batch: {largest_fitting(cfg, p.loss_path)}")
        if not ok:
            lines.append("  fits with: " + (" | ".join(fixes(cfg, p.loss_path)) or "none of probe.max_rows, "
                                           "gradient checkpointing, flash attention"))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from harness.config.settings import compose, fail

    ap = argparse.ArgumentParser(prog="python -m harness.memory.plan", description=__doc__.splitlines()[2])
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    try:
        cfg = compose(a.overrides)
        print(render(plan(cfg), cfg))
    except ValueError as err:
        fail(err)


if __name__ == "__main__":
    main(sys.argv[1:])
