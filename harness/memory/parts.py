"""python -m harness.memory.plan [hydra overrides]     # prints these parts, one a line

The parts of the memory plan (harness/memory/plan.py's docstring gives each formula): weights,
LoRA + optimiser, activations, peft input casts, logits, teacher forward (with SDPA's masks), probe,
progress sampling, generation, export and eval, each a Part in its phase, computed from the Sizes of
one point (shape, dtype size, rows and lengths); the device they are held against (device_budget).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.schema import RunConfig
from harness.config.train import TrainConfig
from harness.memory.shape import Shape
from harness.registry import get

GB = 1e9
# fp32 [chunk_tokens x V] tensors alive in one block of the chunked loss: measured on the CPU
# (peak RSS over block tokens, 2x8 vs 2x256 rows x tokens: ~12; the design's first guess was 8).
CHUNK_LIVE = 12
OLD_LOGITS = 17  # fp32 [rows x C x V] tensors alive in the full-vocabulary loss (issue 19)
OLD_KL_TEMPS = 4  # the old probe's kl(): two log-softmaxes, exp, product beside the logits
GRPO_LOGITS = 4  # TRL GRPO's log-probs: logits, log-softmax, its grad, entropy (per chunk of rows)
STUDENT_PROMPT = {"math": 512, "synthetic": 32}
TEACHER_PROMPT = 8192  # math without task.max_teacher_tokens: a long reference's bound
SAMPLING_TEMPS = 4  # fp32 [rows x V] tensors of one sampling step (logits, probs, top-p sort)


@dataclass
class Part:
    name: str
    bytes: float
    phase: str  # "persistent" or the phase it belongs to
    note: str = ""


@dataclass
class Plan:
    device: str  # "cuda" (per GPU) or "cpu"
    loss_path: str  # "chunked" or "full"
    micro_batch: int
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budget_gb: float = 0.0  # the GPU the plan is held against (device_budget); 0: none
    budget_basis: str = ""

    def phase_bytes(self, phase: str) -> float:
        return sum(p.bytes for p in self.parts if p.phase == phase)

    @property
    def phases(self) -> list[str]:
        return list(dict.fromkeys(p.phase for p in self.parts if p.phase != "persistent"))

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_bytes, default="persistent")

    @property
    def total(self) -> float:
        peak = max((self.phase_bytes(ph) for ph in self.phases), default=0.0)
        return self.phase_bytes("persistent") + peak

    @property
    def largest(self) -> Part:
        return max(self.parts, key=lambda p: p.bytes)


@dataclass(frozen=True)
class Sizes:
    """What the parts are made of: shape, dtype size, rows and lengths."""

    shape: Shape
    b: int  # bytes of the compute dtype
    cuda: bool
    rows: int  # rows per forward/backward
    step_rows: int  # rollouts a step (generation)
    student_len: int
    teacher_len: int
    completion: int
    path: str  # the loss path: "chunked" or "full"


def current_loss_path() -> str:
    """chunked once the OPSD trainer computes its loss with harness/losses/chunked.py (micro-batches
    landed with it), else full: the plan follows the code in the tree, read as text so that
    planning does not import TRL."""
    spec = importlib.util.find_spec("harness.trainers.opsd")
    text = Path(spec.origin).read_text() if spec and spec.origin else ""
    return "chunked" if "from harness.losses.chunked import" in text else "full"


def dtype_bytes(cfg: RunConfig, cuda: bool) -> int:
    """Bytes of the compute dtype, as harness/compute/device.py choose() decides it (auto: bf16 on
    CUDA, fp32 on the CPU), without importing torch at planning time."""
    dtype = cfg.model.dtype
    if dtype == "auto":
        return 2 if cuda else 4
    return 4 if dtype == "float32" else 2


def sizes(cfg: RunConfig, shape: Shape, micro_batch: int, loss_path: str) -> Sizes:
    cuda = cfg.launcher.gpus_per_node > 0
    prompt = STUDENT_PROMPT.get(cfg.task.kind, STUDENT_PROMPT["math"])
    unbounded = TEACHER_PROMPT if cfg.task.kind == "math" else 2 * prompt
    teacher_prompt = cfg.task.max_teacher_tokens or unbounded
    c = cfg.train.max_completion_length
    # Before the chunked loss lands the trainer ignores train.micro_batch: one forward a step.
    # One GPU holds one process's share of the global batch (train.prompts_per_step over the ranks).
    rows = micro_batch if loss_path == "chunked" else cfg.rows_per_process
    return Sizes(shape, dtype_bytes(cfg, cuda), cuda, rows, cfg.rows_per_process, prompt + c,
                 teacher_prompt + c, c, loss_path)


def chunk_tokens(chunk_mb: float, vocab: int, tokens: int) -> int:
    """Tokens of one block (harness/losses/chunked.py block_tokens), never more than there are."""
    return max(1, min(tokens, int(chunk_mb * 2**20 // (4 * vocab))))


def teacher_of(cfg: RunConfig) -> bool:
    """The run's loss learns from a teacher (every loss but GRPO's): harness/registry.py."""
    return get("loss", cfg.method.loss).has_teacher


def weight_bytes(cfg: RunConfig, s: Sizes) -> int:
    """Bytes a weight is loaded in (harness/compute/device.py Precision.weights_dtype): full
    fine-tuning under half precision on CUDA keeps fp32 master weights and autocasts the forward;
    with LoRA (or in fp32) the compute dtype's size."""
    full_ft_half = cfg.model.lora.r == 0 and s.b < 4 and s.cuda
    return 4 if full_ft_half else s.b


def weight_parts(cfg: RunConfig, s: Sizes) -> list[Part]:
    n, lora, wb = s.shape.params(), cfg.model.lora, weight_bytes(cfg, s)
    parts = [Part("weights", n * wb, "persistent", f"{n / 1e9:.2f}B params x {wb} B"
                  + (" (fp32 masters under bf16 autocast)" if wb != s.b else ""))]
    copy = teacher_of(cfg) and cfg.teacher.mode in ("base", "ema") and lora.r == 0
    if copy:
        # TRL builds the base teacher with dtype=self.model.dtype (trl/experimental/sdft/sdft_trainer.py:526),
        # the fp32 master on a full fine-tuning CUDA run; RLTrainer.frozen_copy deep-copies it (review D)
        parts.append(Part("teacher copy", n * wb, "persistent",
                          f"teacher.mode={cfg.teacher.mode}, no LoRA: a second copy in the student's dtype"))
    return parts


def optimiser_part(cfg: RunConfig, s: Sizes) -> Part:
    lora = cfg.model.lora
    if lora.r > 0:
        n = s.shape.lora_params(lora.r, list(lora.target_modules))
        extra = n * 4 if cfg.teacher.mode == "ema" else 0  # the ema teacher's own adapter
        per, note = 16, f"LoRA r={lora.r}: {n / 1e6:.1f}M params x (4 fp32 + 4 grad + 8 Adam)"
    else:
        n, extra = s.shape.params(), 0
        # grad + Adam's m and v, each in the weights' dtype: the fp32 master is the weights part itself
        # (weight_bytes) on CUDA; pure bf16 on a CPU (model.dtype=bfloat16) keeps no master
        per = 3 * weight_bytes(cfg, s)
        note = f"full fine-tuning: {n / 1e9:.2f}B params x {per} B (grad + Adam m, v in the weights' dtype)"
    ddp = n * 4 if cfg.launcher.gpus_per_node > 1 else 0  # DDP's gradient buckets
    return Part("LoRA + optimiser", n * per + extra + ddp, "persistent", note)


def activation_part(s: Sizes, checkpointing: bool = False) -> Part:
    """Saved activations of the student's forward (train.gradient_checkpointing: each layer's
    input only, plus one layer's activations recomputed at a time)."""
    tokens = s.rows * s.student_len
    if checkpointing:
        return Part("activations", checkpointed_activations(s), "train step",
                    f"{s.rows} rows x {s.student_len} tokens, gradient checkpointing")
    full = tokens * s.shape.layers * s.shape.act_values() * s.b
    return Part("activations", full, "train step",
                f"{s.rows} rows x {s.student_len} tokens, no gradient checkpointing")


def peft_cast_part(cfg: RunConfig, s: Sizes, checkpointing: bool) -> Part | None:
    """peft casts each LoRA-adapted linear's input to the adapter's fp32 (peft lora/layer.py,
    `_cast_input_dtype`), and autocast saves one more half-precision copy of it for the backward:
    per token and layer the inputs of q, k, v, gate, up (5h), o (heads x head_dim) and down (i).
    Only on a half-precision run with LoRA (on a CPU in fp32 neither cast happens)."""
    if cfg.model.lora.r == 0 or s.b >= 4:
        return None
    sh = s.shape
    values = 5 * sh.hidden + sh.heads * sh.head_dim + sh.intermediate
    layers = 1 if checkpointing else sh.layers  # recomputed one layer at a time when checkpointing
    return Part("peft input casts", s.rows * s.student_len * layers * values * s.b, "train step",
                f"LoRA under bf16: one more saved copy of each adapted linear's input ({values} values "
                "per token and layer)")


def attention_mask_bytes(rows: int, length: int, cfg: RunConfig, cuda: bool) -> float:
    """A padded batch on SDPA or eager: transformers materialises a [rows, 1, L, L] bool mask
    (masking_utils.py sdpa_mask; the is_causal skip needs a batch without padding, masking_utils.py
    _ignore_causal_mask_sdpa), which torch's SDPA turns into an additive mask in the query's
    half dtype and pads to a multiple of 16 for the mem-efficient kernel: ~5 bytes per L^2 entry,
    ~2.6 GB a row at 23k tokens (review D). With the mask, GQA also takes repeat_kv's expanded
    keys and values (transformers integrations/sdpa_attention.py:137-138), inside one layer's
    transient (teacher_forward). None on a flash kernel (harness/models/attention.py)."""
    if padding_free(cfg, cuda):
        return 0.0
    padded = -(-length // 16) * 16
    return rows * (length * length * 1 + 2 * padded * padded * 2)


def padding_free(cfg: RunConfig, cuda: bool) -> bool:
    """The run's attention is a flash kernel: model.attn_implementation, auto resolved on this
    machine (a login node without flash_attn plans SDPA's masks: the conservative side)."""
    from harness.models.attention import is_flash, resolve

    return is_flash(resolve(cfg.model.attn_implementation, "cuda" if cuda else "cpu"))


def checkpointed_activations(s: Sizes) -> float:
    tokens = s.rows * s.student_len
    return tokens * s.b * (s.shape.layers * s.shape.hidden + s.shape.act_values())


def teacher_forward(rows: int, s: Sizes) -> float:
    """One layer's transient values of a no-grad forward, the MLP's being the largest: its input
    and residual (2h), gate, up, their product (3i) and the output (2h); the attention's q, k, v,
    repeat_kv's copies and output stay below it (h + 4 H d + 2 K d)."""
    return rows * s.teacher_len * (4 * s.shape.hidden + 3 * s.shape.intermediate) * s.b


def logits_part(cfg: RunConfig, s: Sizes) -> Part:
    v, c = s.shape.vocab, s.completion
    if not teacher_of(cfg):
        return Part("logits", GRPO_LOGITS * s.rows * c * v * 4, "train step", "TRL GRPO log-probs")
    if s.path == "full":
        return Part("logits", OLD_LOGITS * s.rows * c * v * 4, "train step",
                    f"full-vocabulary loss: ~{OLD_LOGITS} fp32 [{s.rows} x {c} x {v}] tensors")
    ct = chunk_tokens(cfg.loss.chunk_mb, v, s.rows * c)
    loss = CHUNK_LIVE * ct * v * 4 + 2 * s.rows * c * s.shape.hidden * 4
    if get("loss", cfg.method.loss).trainer == "rl":  # antisd / sdar: GRPO's log-probs beside the divergence
        loss += GRPO_LOGITS * s.rows * c * v * 4
    return Part("logits", loss, "train step",
                f"chunked: {CHUNK_LIVE} x [{ct} x {v}] fp32 + final hidden states of {s.rows} rows")


def teacher_part(cfg: RunConfig, s: Sizes) -> Part | None:
    """The teacher's no-grad forward over its longer prompt, beside the student's activations
    (counted with the loss's blocks, though they never coexist: a small overestimate)."""
    if not teacher_of(cfg):
        return None
    mask = attention_mask_bytes(s.rows, s.teacher_len, cfg, s.cuda)
    return Part("teacher forward", teacher_forward(s.rows, s) + mask, "train step",
                f"no grad, {s.rows} rows x {s.teacher_len} tokens, one layer at a time"
                + (f"; SDPA mask {mask / GB:.2f} GB" if mask else ""))


def probe_part(cfg: RunConfig, s: Sizes) -> Part | None:
    """The probe's teacher forwards over every probed exposure of a micro-batch's rollouts. One
    forward holds `per` exposures x rows teacher rows (harness/trainers/probe.py:30-32
    exposures_per_forward, called with probe.max_rows and train.micro_batch from
    harness/trainers/hooks.py:145), each padded to the longest (r = 1) context: probe.max_rows=0
    puts every exposure in one forward, len(probe.exposures) x rows rows (review D); the presets
    set probe.max_rows to their micro-batch, one exposure a forward."""
    p = cfg.probe
    if not p.every or not teacher_of(cfg):
        return None
    v, c, e = s.shape.vocab, s.completion, len(p.exposures)
    if s.path == "full":
        per = max(1, p.max_rows // s.step_rows) if p.max_rows else e
        per = min(per, e)
        logits = (1 + per + OLD_KL_TEMPS) * s.step_rows * c * v * 4
        return Part("probe", logits + teacher_forward(per * s.step_rows, s), "probe",
                    f"full logits of the student and {per} exposure(s) x {s.step_rows} rows")
    hidden = (e + 1) * s.rows * c * s.shape.hidden * 4
    chunks = CHUNK_LIVE * chunk_tokens(cfg.loss.chunk_mb, v, s.rows * c) * v * 4
    t_rows = probe_teacher_rows(cfg, s.rows)
    mask = attention_mask_bytes(t_rows, s.teacher_len, cfg, s.cuda)
    forward = teacher_forward(t_rows, s) + mask
    note = (f"teacher hidden states of {e} exposures x {s.rows} rows, chunked; {t_rows} teacher rows "
            f"a forward (probe.max_rows={p.max_rows})")
    return Part("probe", hidden + max(chunks, forward), "probe",
                note + (f"; SDPA mask {mask / GB:.2f} GB" if mask else ""))


def probe_teacher_rows(cfg: RunConfig, rows: int) -> int:
    """Teacher rows of one probe forward: exposures_per_forward(E, rows, probe.max_rows) x rows."""
    e, max_rows = len(cfg.probe.exposures), cfg.probe.max_rows
    per = max(1, max_rows // max(rows, 1)) if max_rows else e
    return min(per, e) * rows


def progress_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part | None:
    """ATESD's val_accuracy samples task.val_size x controller.progress_samples sequences at each
    window's end with HF generate, controller.progress_batch_size at a time (harness/sources/
    learning_progress.py:42-50 -> harness/evaluation/sampling.py:28-32): the KV cache of one
    batch of student prompt + controller.progress_max_new_tokens tokens and its sampling
    temporaries. Its own phase: the rollout engine sleeps, no train step runs. With colocated vLLM
    rollouts it samples on that engine (harness/sources/learning_progress.py val_accuracy): the
    engine's share, awake, is the phase's figure."""
    c = getattr(cfg, "controller", None)
    if c is None or getattr(c, "progress", None) != "val_accuracy":
        return None
    t = cfg.train
    if uses_vllm(t.generation, s.cuda) and t.vllm_mode == "colocate":
        # sampled on the rollout engine, awake: its share, as in the generation phase
        share, note = rollout_share(t, gpu_gb)
        return Part("progress (rollout engine vLLM)", share, "progress",
                    f"{note}; {cfg.task.val_size * c.progress_samples} sequences in its KV cache")
    rows = min(c.progress_batch_size, cfg.task.val_size * c.progress_samples)
    length = s.student_len - s.completion + c.progress_max_new_tokens
    return Part("progress sampling (HF KV cache)", hf_generation_bytes(s, rows, length), "progress",
                f"{rows} rows (of task.val_size x controller.progress_samples = "
                f"{cfg.task.val_size * c.progress_samples}) x {length} tokens")


def export_part(cfg: RunConfig, s: Sizes) -> Part | None:
    """Before a vLLM evaluation of a LoRA run, export_weights builds merged copies of every adapted
    weight on the device (harness/compute/vllm_backend.py merged_lora_state: one new tensor a
    LoRA layer, each merge summed in fp32): the adapted linears in the weights' dtype plus the
    fp32 weight and delta of the largest one. Its own phase, before the eval engine starts."""
    lora = cfg.model.lora
    if lora.r == 0 or not uses_vllm(cfg.eval.backend, s.cuda):
        return None
    dims = s.shape.module_dims()
    adapted = [dims[t] for t in lora.target_modules if t in dims]
    merged = s.shape.layers * sum(i * o for i, o in adapted) * s.b
    largest = 2 * 4 * max((i * o for i, o in adapted), default=0)
    return Part("export (LoRA merged copies)", merged + largest, "export",
                "merged copies of the adapted weights, saved for the vLLM eval engine")


def physical_gpu_gb() -> float | None:
    """The memory of this process's GPU in GB, None without one. vLLM's gpu_memory_utilization is a
    share of the physical device, not of launcher.gpu_mem_gb (review D). Where this process already
    runs CUDA (a job, make gpu-check): torch.cuda.get_device_properties().total_memory. Elsewhere
    nvidia-smi is asked, so that planning never opens a CUDA context: a sweep's planning process
    holding one on GPU 0 for the whole sweep would take memory from the runs it launches there."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GB
    return nvidia_smi_gb()


def nvidia_smi_gb(driver: Path = Path("/proc/driver/nvidia/version")) -> float | None:
    """memory.total of the first visible GPU (CUDA_VISIBLE_DEVICES' first entry, else 0) from
    nvidia-smi, in GB; None without a driver, nvidia-smi or an answer."""
    import os
    import shutil
    import subprocess

    if not driver.exists() or shutil.which("nvidia-smi") is None:
        return None
    first = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0].strip()
    if not first or first == "-1":
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-i", first, "--query-gpu=memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20)
        return float(out.stdout.strip().splitlines()[0]) * 2**20 / GB if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def uses_vllm(choice: str, cuda: bool) -> bool:
    return cuda and choice in ("vllm", "auto")


def generation_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    t = cfg.train
    if uses_vllm(t.generation, s.cuda):
        if t.vllm_mode == "server":
            return Part("generation (vLLM server)", 0.0, "generation", "on its own GPU")
        phase = "generation" if t.vllm_sleep else "persistent"
        share, note = rollout_share(t, gpu_gb)
        return Part("generation (vLLM share)", share, phase,
                    note + ("; sleep mode frees it while training" if t.vllm_sleep else ""))
    return Part("generation (HF KV cache)", hf_generation_bytes(s, s.step_rows, s.student_len), "generation",
                f"{s.step_rows} rows x {s.student_len} tokens")


def rollout_share(t: TrainConfig, gpu_gb: float) -> tuple[float, str]:
    """(bytes, note) of the colocated rollout engine's share of the device (train.vllm_gpu_memory)."""
    device_gb, basis = device_budget(gpu_gb)
    note = f"train.vllm_gpu_memory={t.vllm_gpu_memory} x {device_gb:g} GB ({basis})"
    return t.vllm_gpu_memory * device_gb * GB, note


def device_budget(gpu_gb: float) -> tuple[float, str]:
    """(GB of the device, which): the physical GPU read here when there is one, else
    launcher.gpu_mem_gb (planning on a login node: the run itself reads its device). vLLM's shares
    are taken of it and the plan's total is held against it, so both speak of the same GPU."""
    physical = physical_gpu_gb()
    if physical is not None:
        return round(physical, 1), "this machine's GPU (torch.cuda or nvidia-smi total memory)"
    return gpu_gb, "launcher.gpu_mem_gb: no GPU here; a run takes its shares of its own GPU"


def hf_generation_bytes(s: Sizes, rows: int, length: int) -> float:
    return rows * length * s.shape.kv_values() * s.b + SAMPLING_TEMPS * rows * s.shape.vocab * 4


def eval_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    e = cfg.eval
    if uses_vllm(e.backend, s.cuda):
        device_gb, basis = device_budget(gpu_gb)
        return Part("eval (vLLM share)", e.vllm_gpu_memory * device_gb * GB, "eval",
                    f"eval.vllm_gpu_memory={e.vllm_gpu_memory} x {device_gb:g} GB ({basis})")
    rows = e.batch_size  # one generate call holds at most eval.batch_size sequences
    length = s.student_len - s.completion + e.max_new_tokens
    return Part("eval (HF KV cache)", hf_generation_bytes(s, rows, length), "eval",
                f"{rows} rows x {length} tokens")
