"""The one construction of a run's trainer and its TRL arguments.

python -m pytest -q tests/test_build_trainer.py   # the arguments equal the ones runs were trained with

- `common_trl_args`: the TRL arguments SDFTConfig and GRPOConfig share (steps, batch, optimiser,
  sampling, logging, precision, checkpoints, rollouts);
- `sdft_args` (loss=opsd, TRL's SDFTTrainer) and `grpo_args` (grpo|antisd|sdar, TRL's
  GRPOTrainer) add their own, through `one_device` (a lone process trains on one GPU, never
  under nn.DataParallel);
- `build_trainer`: OPSDTrainer or RLTrainer on the run's rows, its exposure source bound to the
  trainer's model and teacher: what a run (harness/run.py) and the benchmarks
  (harness/bench/trainers.py) train.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from harness.compute.device import choose
from harness.compute.distributed import world
from harness.compute.vllm_backend import rollout_args
from harness.config.schema import RunConfig
from harness.registry import get
from harness.trainers.trackers import trl_report_to

if TYPE_CHECKING:
    from transformers import Trainer, TrainingArguments
    from trl import GRPOConfig
    from trl.experimental.sdft import SDFTConfig

    from harness.runs.rundir import RunDir
    from harness.sources.base import ExposureSource
    from harness.tasks.problem import Problem


def common_trl_args(cfg: RunConfig, output_dir: str) -> dict[str, Any]:
    """SDFTConfig / GRPOConfig keyword arguments both trainers take from the run config."""
    t = cfg.train
    # Device and mixed precision: harness/compute/device.py (CPU: use_cpu, fp32; CUDA: model.dtype).
    precision = choose(cfg.model.dtype, lora=cfg.model.lora.r > 0)
    return dict(
        output_dir=output_dir, max_steps=t.steps,
        # train.micro_batch rows per backward; rollouts are still sampled once a step (TRL's
        # steps_per_generation defaults to the accumulation steps) and split into micro-batches.
        # train.prompts_per_step is the global batch: each of the world's processes takes its share
        # (TRL's generation batch is per-device batch x processes x accumulation steps).
        per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=cfg.rows_per_rank(world()[1]) // cfg.micro_batch,
        learning_rate=t.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=t.warmup_steps,
        max_grad_norm=t.max_grad_norm, temperature=t.temperature, top_p=t.top_p,
        # transformers 5.23's name (gradient_checkpointing is its deprecated alias)
        activation_checkpointing=t.gradient_checkpointing,
        max_completion_length=t.max_completion_length,
        logging_steps=1, report_to=trl_report_to(t.report_to), seed=cfg.seed, data_seed=cfg.seed,
        **precision.train_flags(), trust_remote_code=cfg.model.trust_remote_code,
        # Every train.checkpoint_every steps and at the last step (0: only there; transformers saves
        # the last step under the steps strategy). No rotation here: harness/runs/checkpoints.py
        # marks a checkpoint complete first and rotates after (transformers' rotation ran before
        # the exposure source was saved, review B6).
        save_strategy="steps", save_steps=t.checkpoint_every or t.steps, save_total_limit=None,
        save_only_model=False,
        disable_tqdm=False, log_level="warning", dataloader_num_workers=0, shuffle_dataset=True,
        # train.top_k, and train.generation=vllm|auto: TRL's vLLM rollouts (harness/compute/vllm_backend.py)
        **rollout_args(t),
    )


def sdft_args(cfg: RunConfig, output_dir: str) -> SDFTConfig:
    """TRL SDFTConfig (loss=opsd): one rollout per prompt, the teacher of teacher.mode."""
    from trl.experimental.sdft import SDFTConfig

    return one_device(SDFTConfig(
        **common_trl_args(cfg, output_dir), num_generations=1, max_prompt_length=None,
        teacher_model_kind=cfg.teacher.mode, teacher_update_rate=cfg.teacher.ema_rate,
        distillation_alpha=cfg.loss.beta, distillation_mode="full_logits",
    ))


def grpo_args(cfg: RunConfig, output_dir: str) -> GRPOConfig:
    """TRL GRPOConfig: grpo.problems(...) problems x group_size rollouts a step, one update each."""
    from trl import GRPOConfig

    g = cfg.grpo
    return one_device(GRPOConfig(
        **common_trl_args(cfg, output_dir), num_generations=g.group_size,
        beta=0.0, epsilon=g.epsilon, scale_rewards=g.scale_rewards,
    ))


A = TypeVar("A", bound="TrainingArguments")


def one_device(args: A) -> A:
    """One process trains on one GPU. Outside torch.distributed, transformers counts every visible
    GPU (training_args.py: `_n_gpu = torch.cuda.device_count()`) and then wraps the model in
    nn.DataParallel and multiplies the batch by that count. DataParallel's replicas share the
    final norm's forward hook that captures the hidden states (harness/losses/hidden_states.py),
    so the loss would read one replica's shard (review B5). A run of several GPUs is several
    processes (launcher.gpus_per_node); a lone process is pinned to cuda:0 (CUDA_VISIBLE_DEVICES
    picks which)."""
    if world()[1] <= 1 and args.n_gpu > 1:
        print(f"note: this process sees {args.n_gpu} GPUs and trains on cuda:0 only (one process a "
              "GPU: launcher.gpus_per_node, or torchrun)", flush=True)
        args._n_gpu = 1  # read by Trainer (DataParallel wrap) and by args.train_batch_size
    return args


def build_trainer(cfg: RunConfig, run_dir: RunDir, model, tok, rows: list[dict],
                  problems: dict[str, Problem], source: ExposureSource,
                  callbacks: Sequence[Any] = ()) -> Trainer:
    """The run's trainer (loss=opsd: OPSDTrainer on TRL's SDFTTrainer; grpo|antisd|sdar:
    RLTrainer on TRL's GRPOTrainer), checkpoints under run_dir, its exposure source bound
    to the trainer's model, tokenizer and teacher."""
    from datasets import Dataset

    from harness.compute.vllm_backend import adopt_rollout_engine, install_drift_free_sync
    from harness.sources.paper_reward import TeacherView

    if get("loss", cfg.method.loss).trainer == "opsd":  # harness/registry.py
        from harness.trainers.opsd import OPSDTrainer as trainer_cls
        make_args = sdft_args
    else:
        from harness.trainers.rl import RLTrainer as trainer_cls
        make_args = grpo_args
    trainer = trainer_cls(model=model, args=make_args(cfg, str(run_dir.checkpoints)),
                          train_dataset=Dataset.from_list(rows), processing_class=tok,
                          run_cfg=cfg, problems=problems, exposure_source=source, run_dir=run_dir,
                          callbacks=list(callbacks))
    adopt_rollout_engine(trainer)  # colocated vLLM: rollouts seeded by the run's seed, ATESD's progress on it
    install_drift_free_sync(trainer)  # LoRA + vLLM rollouts: the frozen base never merged into
    source.bind(trainer.model, tok, teacher=TeacherView.of(trainer))
    return trainer
