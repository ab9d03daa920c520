"""python -m harness.memory.plan [hydra overrides]     # prints these parts, one a line

The parts of the memory plan (harness/memory/plan.py's docstring gives each formula): weights,
LoRA + optimiser, activations, logits, teacher forward, probe, generation and eval, each a Part
in its phase, computed from the Sizes of one point (shape, dtype size, rows and lengths).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.schema import RunConfig
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


def weight_parts(cfg: RunConfig, s: Sizes) -> list[Part]:
    n, lora = s.shape.params(), cfg.model.lora
    parts = [Part("weights", n * s.b, "persistent", f"{n / 1e9:.2f}B params x {s.b} B")]
    copy = teacher_of(cfg) and cfg.teacher.mode in ("base", "ema") and lora.r == 0
    if copy:
        parts.append(Part("teacher copy", n * s.b, "persistent", f"teacher.mode={cfg.teacher.mode}, no LoRA"))
    return parts


def optimiser_part(cfg: RunConfig, s: Sizes) -> Part:
    lora = cfg.model.lora
    if lora.r > 0:
        n = s.shape.lora_params(lora.r, list(lora.target_modules))
        extra = n * 4 if cfg.teacher.mode == "ema" else 0  # the ema teacher's own adapter
        per, note = 16, f"LoRA r={lora.r}: {n / 1e6:.1f}M params x (4 fp32 + 4 grad + 8 Adam)"
    else:
        n, extra = s.shape.params(), 0
        per = 12 + (4 if s.b < 4 else 0)  # grad + Adam (+ fp32 master beside bf16 weights)
        note = f"full fine-tuning: {n / 1e9:.2f}B params x {per} B"
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


def attention_mask_bytes(rows: int, length: int, cfg: RunConfig) -> float:
    """A padded batch on SDPA: transformers materialises a [rows, 1, L, L] bool mask, which the
    kernel turns into an additive half-precision mask padded to a multiple of 16 (transformers
    sdpa_attention.py; review D): ~5 bytes per L^2 entry. None with padding-free flash attention."""
    if padding_free(cfg):
        return 0.0
    padded = -(-length // 16) * 16
    return rows * (length * length * 1 + 2 * padded * padded * 2)


def padding_free(cfg: RunConfig) -> bool:
    return getattr(cfg.model, "attn_implementation", "sdpa") in ("flash_attention_2", "flash_attention_3")


def checkpointed_activations(s: Sizes) -> float:
    tokens = s.rows * s.student_len
    return tokens * s.b * (s.shape.layers * s.shape.hidden + s.shape.act_values())


def teacher_forward(rows: int, s: Sizes) -> float:
    """One layer's transient values of a no-grad forward (the largest: MLP and attention)."""
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
    mask = attention_mask_bytes(s.rows, s.teacher_len, cfg)
    return Part("teacher forward", teacher_forward(s.rows, s) + mask, "train step",
                f"no grad, {s.rows} rows x {s.teacher_len} tokens, one layer at a time"
                + (f"; SDPA mask {mask / GB:.2f} GB" if mask else ""))


def probe_part(cfg: RunConfig, s: Sizes) -> Part | None:
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
    # one teacher forward holds `per` exposures x rows rows at once (harness/trainers/probe.py
    # exposures_per_forward; probe.max_rows=0: every exposure in one), each padded to the longest
    per = max(1, p.max_rows // max(s.rows, 1)) if p.max_rows else e
    t_rows = min(per, e) * s.rows
    forward = teacher_forward(t_rows, s) + attention_mask_bytes(t_rows, s.teacher_len, cfg)
    return Part("probe", hidden + max(chunks, forward), "probe",
                f"teacher hidden states of {e} exposures x {s.rows} rows, chunked; {t_rows} teacher rows "
                "a forward (probe.max_rows)")


def progress_part(cfg: RunConfig, s: Sizes) -> Part | None:
    """ATESD's val_accuracy samples its progress set with HF generate at each window's end
    (harness/sources/learning_progress.py): controller.progress_batch_size sequences of the student
    prompt + controller.progress_max_new_tokens, their KV cache and sampling temporaries."""
    c = getattr(cfg, "controller", None)
    if c is None or getattr(c, "progress", None) != "val_accuracy":
        return None
    length = s.student_len - s.completion + c.progress_max_new_tokens
    return Part("progress sampling (HF KV cache)", hf_generation_bytes(s, c.progress_batch_size, length),
                "progress", f"{c.progress_batch_size} rows x {length} tokens (controller.progress_*)")


def physical_gpu_gb() -> float | None:
    """The memory of this machine's GPU 0 in GB, None without one (or without torch's CUDA). vLLM's
    gpu_memory_utilization is a share of the physical device, not of launcher.gpu_mem_gb."""
    import sys

    torch = sys.modules.get("torch")  # planning does not import torch; a run already has it
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GB


def uses_vllm(choice: str, cuda: bool) -> bool:
    return cuda and choice in ("vllm", "auto")


def generation_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    t = cfg.train
    if uses_vllm(t.generation, s.cuda):
        if t.vllm_mode == "server":
            return Part("generation (vLLM server)", 0.0, "generation", "on its own GPU")
        phase = "generation" if t.vllm_sleep else "persistent"
        device_gb, basis = vllm_basis(gpu_gb)
        return Part("generation (vLLM share)", t.vllm_gpu_memory * device_gb * GB, phase,
                    f"train.vllm_gpu_memory={t.vllm_gpu_memory} x {device_gb:g} GB ({basis})"
                    + ("; sleep mode frees it while training" if t.vllm_sleep else ""))
    return Part("generation (HF KV cache)", hf_generation_bytes(s, s.step_rows, s.student_len), "generation",
                f"{s.step_rows} rows x {s.student_len} tokens")


def vllm_basis(gpu_gb: float) -> tuple[float, str]:
    """(GB vLLM's share is taken of, which): the physical GPU read here when there is one, else
    launcher.gpu_mem_gb (planning on a login node: the run itself reads its device)."""
    physical = physical_gpu_gb()
    if physical is not None:
        return round(physical, 1), "this machine's GPU"
    return gpu_gb, "launcher.gpu_mem_gb: no GPU here; at run time, the physical device"


def hf_generation_bytes(s: Sizes, rows: int, length: int) -> float:
    return rows * length * s.shape.kv_values() * s.b + SAMPLING_TEMPS * rows * s.shape.vocab * 4


def eval_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    e = cfg.eval
    if uses_vllm(e.backend, s.cuda):
        device_gb, basis = vllm_basis(gpu_gb)
        return Part("eval (vLLM share)", e.vllm_gpu_memory * device_gb * GB, "eval",
                    f"eval.vllm_gpu_memory={e.vllm_gpu_memory} x {device_gb:g} GB ({basis})")
    rows = e.batch_size  # one generate call holds at most eval.batch_size sequences
    length = s.student_len - s.completion + e.max_new_tokens
    return Part("eval (HF KV cache)", hf_generation_bytes(s, rows, length), "eval",
                f"{rows} rows x {length} tokens")
