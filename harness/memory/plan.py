"""python -m harness.memory.plan experiment=paper_qwen3_8b launcher.gpu_mem_gb=80

The predicted peak memory of one run per device, part by part, before anything launches.

python -m harness.memory.plan [hydra overrides]     # the plan of that point (GPU: per GPU)
python -m harness.memory.validate [--sizes 2x8,2x256,2x256@256,4x128x2@128] [--keep DIR]
                                                  # plan vs measured peak RSS on the CPU

Parts (bytes; b = the compute dtype's size: 2 for bf16 on CUDA, 4 for fp32 on the CPU):
- weights: parameter count x b (a frozen teacher copy where teacher.mode=base|ema has no
  LoRA to switch off; ema with LoRA: a second adapter);
- LoRA + optimiser: trainable params x (4 fp32 adapter/master + 4 grad + 8 Adam); full
  fine-tuning in bf16 keeps an fp32 master copy (issue 19 item 5), so 16 bytes a parameter
  beyond the bf16 weights; DDP over several GPUs adds one gradient bucket copy;
- activations of the student forward kept for the backward, per token and layer
  ACT_COEF = 10 h + 4 i + 3 H d + 5 K d values of b bytes (RMSNorm inputs and outputs,
  q/k/v and their norms, attention output, SwiGLU's gate/up/act/product; flash/SDPA
  attention keeps no T x T matrix). The trainer (harness/trainers/opsd.py sdft_args) does not
  enable gradient checkpointing, so the plan counts all layers; with checkpointing it would
  be one h per token and layer plus one full layer (printed as a note);
- logits: the chunked loss (harness/losses/chunked.py) holds about CHUNK_LIVE (12) fp32 tensors of
  chunk_tokens x V, chunk_tokens = floor(loss.chunk_mb 2^20 / (4 V)), beside the student's
  and teacher's final hidden states (fp32) of the micro-batch's completions; the teacher's
  no-grad forward is transient beside them. Before harness/losses/chunked.py exists the loss holds
  about OLD_LOGITS fp32 [rows x completion x V] tensors over the whole step (issue 19's
  measurement), and micro-batches are not implemented: the plan follows the code in the tree;
- probe: teacher hidden states of probe.exposures x micro-batch rows and the chunks;
- generation: HF generate's KV cache, rows x (prompt + completion) x 2 L K d b, or vLLM's
  share train.vllm_gpu_memory x launcher.gpu_mem_gb (train.generation=vllm|auto on CUDA,
  colocated; none in server mode);
- eval: vLLM's share eval.vllm_gpu_memory x gpu_mem_gb (eval.backend vllm|auto on CUDA) or
  HF generate's KV cache of eval.batch_size rows.
Weights, optimiser and (vLLM without sleep mode) the rollout engine live all run long; the
other parts are phases that do not overlap (generation, probe, train step, eval), so the
total is the persistent parts plus the largest phase.

Sequence lengths: the student prompt is bounded by STUDENT_PROMPT (a documented estimate:
math problems in the chat template fit 512 tokens; synthetic ones 32), the teacher prompt by
task.max_teacher_tokens (when > 0; else TEACHER_PROMPT); each plus train.max_completion_length.

Model shapes: a local folder's config.json, or QWEN3_SHAPES for the hub ids the presets use
(nothing can be downloaded at planning time); the tiny model from model.*.

`refuse_unfit(cfg)` (sweep planning, every point): a CUDA point (launcher.gpus_per_node > 0)
whose total exceeds launcher.gpu_mem_gb (> 0) is a one-line ConfigError naming the largest
part and the largest train.micro_batch that fits. The CPU default is never refused.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.schema import ConfigError, RunConfig, is_hub_id

GB = 1e9
ACT_H, ACT_I, ACT_Q, ACT_KV = 10, 4, 3, 5  # activation values per token and layer (docstring)
# fp32 [chunk_tokens x V] tensors alive in one block of the chunked loss: measured on the CPU
# (peak RSS over block tokens, 2x8 vs 2x256 rows x tokens: ~12; the design's first guess was 8).
CHUNK_LIVE = 12
OLD_LOGITS = 17  # fp32 [rows x C x V] tensors alive in the full-vocabulary loss (issue 19)
OLD_KL_TEMPS = 4  # the old probe's kl(): two log-softmaxes, exp, product beside the logits
GRPO_LOGITS = 4  # TRL GRPO's log-probs: logits, log-softmax, its grad, entropy (per chunk of rows)
STUDENT_PROMPT = {"math": 512, "synthetic": 32}
TEACHER_PROMPT = 8192  # math without task.max_teacher_tokens: a long reference's bound
SAMPLING_TEMPS = 4  # fp32 [rows x V] tensors of one sampling step (logits, probs, top-p sort)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    def params(self) -> int:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = h * q + 2 * h * kv + q * h + 3 * h * self.intermediate + 2 * h + 2 * self.head_dim
        head = 0 if self.tied else self.vocab * h
        return self.vocab * h + head + self.layers * layer + h

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) of every Qwen3 linear a LoRA adapter can target."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def lora_params(self, r: int, targets: list[str]) -> int:
        dims = self.module_dims()
        return self.layers * sum(r * (dims[t][0] + dims[t][1]) for t in targets if t in dims)

    def act_values(self) -> int:
        """Activation values kept per token and layer for the backward (no checkpointing)."""
        return (ACT_H * self.hidden + ACT_I * self.intermediate + ACT_Q * self.heads * self.head_dim
                + ACT_KV * self.kv_heads * self.head_dim)

    def kv_values(self) -> int:
        """KV-cache values per token (keys and values of every layer)."""
        return 2 * self.layers * self.kv_heads * self.head_dim


# Public config.json of the presets' checkpoints (hub ids; verified against published configs).
QWEN3_SHAPES = {
    "Qwen/Qwen3-1.7B": Shape(28, 2048, 6144, 16, 8, 128, 151936, True),
    "Qwen/Qwen3-4B": Shape(36, 2560, 9728, 32, 8, 128, 151936, True),
    "Qwen/Qwen3-8B": Shape(36, 4096, 12288, 32, 8, 128, 151936, False),
}


def shape_from_config(folder: Path) -> Shape:
    conf = json.loads((folder / "config.json").read_text())
    conf = conf.get("text_config", conf)
    if "vocab_size" not in conf:
        raise ConfigError(f"model.path={str(folder)!r} is invalid: its config.json has no vocab_size")
    h, heads = conf["hidden_size"], conf["num_attention_heads"]
    return Shape(conf["num_hidden_layers"], h, conf["intermediate_size"], heads,
                 conf.get("num_key_value_heads", heads), conf.get("head_dim") or h // heads,
                 conf["vocab_size"], bool(conf.get("tie_word_embeddings", True)))


def model_shape(cfg: RunConfig) -> Shape:
    m = cfg.model
    if m.path is None:  # the tiny model harness/models/tiny.py builds
        from harness.models.tiny import build_tokenizer

        return Shape(m.num_layers, m.hidden_size, m.intermediate_size, m.num_heads, m.num_kv_heads,
                     m.hidden_size // m.num_heads, len(build_tokenizer()), True)
    if is_hub_id(m.path):
        if m.path not in QWEN3_SHAPES:
            raise ConfigError(f"model.path={m.path!r} is invalid for the memory plan: a hub id it has "
                              f"no shape for (one of {', '.join(QWEN3_SHAPES)}, or a local folder)")
        return QWEN3_SHAPES[m.path]
    return shape_from_config(Path(m.path))


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
    rows = micro_batch if loss_path == "chunked" else cfg.rows_per_step
    return Sizes(shape, dtype_bytes(cfg, cuda), cuda, rows, cfg.rows_per_step, prompt + c,
                 teacher_prompt + c, c, loss_path)


def chunk_tokens(chunk_mb: float, vocab: int, tokens: int) -> int:
    """Tokens of one block (harness/losses/chunked.py block_tokens), never more than there are."""
    return max(1, min(tokens, int(chunk_mb * 2**20 // (4 * vocab))))


def weight_parts(cfg: RunConfig, s: Sizes) -> list[Part]:
    n, lora = s.shape.params(), cfg.model.lora
    parts = [Part("weights", n * s.b, "persistent", f"{n / 1e9:.2f}B params x {s.b} B")]
    copy = cfg.method.loss != "grpo" and cfg.teacher.mode in ("base", "ema") and lora.r == 0
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


def activation_part(s: Sizes) -> Part:
    tokens = s.rows * s.student_len
    full = tokens * s.shape.layers * s.shape.act_values() * s.b
    return Part("activations", full, "train step",
                f"{s.rows} rows x {s.student_len} tokens, no gradient checkpointing")


def checkpointed_activations(s: Sizes) -> float:
    tokens = s.rows * s.student_len
    return tokens * s.b * (s.shape.layers * s.shape.hidden + s.shape.act_values())


def teacher_forward(rows: int, s: Sizes) -> float:
    """One layer's transient values of a no-grad forward (the largest: MLP and attention)."""
    return rows * s.teacher_len * (4 * s.shape.hidden + 3 * s.shape.intermediate) * s.b


def logits_part(cfg: RunConfig, s: Sizes) -> Part:
    v, c = s.shape.vocab, s.completion
    if cfg.method.loss == "grpo":
        return Part("logits", GRPO_LOGITS * s.rows * c * v * 4, "train step", "TRL GRPO log-probs")
    if s.path == "full":
        return Part("logits", OLD_LOGITS * s.rows * c * v * 4, "train step",
                    f"full-vocabulary loss: ~{OLD_LOGITS} fp32 [{s.rows} x {c} x {v}] tensors")
    ct = chunk_tokens(cfg.loss.chunk_mb, v, s.rows * c)
    loss = CHUNK_LIVE * ct * v * 4 + 2 * s.rows * c * s.shape.hidden * 4
    if cfg.method.loss != "opsd":  # antisd / sdar: GRPO's log-probs beside the divergence
        loss += GRPO_LOGITS * s.rows * c * v * 4
    return Part("logits", loss, "train step",
                f"chunked: {CHUNK_LIVE} x [{ct} x {v}] fp32 + final hidden states of {s.rows} rows")


def teacher_part(cfg: RunConfig, s: Sizes) -> Part | None:
    """The teacher's no-grad forward over its longer prompt, beside the student's activations
    (counted with the loss's blocks, though they never coexist: a small overestimate)."""
    if cfg.method.loss == "grpo":
        return None
    return Part("teacher forward", teacher_forward(s.rows, s), "train step",
                f"no grad, {s.rows} rows x {s.teacher_len} tokens, one layer at a time")


def probe_part(cfg: RunConfig, s: Sizes) -> Part | None:
    p = cfg.probe
    if not p.every or cfg.method.loss == "grpo":
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
    return Part("probe", hidden + max(chunks, teacher_forward(s.rows, s)), "probe",
                f"teacher hidden states of {e} exposures x {s.rows} rows, chunked")


def uses_vllm(choice: str, cuda: bool) -> bool:
    return cuda and choice in ("vllm", "auto")


def generation_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    t = cfg.train
    if uses_vllm(t.generation, s.cuda):
        if t.vllm_mode == "server":
            return Part("generation (vLLM server)", 0.0, "generation", "on its own GPU")
        phase = "generation" if t.vllm_sleep else "persistent"
        return Part("generation (vLLM share)", t.vllm_gpu_memory * gpu_gb * GB, phase,
                    f"train.vllm_gpu_memory={t.vllm_gpu_memory} x {gpu_gb:g} GB"
                    + ("; sleep mode frees it while training" if t.vllm_sleep else ""))
    return Part("generation (HF KV cache)", hf_generation_bytes(s, s.step_rows, s.student_len), "generation",
                f"{s.step_rows} rows x {s.student_len} tokens")


def hf_generation_bytes(s: Sizes, rows: int, length: int) -> float:
    return rows * length * s.shape.kv_values() * s.b + SAMPLING_TEMPS * rows * s.shape.vocab * 4


def eval_part(cfg: RunConfig, s: Sizes, gpu_gb: float) -> Part:
    e = cfg.eval
    if uses_vllm(e.backend, s.cuda):
        return Part("eval (vLLM share)", e.vllm_gpu_memory * gpu_gb * GB, "eval",
                    f"eval.vllm_gpu_memory={e.vllm_gpu_memory} x {gpu_gb:g} GB")
    rows = e.batch_size  # one generate call holds at most eval.batch_size sequences
    length = s.student_len - s.completion + e.max_new_tokens
    return Part("eval (HF KV cache)", hf_generation_bytes(s, rows, length), "eval",
                f"{rows} rows x {length} tokens")


def plan(cfg: RunConfig, micro_batch: int | None = None, loss_path: str | None = None,
         gpu_mem_gb: float | None = None) -> Plan:
    """The plan of this point; micro_batch None: cfg's (RunConfig.micro_batch)."""
    path = loss_path or current_loss_path()
    mb = micro_batch or cfg.micro_batch
    shape = model_shape(cfg)
    s = sizes(cfg, shape, mb, path)
    gpu_gb = cfg.launcher.gpu_mem_gb if gpu_mem_gb is None else gpu_mem_gb
    if cfg.method.name == "base":  # the base run only evaluates: weights and the sampler
        parts = [Part("weights", shape.params() * s.b, "persistent"), eval_part(cfg, s, gpu_gb)]
        return Plan("cuda" if s.cuda else "cpu", path, s.rows, parts)
    parts = [*weight_parts(cfg, s), optimiser_part(cfg, s), activation_part(s), logits_part(cfg, s)]
    parts += [p for p in (teacher_part(cfg, s), probe_part(cfg, s)) if p]
    parts += [generation_part(cfg, s, gpu_gb), eval_part(cfg, s, gpu_gb)]
    out = Plan("cuda" if s.cuda else "cpu", path, s.rows, parts)
    out.notes.append(f"with gradient checkpointing the activations would be "
                     f"{checkpointed_activations(s) / GB:.2f} GB")
    if path == "full":
        out.notes.append("harness/losses/chunked.py is not in the tree: the full-vocabulary loss, one "
                         "forward per step (train.micro_batch not yet honoured)")
    return out


def fits(cfg: RunConfig, micro_batch: int, gpu_mem_gb: float, loss_path: str | None = None) -> bool:
    return plan(cfg, micro_batch, loss_path).total <= gpu_mem_gb * GB


def largest_fitting(cfg: RunConfig, loss_path: str | None = None) -> int | None:
    """The largest train.micro_batch (a divisor of the step's rows) that fits, or None."""
    rows = cfg.rows_per_step
    for m in sorted((d for d in range(1, rows + 1) if rows % d == 0), reverse=True):
        if fits(cfg, m, cfg.launcher.gpu_mem_gb, loss_path):
            return m
    return None


def refuse_unfit(cfg: RunConfig, loss_path: str | None = None) -> None:
    """ConfigError (one line) when a CUDA point's plan exceeds launcher.gpu_mem_gb."""
    gpu = cfg.launcher.gpu_mem_gb
    if cfg.launcher.gpus_per_node == 0 or gpu <= 0:
        return  # CPU points (the embedded default) and gpu_mem_gb=0 are never refused
    p = plan(cfg, loss_path=loss_path)
    if p.total <= gpu * GB:
        return
    mb = cfg.train.micro_batch
    asked = f"train.micro_batch={mb}" if mb else f"train.micro_batch=null (all {cfg.rows_per_step} rows)"
    best = largest_fitting(cfg, loss_path)
    hint = (f"train.micro_batch<={best} fits" if best else
            "no train.micro_batch fits (a smaller model, shorter rollouts or a larger GPU)")
    big = p.largest
    raise ConfigError(f"{asked} does not fit launcher.gpu_mem_gb={gpu:g}: predicted "
                      f"{p.total / GB:.1f} GB, largest part {big.name} {big.bytes / GB:.1f} GB; {hint}")


def render(p: Plan, cfg: RunConfig) -> str:
    where = f"per GPU of {cfg.launcher.gpu_mem_gb:g} GB" if p.device == "cuda" else "CPU process"
    lines = [f"memory plan ({where}; {p.loss_path} loss; {p.micro_batch} rows per forward; "
             f"model {cfg.model.path or 'tiny'})"]
    for part in p.parts:
        lines.append(f"  {part.name:<26} {part.bytes / GB:9.2f} GB  [{part.phase}] {part.note}")
    lines.append(f"  {'total':<26} {p.total / GB:9.2f} GB  = persistent "
                 f"{p.phase_bytes('persistent') / GB:.2f} + largest phase {p.peak_phase} "
                 f"{p.phase_bytes(p.peak_phase) / GB:.2f}")
    lines += [f"  note: {n}" for n in p.notes]
    gpu = cfg.launcher.gpu_mem_gb
    if p.device == "cuda" and gpu > 0:
        verdict = "fits" if p.total <= gpu * GB else "does NOT fit"
        lines.append(f"  {verdict} launcher.gpu_mem_gb={gpu:g}; largest fitting train.micro_batch: "
                     f"{largest_fitting(cfg, p.loss_path)}")
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
