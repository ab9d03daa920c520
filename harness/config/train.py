"""How a run trains, probes, evaluates and is launched: the sections every trained run has.

python -c "from harness.config.train import TrainConfig; help(TrainConfig)"
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.fields import (
    EVAL_BACKENDS,
    GENERATIONS,
    SUPPORTS,
    TEACHER_MODES,
    VLLM_MODES,
    F,
    in_unit,
    parse_report_to,
    require,
    require_vllm,
)


@dataclass
class EvalConfig:
    k: int = F(12, "samples per problem (Average@k)")
    temperature: float = F(1.0, "sampling temperature")
    top_p: float = F(1.0, "nucleus sampling")
    max_new_tokens: int = F(64, "generation length")
    max_model_len: int | None = F(None, "backend vllm: the engine's context (prompt + new tokens); "
                                        "null: the model's config.json (Qwen3: 40,960, as the public "
                                        "OPSD evaluation)")
    batch_size: int = F(512, "sequences per generate call; also the unit a requeued evaluation resumes "
                             "from (harness/evaluation/progress.py): every finished batch is kept")
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
        require(self.max_model_len is None or self.max_model_len > self.max_new_tokens, "eval.max_model_len",
                self.max_model_len, f"> eval.max_new_tokens={self.max_new_tokens} (or null)")
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
    clip: float | None = F(None, "clamp each vocabulary entry's term of D at this value (null: off); "
                                 "the public OPSD setting is 0.05 (harness/losses/divergences.py)")
    kernel: str = F("auto", "the loss and its gradient: trl (TRL 1.16's fused chunked_divergence, Triton "
                            "on CUDA), harness (harness/losses/chunked.py), auto (trl on CUDA where it "
                            "computes the step's loss: full vocabulary, no clip, no SDAR gate)")

    def __post_init__(self) -> None:
        in_unit("loss.beta", self.beta)
        require(self.clip is None or self.clip > 0, "loss.clip", self.clip, "> 0 or null")
        require(self.kernel in ("auto", "harness", "trl"), "loss.kernel", self.kernel, "auto, harness or trl")
        require(self.kernel != "trl" or (self.support == "full" and self.clip is None), "loss.kernel",
                self.kernel, "TRL's kernel computes the full-vocabulary divergence without loss.clip "
                "(loss.kernel=auto or harness)")
        require(self.chunk_mb > 0, "loss.chunk_mb", self.chunk_mb, "> 0")
        require(self.support in SUPPORTS, "loss.support", self.support, f"one of {SUPPORTS}")
        require(self.topk >= 1, "loss.topk", self.topk, ">= 1")


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
    gradient_checkpointing: bool = F(True, "recompute each layer's activations in the backward "
                                          "(transformers' activation_checkpointing; TRL's configs default "
                                          "to it, so every run so far trained with it): the memory plan's "
                                          "activations are one layer's; false keeps them all (~30% faster)")
    keep_checkpoints: int = F(1, "complete checkpoints kept (0: all): keep several to evaluate each "
                                 "later (python -m harness.evaluate --run DIR --checkpoints all)")
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
        require(self.keep_checkpoints >= 0, "train.keep_checkpoints", self.keep_checkpoints, ">= 0")
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
class LauncherConfig:
    """How runs are launched (not what they compute: a relaunch with other values resumes the
    same run folder). sweeps/launcher/*.yaml map these onto hydra.launcher.* (submitit's
    LocalQueueConf / SlurmQueueConf), so `launcher.timeout_min=30` reaches sbatch."""

    max_parallel: int = F(2, "runs training at once on this machine (harness/runs/slots.py); "
                             "0: no cap (SLURM allocates)")
    partition: str | None = F(None, "SLURM partition (null: the cluster's default)")
    gpus_per_node: int = F(0, "GPUs of one run; N > 0 starts N processes (one per GPU, "
                              "torch.distributed, harness/compute/distributed.py); 0: one CPU process")
    processes: int | None = F(None, "processes of one run (torch.distributed ranks); null: one per GPU "
                                    "(gpus_per_node), one without GPUs. Set it for ranks on CPUs (gloo): "
                                    "the cluster rehearsal (tests/test_cluster_rehearsal.py)")
    cpus_per_task: int = F(1, "CPUs per process")
    mem_gb: int = F(4, "SLURM: memory per node in GB")
    gpu_mem_gb: float = F(80.0, "memory of one GPU in GB: a CUDA point whose memory plan (python -m "
                                "harness.memory.plan) exceeds it is refused before launch; 0: no check")
    timeout_min: int = F(120, "time limit of one job in minutes (SLURM: whole minutes); a SLURM "
                              "job that reaches it is requeued and resumes (max_requeues)")
    collective_timeout_min: int = F(30, "runs of several processes: how long a training collective "
                                        "waits for a rank before the job fails (the wait for rank 0's "
                                        "evaluation uses timeout_min; harness/compute/distributed.py)")
    array_parallelism: int = F(256, "SLURM: jobs of the sweep's array running at once")
    local_wave: int = F(16, "local launcher: jobs started at once (each job waiting for its slot is "
                            "a ~150 MB process: a 121-run array at once filled 24 GB); the next "
                            "wave starts when one has ended")
    max_requeues: int = F(3, "SLURM: requeues after a time limit (each resumes from the run's "
                             "last checkpoint); 0: a timed-out run stays unfinished")
    signal_delay_s: int = F(120, "SLURM: seconds before the time limit at which the job is "
                                 "signalled to requeue itself")

    def __post_init__(self) -> None:
        require(self.max_parallel >= 0, "launcher.max_parallel", self.max_parallel, ">= 0")
        require(self.gpus_per_node >= 0, "launcher.gpus_per_node", self.gpus_per_node, ">= 0")
        require(self.processes is None or self.processes >= 1, "launcher.processes", self.processes,
                ">= 1 or null")
        require(self.processes is None or not self.gpus_per_node or self.processes == self.gpus_per_node,
                "launcher.processes", self.processes,
                f"must equal launcher.gpus_per_node={self.gpus_per_node} (one process per GPU) or be null")
        for name in ("cpus_per_task", "mem_gb", "timeout_min", "collective_timeout_min", "array_parallelism",
                     "local_wave"):
            require(getattr(self, name) >= 1, f"launcher.{name}", getattr(self, name), ">= 1")
        require(self.gpu_mem_gb >= 0, "launcher.gpu_mem_gb", self.gpu_mem_gb, ">= 0")
        require(self.max_requeues >= 0, "launcher.max_requeues", self.max_requeues, ">= 0")
        require(self.signal_delay_s >= 0, "launcher.signal_delay_s", self.signal_delay_s, ">= 0")
