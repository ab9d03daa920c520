"""Config schemas: one dataclass per concern, help text on every field, range checks.

python -c "from harness.config.schema import RunConfig; help(RunConfig)"

These dataclasses are the one source of every key's default (harness/config/hydra_store.py
registers them with Hydra as `run_defaults`; sweeps/ only selects groups and resizes).
`to_run_config` merges a composed config into them (unknown keys and wrong types fail
there) and `__post_init__` checks ranges, so a bad value fails with one line naming it
before any work starts.

Longer than ~250 lines on purpose: one short dataclass per config group, each with its
help text and range checks, read top to bottom as the reference of every key; split
across modules, `help(RunConfig)` and the defaults would be scattered.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.prompts.cut import check_exposure

METHODS = ("base", "opsd", "atesd", "schedule", "random", "grpo", "antisd", "sdar")
EXPOSURE_SOURCES = ("fixed", "controller", "schedule", "random", "none")  # none: no teacher (grpo)
LOSSES = ("opsd", "grpo", "antisd", "sdar")  # what the student learns (harness/trainers/rl.py)
# How each exposure source reads in a method name (`source=atesd` sets `controller`).
SOURCE_LABELS = {"fixed": "", "controller": "atesd", "schedule": "schedule", "random": "random",
                 "none": ""}
TEACHER_MODES = ("base", "live", "ema")
SUPPORTS = ("full", "topk")
UNITS = ("tokens", "steps")
PROGRESS_MEASURES = ("val_accuracy", "ref_nll", "train_loss")
CONTROLLER_STATES = ("stats", "none", "paper")
CONTROLLER_REWARDS = ("progress", "paper")  # harness/sources/controller.py, harness/sources/paper_reward.py
ADVANTAGES = ("baseline", "normalised")
ENTROPY_BOUNDS = ("clamp", "penalty")
SCHEDULES = ("linear_up", "linear_down", "step")
LR_SCHEDULES = ("cosine", "linear", "constant_with_warmup")
TRACKERS = ("tensorboard", "wandb", "mlflow")  # harness/trainers/trackers.py
# train.generation: harness/compute/vllm_backend.py (auto: vllm on CUDA when importable, else hf)
GENERATIONS = ("hf", "vllm", "auto")
VLLM_MODES = ("colocate", "server")
EVAL_BACKENDS = ("auto", "hf", "vllm")


class ConfigError(ValueError):
    """A config value is out of range; the message names it."""


def F(default: Any, help: str) -> Any:  # noqa: A002 - mirrors dataclasses' metadata key
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def require(ok: bool, what: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{what}={value!r} is invalid: {rule}")


def in_unit(what: str, value: float) -> None:
    """A value in [0, 1] (exposures, shares, rates): the exposure cut's own check, so one
    rule and one wording serve the config, the sweep and the cut."""
    try:
        check_exposure(value, what)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def parse_report_to(value: str) -> list[str]:
    """The trackers named by train.report_to ('none' -> []); ConfigError for an unknown
    name or one whose package is not installed (before the run starts, not at its end)."""
    names = [n.strip() for n in str(value).split(",") if n.strip() and n.strip() != "none"]
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"train.report_to={value!r} is invalid: {name!r} is not one of "
                              f"none, {', '.join(TRACKERS)} (comma-separated)")
        if name != "tensorboard" and importlib.util.find_spec(name) is None:
            raise ConfigError(f"train.report_to={value!r} is invalid: {name} is not installed "
                              f"(pip install {name}, or leave it out of train.report_to)")
    return names


def require_vllm(what: str, value: Any) -> None:
    """ConfigError when `what=value` asks for vLLM and the package is not installed (the
    sweep checks every point before it launches; CUDA is checked in the job, whose node
    has the GPU: harness/compute/vllm_backend.py)."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{what}={value!r} is invalid: vllm is not installed "
                          f"(pip install -e '.[vllm]' on the GPU nodes, or {what}=hf)")


@dataclass
class SuiteConfig:
    name: str = F("medium_k4", "suite name, used in tables (what it is: difficulty in the name)")
    num_ops: int = F(4, "operations per problem (the difficulty knob)")
    size: int = F(100, "problems in the suite")

    def __post_init__(self) -> None:
        require(1 <= self.num_ops <= 12, f"suite {self.name} num_ops", self.num_ops, "in [1, 12]")
        require(self.size >= 1, f"suite {self.name} size", self.size, ">= 1")


@dataclass
class DataSource:
    """A math dataset: a hub id or a local .json/.jsonl/.parquet file, with its field names
    (harness/tasks/math_data.py). Null solution/answer fields: none (eval) / the last
    \\boxed{} of the solution (training)."""

    name: str = F("train", "suite name in tables (aime24, ...), or `train`")
    path: str = F("", "hub dataset id (e.g. HuggingFaceH4/aime_2024) or a local data file")
    split: str = F("train", "hub split")
    problem: str = F("problem", "field holding the problem text")
    solution: str | None = F("solution", "field holding the reference solution (null: none)")
    answer: str | None = F("answer", "field holding the final answer (null: last \\boxed{} of "
                                     "the solution)")
    id: str | None = F(None, "field holding a stable problem id (null: <name>-<row index>)")
    limit: int = F(0, "use the first N rows only (0: all)")

    def __post_init__(self) -> None:
        from harness.tasks.math_data import check_source  # lazy: tasks import this module

        require(self.limit >= 0, f"data {self.name} limit", self.limit, ">= 0")
        problem = check_source(self)
        if problem:
            raise ConfigError(problem)


@dataclass
class TaskConfig:
    kind: str = F("synthetic", "synthetic (embedded) or math (task.train_data, task.eval_data)")
    modulus: int = F(13, "synthetic: arithmetic modulo this (<= 100)")
    train_ops: list[int] = F([2, 5], "synthetic: [min, max] operations of training problems")
    seed: int = F(0, "seed of the eval suites (fixed across runs so tables compare)")
    val_size: int = F(64, "held-out validation problems (controller progress), disjoint from all")
    grader: str = F("synthetic", "synthetic (exact answer) or math (\\boxed + math-verify)")
    student_template: str = F("{problem} ?", "student prompt; {problem}")
    # Reference before the problem: this order taught the tiny model to copy (DESIGN notes).
    teacher_template: str = F("ref : {reference} | {problem} ?", "teacher prompt; {problem} {reference}")
    # The three held-out suites stand in for AIME24 / AIME25 / HMMT25 (rising difficulty).
    suites: list[SuiteConfig] = field(
        default_factory=lambda: [SuiteConfig("easy_k3", 3, 100), SuiteConfig("medium_k4", 4, 100),
                                 SuiteConfig("hard_k5", 5, 100)],
        metadata={"help": "held-out eval suites, rising difficulty"})
    # Math task (sweeps/task/math.yaml); the defaults leave the synthetic task as it was.
    train_data: DataSource | None = F(None, "math: training problems + reference solutions")
    eval_data: list[DataSource] = F([], "math: evaluation suites (AIME24, AIME25, HMMT25)")
    chat_template: bool = F(False, "render prompts with the tokenizer's chat template")
    student_thinking: bool = F(False, "chat template enable_thinking for the student's prompt")
    teacher_thinking: bool = F(False, "chat template enable_thinking for the teacher's prompt")
    keep_answer: bool = F(False, "the teacher always sees `transition` + the boxed final "
                                 "answer after the cut reference (the paper's exposure)")
    transition: str = F("Skipping the remaining steps, the final answer is",
                        "keep_answer: the fixed sentence between the cut and the answer")
    max_teacher_tokens: int = F(0, "teacher prompt budget in tokens: a longer reference is cut "
                                   "from its end (never the problem; 0: no limit)")

    def __post_init__(self) -> None:
        require(self.kind in ("synthetic", "math"), "task.kind", self.kind, "synthetic or math")
        require(2 <= self.modulus <= 100, "task.modulus", self.modulus, "in [2, 100]")
        lo_hi = list(self.train_ops)
        require(len(lo_hi) == 2 and 1 <= lo_hi[0] <= lo_hi[1] <= 12, "task.train_ops",
                lo_hi, "[min, max] with 1 <= min <= max <= 12")
        require(self.val_size >= 1, "task.val_size", self.val_size, ">= 1")
        require(self.grader in ("synthetic", "math"), "task.grader", self.grader, "synthetic or math")
        names = [s.name for s in self.suites]
        require(len(names) == len(set(names)), "task.suites", names, "names must be unique")
        require("{reference}" in self.teacher_template, "task.teacher_template",
                self.teacher_template, "must contain {reference}")
        require(self.max_teacher_tokens >= 0, "task.max_teacher_tokens", self.max_teacher_tokens,
                ">= 0")
        if self.kind == "math":
            require(self.train_data is not None, "task.train_data", self.train_data,
                    "the math task needs a training dataset")
            require(len(self.eval_data) >= 1, "task.eval_data", self.eval_data,
                    "the math task needs at least one evaluation suite")
            names = [d.name for d in self.eval_data]
            require(len(names) == len(set(names)), "task.eval_data", names, "names must be unique")


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name on the Hugging Face hub
DTYPES = ("auto", "float32", "bfloat16", "float16")  # harness/compute/device.py decides what auto is
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
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"):
            require(getattr(self, name) >= 1, f"model.{name}", getattr(self, name), ">= 1")
        require(self.hidden_size % self.num_heads == 0, "model.hidden_size", self.hidden_size,
                "must be divisible by model.num_heads")
        require(self.dtype in DTYPES, "model.dtype", self.dtype, f"one of {DTYPES}")
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


@dataclass
class EvalConfig:
    k: int = F(12, "samples per problem (Average@k)")
    temperature: float = F(1.0, "sampling temperature")
    top_p: float = F(1.0, "nucleus sampling")
    max_new_tokens: int = F(64, "generation length")
    batch_size: int = F(512, "sequences per generate call")
    every: int = F(0, "also evaluate every N training steps (0: only at the end)")
    seed: int = F(1234, "sampling seed of the evaluation")
    hf_max_new_tokens: int = F(4096, "the longest eval.max_new_tokens HF generate is asked to serve: "
                                     "beyond it an evaluation on the hf backend refuses before training "
                                     "(use eval.backend=vllm, pip install -e '.[vllm]') unless eval.force_hf")
    force_hf: bool = F(False, "run an HF-generate evaluation beyond eval.hf_max_new_tokens anyway")
    backend: str = F("auto", "sampler: hf (transformers generate) | vllm (needs CUDA and the "
                             "vllm extra) | auto (vllm when both are there, else hf)")
    vllm_gpu_memory: float = F(0.5, "backend vllm: share of the GPU's memory vLLM may take "
                                    "(the trained model is still on the GPU)")
    thinking: bool | None = F(None, "chat template enable_thinking of the evaluation prompts "
                                    "(null: task.student_thinking)")
    validation: bool = F(False, "also Average@k on the task's validation problems (task.val_size), "
                                "written as val.json: make tune's objective (harness/tune/study.py), so "
                                "tuning never looks at the test suites")

    def __post_init__(self) -> None:
        require(self.k >= 1, "eval.k", self.k, ">= 1")
        require(self.backend in EVAL_BACKENDS, "eval.backend", self.backend, f"one of {EVAL_BACKENDS}")
        require(0 < self.vllm_gpu_memory <= 1, "eval.vllm_gpu_memory", self.vllm_gpu_memory, "in (0, 1]")
        if self.backend == "vllm":
            require_vllm("eval.backend", self.backend)
        require(self.temperature > 0, "eval.temperature", self.temperature, "> 0")
        require(0 < self.top_p <= 1, "eval.top_p", self.top_p, "in (0, 1]")
        require(self.max_new_tokens >= 1, "eval.max_new_tokens", self.max_new_tokens, ">= 1")
        require(self.batch_size >= 1, "eval.batch_size", self.batch_size, ">= 1")
        require(self.every >= 0, "eval.every", self.every, ">= 0")
        require(self.hf_max_new_tokens >= 1, "eval.hf_max_new_tokens", self.hf_max_new_tokens, ">= 1")


@dataclass
class TeacherConfig:
    mode: str = F("base", "base: frozen initial weights | live: current weights, no grad | ema")
    ema_rate: float = F(0.05, "ema: update rate per step")

    def __post_init__(self) -> None:
        require(self.mode in TEACHER_MODES, "teacher.mode", self.mode, f"one of {TEACHER_MODES}")
        require(0 < self.ema_rate <= 1, "teacher.ema_rate", self.ema_rate, "in (0, 1]")


@dataclass
class LossConfig:
    beta: float = F(0.5, "generalized JSD weight: 0 forward KL(T||S), 1 reverse KL(S||T)")
    support: str = F("full", "full vocabulary or the teacher's top-k renormalised")
    topk: int = F(16, "top-k size when support=topk")
    chunk_mb: float = F(64.0, "size in MB of one fp32 [tokens x vocabulary] block: the loss and every "
                              "logged statistic are computed block by block from the final hidden "
                              "states (harness/losses/chunked.py), so no batch-wide logits tensor exists")

    def __post_init__(self) -> None:
        in_unit("loss.beta", self.beta)
        require(self.chunk_mb > 0, "loss.chunk_mb", self.chunk_mb, "> 0")
        require(self.support in SUPPORTS, "loss.support", self.support, f"one of {SUPPORTS}")
        require(self.topk >= 1, "loss.topk", self.topk, ">= 1")


@dataclass
class RLConfig:
    """The RL part of loss=grpo|antisd|sdar (harness/trainers/rl.py, TRL GRPOTrainer)."""

    group_size: int = F(8, "rollouts per problem (GRPO's group): a step samples "
                           "problems_per_step x group_size rollouts")
    problems_per_step: int | None = F(None, "problems per step; null: train.prompts_per_step // "
                                            "group_size (at least 1), the rollouts per step of OPSD "
                                            "(one rollout a problem): an equal sampling budget")
    epsilon: float = F(0.2, "PPO-style clip range of the importance ratio")
    scale_rewards: str = F("group", "advantage scaling: group (divide by the group's reward std), "
                                    "batch, or none")

    def __post_init__(self) -> None:
        require(self.group_size >= 2, "grpo.group_size", self.group_size, ">= 2 (a group baseline)")
        require(self.problems_per_step is None or self.problems_per_step >= 1,
                "grpo.problems_per_step", self.problems_per_step, ">= 1 or null")
        require(self.epsilon > 0, "grpo.epsilon", self.epsilon, "> 0")
        require(self.scale_rewards in ("group", "batch", "none"), "grpo.scale_rewards",
                self.scale_rewards, "group, batch or none")

    def problems(self, prompts_per_step: int) -> int:
        """Problems a step: problems_per_step, or OPSD's rollouts per step shared into groups."""
        return self.problems_per_step or max(1, prompts_per_step // self.group_size)


@dataclass
class AntiSDConfig:
    """loss=antisd: per-token advantage -1/2 (softplus(u_t) - log 2), u_t = log p_T - log p_S
    (DESIGN.md, AntiSD), added with weight `lam`; off while the teacher's median entropy is low."""

    lam: float = F(0.5, "weight of the per-token advantage (0: plain GRPO)")
    warmup_steps: int = F(5, "steps whose teacher median entropy calibrates the gate (term on)")
    off_fraction: float = F(0.93, "gate turns off when the median entropy < off_fraction x warm-up level")
    on_fraction: float = F(0.97, "gate turns on again when it recovers > on_fraction x warm-up level")

    def __post_init__(self) -> None:
        require(self.lam >= 0, "antisd.lam", self.lam, ">= 0")
        require(self.warmup_steps >= 1, "antisd.warmup_steps", self.warmup_steps, ">= 1")
        require(0 < self.off_fraction <= self.on_fraction, "antisd.on_fraction", self.on_fraction,
                f">= antisd.off_fraction ({self.off_fraction}) > 0 (hysteresis)")


@dataclass
class SDARConfig:
    """loss=sdar: L_GRPO + coef x mean_t(g_t D_t), g_t = sigmoid(gate_beta x gap_t) detached
    (DESIGN.md, SDAR; D_t the OPSD divergence with loss.beta / loss.support)."""

    coef: float = F(0.01, "weight c of the gated distillation term")
    gate_beta: float = F(5.0, "sharpness beta_g of the sigmoid gate on gap_t = log p_T - log p_S")

    def __post_init__(self) -> None:
        require(self.coef >= 0, "sdar.coef", self.coef, ">= 0")
        require(self.gate_beta > 0, "sdar.gate_beta", self.gate_beta, "> 0")


@dataclass
class TrainConfig:
    steps: int = F(150, "optimiser steps")
    prompts_per_step: int = F(16, "problems per step, one rollout each (loss=grpo|antisd|sdar: "
                                  "grpo.problems_per_step problems x grpo.group_size rollouts)")
    lr: float = F(1e-4, "learning rate (constant after warm-up)")
    warmup_steps: int = F(0, "linear warm-up steps")
    max_grad_norm: float = F(1.0, "gradient clipping")
    temperature: float = F(1.0, "rollout sampling temperature")
    top_p: float = F(1.0, "rollout nucleus sampling")
    top_k: int = F(0, "rollout top-k sampling (0: off)")
    max_completion_length: int = F(64, "rollout length in tokens")
    micro_batch: int | None = F(None, "rows per forward/backward; gradients accumulate over the step's "
                                      "rows (one optimiser step, rollouts sampled once a step); null: all "
                                      "of them in one. Must divide the step's rows (prompts_per_step, or "
                                      "problems x group_size for loss=grpo|antisd|sdar)")
    threads: int = F(1, "torch CPU threads per run")
    report_to: str = F("none", "trackers every metrics row also goes to: none, or a comma-separated list "
                               "of tensorboard, wandb, mlflow (harness/trainers/trackers.py; quote a list "
                               "on the command line)")
    checkpoint_every: int = F(50, "save checkpoints/ every N steps (0: only at the end)")
    generation: str = F("hf", "rollout sampler: hf (transformers generate) | vllm (TRL's vLLM "
                              "rollouts; needs CUDA and the vllm extra)")
    vllm_mode: str = F("colocate", "generation=vllm: colocate (vLLM inside each training process) "
                                   "| server (a separate `trl vllm-serve`, TRL's default address)")
    vllm_gpu_memory: float = F(0.3, "generation=vllm colocate: share of the GPU's memory vLLM takes")
    vllm_sleep: bool = F(True, "generation=vllm colocate: TRL's vLLM sleep mode (frees its memory "
                               "between rollouts)")

    def __post_init__(self) -> None:
        require(self.steps >= 1, "train.steps", self.steps, ">= 1")
        require(self.prompts_per_step >= 1, "train.prompts_per_step", self.prompts_per_step, ">= 1")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(self.temperature > 0, "train.temperature", self.temperature, "> 0")
        require(0 < self.top_p <= 1, "train.top_p", self.top_p, "in (0, 1]")
        require(self.top_k >= 0, "train.top_k", self.top_k, ">= 0")
        require(self.micro_batch is None or self.micro_batch >= 1, "train.micro_batch",
                self.micro_batch, ">= 1 or null")
        require(self.max_completion_length >= 1, "train.max_completion_length",
                self.max_completion_length, ">= 1")
        require(self.threads >= 1, "train.threads", self.threads, ">= 1")
        require(self.checkpoint_every >= 0, "train.checkpoint_every", self.checkpoint_every, ">= 0")
        parse_report_to(self.report_to)
        require(self.generation in GENERATIONS, "train.generation", self.generation, f"one of {GENERATIONS}")
        require(self.vllm_mode in VLLM_MODES, "train.vllm_mode", self.vllm_mode, f"one of {VLLM_MODES}")
        require(0 < self.vllm_gpu_memory <= 1, "train.vllm_gpu_memory", self.vllm_gpu_memory, "in (0, 1]")
        if self.generation == "vllm":
            require_vllm("train.generation", self.generation)


@dataclass
class ProbeConfig:
    every: int = F(10, "probe the mismatch at every exposure every N steps (0: off)")
    exposures: list[float] = F([0.0, 0.25, 0.5, 0.75, 1.0], "exposures the probe measures")
    max_rows: int = F(0, "teacher rows (exposures x rollouts) per forward; 0: all exposures in one "
                         "forward. Set it when the logits of all of them do not fit in memory")

    def __post_init__(self) -> None:
        require(self.every >= 0, "probe.every", self.every, ">= 0")
        require(self.max_rows >= 0, "probe.max_rows", self.max_rows, ">= 0")
        for r in self.exposures:
            in_unit("probe.exposures item", r)


@dataclass
class ControllerConfig:
    """ATESD controller (harness/sources/controller.py); `hold` is also the window of method=random.

    Ablations are one override each, `ablation=<name>` (sweeps/ablation/*.yaml, which set
    these knobs and a run-name tag): immediate_reward (credit_windows=1 gamma=0),
    loss_reward (progress=train_loss, immediate), nll_progress (progress=ref_nll),
    no_hold (hold=1), bandit (state=none), paper_reward (the paper's reward, advantages,
    entropy bound and state); and the baselines random, linear_up,
    linear_down, step (method=schedule) and fixed_best (method=opsd). See README.md (ATESD section).
    """

    hold: int = F(5, "H: optimiser steps one sampled exposure is held (a window); 1: no hold")
    credit_windows: int = F(3, "W: windows of progress credited to a decision, "
                               "R_k = sum_{j<W} gamma^j delta_(k+j); 1: immediate reward")
    gamma: float = F(0.9, "discount of later windows in R_k, in [0, 1]; 0: immediate reward")
    progress: str = F("val_accuracy", "learning-progress measure P at each window's end: "
                      "val_accuracy (student, no reference, task.val_size problems) | "
                      "ref_nll (minus the student's NLL of held-out reference solutions) | "
                      "train_loss (minus the window's mean distillation loss: the loss-change ablation)")
    progress_samples: int = F(4, "val_accuracy: samples per validation problem")
    progress_temperature: float = F(1.0, "val_accuracy: sampling temperature (0: greedy)")
    progress_seed: int = F(4321, "val_accuracy: sampling seed, the same every window (common random "
                                 "numbers: a delta compares the same draws)")
    progress_batch_size: int = F(64, "sequences per generate/forward call when measuring P")
    progress_max_new_tokens: int = F(64, "val_accuracy: new tokens per validation sample (its own "
                                         "budget: never eval.max_new_tokens' thinking budget)")
    state: str = F("stats", "policy input: stats (normalised training statistics) | "
                            "none (a constant: context-free bandit) | paper (stats + the student's "
                            "probe NLL of the validation references + its confidence on its rollouts)")
    state_ema: float = F(0.2, "EMA rate per step of the statistics in the state")
    hidden_size: int = F(32, "policy MLP width")
    lr: float = F(0.05, "Adam learning rate of the policy (choice: ~30 updates in a default run)")
    baseline_rate: float = F(0.2, "EMA rate of the reward baseline")
    entropy_bonus: float = F(0.0, "weight of the Beta entropy bonus in the policy loss")
    reward: str = F("progress", "what credits a decision: progress (R_k = sum_{j<W} gamma^j delta_(k+j)) | "
                                "paper (discounted positive drops of the distillation loss over the next "
                                "`lookahead` steps + lambda_gt * teacher log-prob of the reference; "
                                "harness/sources/paper_reward.py)")
    lookahead: int = F(4, "paper reward: L, optimiser steps after a decision's first step whose loss "
                          "drops credit it (4 = H - 1: the window's own steps, credited at its end)")
    lambda_gt: float = F(0.1, "paper reward: weight of the teacher's mean per-token log-prob of the "
                              "validation references at the chosen exposure; 0: not measured")
    advantage: str = F("baseline", "baseline (R - EMA baseline) | normalised ((R - mean) / std over the "
                                   "last advantage_buffer rewards, this one included)")
    advantage_buffer: int = F(32, "normalised advantage: rewards kept in the running buffer")
    max_entropy: float | None = F(None, "upper bound on the Beta's differential entropy (nats, <= 0; "
                                        "Beta(1, 1) has 0), see entropy_bound; null: no bound")
    entropy_bound: str = F("clamp", "how max_entropy binds: clamp (a flatter Beta has its concentration "
                                    "scaled up, mean kept, to H = max_entropy: a hard bound) | penalty "
                                    "(entropy_penalty * max(0, H - max_entropy) in the loss)")
    entropy_penalty: float = F(1.0, "entropy_bound=penalty: weight of the hinge")
    importance_clip: float | None = F(None, "null: today's update (log pi of the policy at update time, "
                                            "no ratio) | c >= 1: weight min(pi_now / pi_then, c), detached")

    def __post_init__(self) -> None:
        require(self.hold >= 1, "controller.hold", self.hold, ">= 1")
        require(self.credit_windows >= 1, "controller.credit_windows", self.credit_windows, ">= 1")
        in_unit("controller.gamma", self.gamma)
        require(self.progress in PROGRESS_MEASURES, "controller.progress", self.progress,
                f"one of {PROGRESS_MEASURES}")
        require(self.progress_samples >= 1, "controller.progress_samples", self.progress_samples, ">= 1")
        require(self.progress_temperature >= 0, "controller.progress_temperature",
                self.progress_temperature, ">= 0")
        require(self.progress_batch_size >= 1, "controller.progress_batch_size",
                self.progress_batch_size, ">= 1")
        require(self.progress_max_new_tokens >= 1, "controller.progress_max_new_tokens",
                self.progress_max_new_tokens, ">= 1")
        require(self.state in CONTROLLER_STATES, "controller.state", self.state,
                f"one of {CONTROLLER_STATES}")
        require(0 < self.state_ema <= 1, "controller.state_ema", self.state_ema, "in (0, 1]")
        require(self.hidden_size >= 1, "controller.hidden_size", self.hidden_size, ">= 1")
        require(self.lr > 0, "controller.lr", self.lr, "> 0")
        require(0 < self.baseline_rate <= 1, "controller.baseline_rate", self.baseline_rate, "in (0, 1]")
        require(self.entropy_bonus >= 0, "controller.entropy_bonus", self.entropy_bonus, ">= 0")
        require(self.reward in CONTROLLER_REWARDS, "controller.reward", self.reward,
                f"one of {CONTROLLER_REWARDS}")
        require(self.lookahead >= 1, "controller.lookahead", self.lookahead, ">= 1")
        require(self.lambda_gt >= 0, "controller.lambda_gt", self.lambda_gt, ">= 0")
        require(self.advantage in ADVANTAGES, "controller.advantage", self.advantage, f"one of {ADVANTAGES}")
        require(self.advantage_buffer >= 2, "controller.advantage_buffer", self.advantage_buffer, ">= 2")
        require(self.max_entropy is None or self.max_entropy <= 0, "controller.max_entropy",
                self.max_entropy, "<= 0 (no Beta with a, b >= 1 has more) or null")
        require(self.entropy_bound in ENTROPY_BOUNDS, "controller.entropy_bound", self.entropy_bound,
                f"one of {ENTROPY_BOUNDS}")
        require(self.entropy_penalty >= 0, "controller.entropy_penalty", self.entropy_penalty, ">= 0")
        require(self.importance_clip is None or self.importance_clip >= 1, "controller.importance_clip",
                self.importance_clip, ">= 1 or null")


@dataclass
class ScheduleConfig:
    """Hand-written exposure schedules (method=schedule), over training progress t/T."""

    kind: str = F("linear_up", f"one of {SCHEDULES}: low->high, high->low, or low then high at `at`")
    low: float = F(0.0, "exposure at the low end")
    high: float = F(1.0, "exposure at the high end")
    at: float = F(0.5, "step: share of training after which the exposure jumps to `high`")

    def __post_init__(self) -> None:
        require(self.kind in SCHEDULES, "schedule.kind", self.kind, f"one of {SCHEDULES}")
        in_unit("schedule.low", self.low)
        in_unit("schedule.high", self.high)
        in_unit("schedule.at", self.at)


@dataclass
class MethodConfig:
    """Two orthogonal axes (groups `source=` and `loss=` set them) and the method's name.

    `method=<name>` is a preset of both (sweeps/method/); every trained run's name is then
    made from the axes (method_of), so `source=atesd loss=antisd` is `atesd_antisd`."""

    name: str = F("opsd", f"base, or set from the axes (method_of); presets: {METHODS}")
    exposure_source: str = F("fixed", f"where the exposure comes from: {EXPOSURE_SOURCES}")
    loss: str = F("opsd", f"what the student learns, one of {LOSSES} (grpo: no teacher)")

    def __post_init__(self) -> None:
        require(self.exposure_source in EXPOSURE_SOURCES, "method.exposure_source",
                self.exposure_source, f"one of {EXPOSURE_SOURCES}")
        require(self.loss in LOSSES, "method.loss", self.loss, f"one of {LOSSES}")
        if self.name == "base":
            return
        derived = method_of(self.exposure_source, self.loss)
        require(self.name in (*METHODS, derived), "method", self.name, f"one of {METHODS}")
        if self.loss == "grpo":
            require(self.exposure_source == "none", "source", SOURCE_LABELS[self.exposure_source]
                    or self.exposure_source, "loss=grpo has no teacher, so no exposure source "
                    "(method=grpo sets source=none)")
        require(self.loss == "grpo" or self.exposure_source != "none", "loss", self.loss,
                "it needs a teacher and source=none has none (source=fixed|atesd|schedule|random)")
        self.name = derived


def method_of(exposure_source: str, loss: str) -> str:
    """A trained run's method name from the two axes: the source's label, then the loss
    unless it is opsd; fixed + opsd is `opsd`, none + grpo is `grpo`. (fixed, opsd) ->
    opsd, (controller, opsd) -> atesd, (fixed, antisd) -> antisd, (controller, sdar) ->
    atesd_sdar: every old name stays what it was."""
    parts = [SOURCE_LABELS.get(exposure_source, exposure_source), "" if loss == "opsd" else loss]
    return "_".join(p for p in parts if p) or "opsd"


@dataclass
class LauncherConfig:
    """How runs are launched (not what they compute: a relaunch with other values resumes the
    same run folder). sweeps/launcher/*.yaml map these onto hydra.launcher.* (submitit's
    LocalQueueConf / SlurmQueueConf), so `launcher.timeout_min=30` reaches sbatch."""

    max_parallel: int = F(2, "runs training at once on this machine (harness/runs/slots.py); "
                             "0: no cap (SLURM allocates)")
    partition: str | None = F(None, "SLURM partition (null: the cluster's default)")
    gpus_per_node: int = F(0, "GPUs of one run; N > 0 starts N processes (one per GPU, "
                              "torch.distributed, harness/compute/distributed.py); 0: one CPU process")
    cpus_per_task: int = F(1, "CPUs per process")
    mem_gb: int = F(4, "SLURM: memory per node in GB")
    gpu_mem_gb: float = F(80.0, "memory of one GPU in GB: a CUDA point whose memory plan (python -m "
                                "harness.memory.plan) exceeds it is refused before launch; 0: no check")
    timeout_min: int = F(120, "time limit of one job in minutes (SLURM: whole minutes); a SLURM "
                              "job that reaches it is requeued and resumes (max_requeues)")
    array_parallelism: int = F(256, "SLURM: jobs of the sweep's array running at once")
    max_requeues: int = F(3, "SLURM: requeues after a time limit (each resumes from the run's "
                             "last checkpoint); 0: a timed-out run stays unfinished")
    signal_delay_s: int = F(120, "SLURM: seconds before the time limit at which the job is "
                                 "signalled to requeue itself")

    def __post_init__(self) -> None:
        require(self.max_parallel >= 0, "launcher.max_parallel", self.max_parallel, ">= 0")
        require(self.gpus_per_node >= 0, "launcher.gpus_per_node", self.gpus_per_node, ">= 0")
        for name in ("cpus_per_task", "mem_gb", "timeout_min", "array_parallelism"):
            require(getattr(self, name) >= 1, f"launcher.{name}", getattr(self, name), ">= 1")
        require(self.gpu_mem_gb >= 0, "launcher.gpu_mem_gb", self.gpu_mem_gb, ">= 0")
        require(self.max_requeues >= 0, "launcher.max_requeues", self.max_requeues, ">= 0")
        require(self.signal_delay_s >= 0, "launcher.signal_delay_s", self.signal_delay_s, ">= 0")


@dataclass
class RunConfig:
    """Every key of a run and its default: the one source (sweeps/ yaml only selects and
    resizes; tests/test_defaults.py fails if the composed default differs from this).

    Field order is the order of the keys in a run folder's config.yaml."""

    exposure: float = F(1.0, "fixed exposure r in [0, 1] (the teacher sees the first r of the reference)")
    exposure_unit: str = F("tokens", f"unit of the cut: {UNITS}")
    seed: int = F(0, "seed of the run (rollouts, data order, controller)")
    results: str = F("results/runs", "results root; the run folder is <results>/<run name>")
    name: str | None = F(None, "run folder name; default <method>[-<tag>][-r<exposure>]-s<seed>")
    tag: str | None = F(None, "label in the default run name after the method (ablations set it)")
    force: bool = F(False, "re-run even if the run folder says done (old folder kept as .bak)")
    profile: str = F("default", "name of the size profile in use (set by the profile group)")
    base: BaseTrainConfig = field(default_factory=BaseTrainConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grpo: RLConfig = field(default_factory=RLConfig)
    antisd: AntiSDConfig = field(default_factory=AntiSDConfig)
    sdar: SDARConfig = field(default_factory=SDARConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        in_unit("exposure", self.exposure)
        require(self.exposure_unit in UNITS, "exposure_unit", self.exposure_unit, f"one of {UNITS}")
        require(self.seed >= 0, "seed", self.seed, ">= 0")
        require(self.tag is None or re.fullmatch(r"[A-Za-z0-9_.]+", self.tag) is not None, "tag",
                self.tag, "letters, digits, _ and . only (it goes into a folder name)")
        mb, rows = self.train.micro_batch, self.rows_per_step
        require(mb is None or rows % mb == 0, "train.micro_batch", mb,
                f"must divide the step's {rows} rows (train.micro_batch=null: all in one)")

    @property
    def rows_per_step(self) -> int:
        """Rollouts one process trains on per optimiser step: OPSD's prompts, or GRPO's groups."""
        if self.method.loss == "opsd":
            return self.train.prompts_per_step
        return self.grpo.problems(self.train.prompts_per_step) * self.grpo.group_size

    @property
    def micro_batch(self) -> int:
        """Rows per forward/backward (train.micro_batch, null: the whole step)."""
        return self.train.micro_batch or self.rows_per_step

    @property
    def run_name(self) -> str:
        return run_name(self.method.name, self.method.exposure_source, self.exposure, self.seed,
                        self.tag, self.name)


def run_name(method: str, exposure_source: str, exposure: float, seed: int,
             tag: str | None = None, name: str | None = None) -> str:
    """The run folder name: the one naming rule (RunConfig.run_name and the run-folder reader).

    <method>[-<tag>][-r<exposure>]-s<seed>; `base` for the base model; `name` wins when set.
    `method` is MethodConfig.name (method_of the two axes); only a fixed exposure adds -r.
    """
    if name:
        return name
    if method == "base":
        return "base"
    label = f"{method}-{tag}" if tag else method
    if exposure_source == "fixed":
        return f"{label}-r{exposure:g}-s{seed}"
    return f"{label}-s{seed}"


# Keys older run folders' config.yaml may hold that no longer exist (never read).
RETIRED_KEYS = (("task", "train_file"),)


def config_error_in(err: BaseException) -> ConfigError | None:
    """The ConfigError an OmegaConf error wraps (a resolver's), if any."""
    seen: BaseException | None = err
    while seen is not None and not isinstance(seen, ConfigError):
        seen = seen.__cause__ or seen.__context__
    return seen


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Merge a composed config into the schema; raise ConfigError naming the bad value."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else cfg)
    for group, key in RETIRED_KEYS:
        if isinstance(cfg.get(group), DictConfig):
            cfg[group].pop(key, None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), cfg)
        obj = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as err:  # OmegaConf validation errors: keep the first line, it names the key
        cause = config_error_in(err)  # raised by a resolver (harness.tuned_exposure): its own line
        if cause is not None:
            raise cause from None
        first = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{key}: {first}" if key else first) from None
    assert isinstance(obj, RunConfig)
    return obj
