"""The trainers the benchmarks compare, built the way a run builds them, and one optimiser step.

python -m harness.bench --only step --quick profile=smoke   # builds an OPSD and a TRL SDFT trainer

- `opsd`: harness.trainers.build.build_trainer on harness.run.train_rows (what a run trains);
- `sdft`: TRL's own SDFTTrainer, same model and settings (harness.trainers.build.sdft_args), its
  privileged context the very teacher prompt text OPSD builds (template
  "{privileged_context}"), so both teachers read the same tokens;
- `grpo`: TRL's GRPOTrainer, same model and sampling settings, a correctness reward
  (harness.tasks.grading), the same number of rollouts per step (beta 0: TRL's default,
  no reference model).

`optimiser_step` is the body of transformers' inner training loop for one batch
(Trainer._inner_training_loop: training_step, clipping, optimizer and scheduler step,
zero_grad) without its logging and callbacks; training_step samples the rollouts
(the trainers' _prepare_inputs), so the step is whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.config.schema import RunConfig


@dataclass
class Setup:
    """What every trainer of one benchmark shares: config, base model path, problems."""

    cfg: RunConfig
    model_path: Path
    workdir: Path


def base_path(cfg: RunConfig) -> Path:
    """The run's base model (shipped, cached, or built where the profile allows)."""
    from harness.models.base import ensure_base

    return Path(ensure_base(cfg))


def problems_and_rows(cfg: RunConfig, tok) -> tuple[dict, list[dict]]:
    from harness.prompts.templates import Prompts
    from harness.run import train_rows
    from harness.tasks.datasets import TaskData

    rows, problems = train_rows(cfg, TaskData(cfg.task), Prompts(cfg, tok))
    return problems, rows


def opsd(s: Setup, name: str = "opsd"):
    """The run's trainer (harness.trainers.build.build_trainer: OPSDTrainer for loss=opsd)."""
    from harness.models.tiny import load
    from harness.runs.rundir import RunDir
    from harness.sources.pick import make_source
    from harness.tasks.datasets import TaskData
    from harness.trainers.build import build_trainer

    model, tok = load(s.model_path, s.cfg.model)
    problems, rows = problems_and_rows(s.cfg, tok)
    source = make_source(s.cfg, evaluator=(TaskData(s.cfg.task), tok))
    rd = RunDir(s.workdir / name)
    rd.path.mkdir(parents=True, exist_ok=True)
    return ready(build_trainer(s.cfg, rd, model, tok, rows, problems, source))


def sdft(s: Setup):
    from datasets import Dataset
    from trl.experimental.sdft import SDFTTrainer

    from harness.models.tiny import load, lora_adapter_config
    from harness.prompts.templates import Prompts
    from harness.trainers.build import sdft_args

    model, tok = load(s.model_path, s.cfg.model)
    problems, rows = problems_and_rows(s.cfg, tok)
    prompts = Prompts(s.cfg, tok)
    # OPSD's teacher prompt at the run's exposure, whole, as TRL's privileged context.
    sdft_rows = [{"prompt": row["prompt"],
                  "privileged_context": prompts.teacher(problems[row["privileged_context"]], s.cfg.exposure)}
                 for row in rows]
    args = sdft_args(s.cfg, str(s.workdir / "sdft"))
    args.teacher_prompt_template = "{privileged_context}"
    trainer = SDFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(sdft_rows),
                          processing_class=tok, peft_config=lora_adapter_config(s.cfg.model.lora))
    return ready(trainer)


def group_size(rollouts: int) -> int:
    """GRPO's num_generations: 4 per prompt where the rollouts allow, else 2."""
    return 4 if rollouts % 4 == 0 else 2


def grpo(s: Setup):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from harness.compute.device import choose
    from harness.models.tiny import load, lora_adapter_config
    from harness.prompts.templates import Prompts
    from harness.tasks.grading import grade

    cfg, t = s.cfg, s.cfg.train
    model, tok = load(s.model_path, cfg.model)
    problems, rows = problems_and_rows(cfg, tok)
    prompts = Prompts(cfg, tok)
    grpo_rows = [{"prompt": prompts.student(p), "answer": p.answer} for p in problems.values()]

    def correctness(completions: list[str], answer: list[str], **_: Any) -> list[float]:
        return [float(grade(cfg.task.grader, c, a)[1]) for c, a in zip(completions, answer)]

    args = GRPOConfig(
        output_dir=str(s.workdir / "grpo"), max_steps=t.steps, per_device_train_batch_size=t.prompts_per_step,
        num_generations=group_size(t.prompts_per_step), gradient_accumulation_steps=1,
        learning_rate=t.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=t.warmup_steps,
        max_grad_norm=t.max_grad_norm, temperature=t.temperature, top_p=t.top_p, top_k=0,
        max_completion_length=t.max_completion_length, logging_steps=1, report_to=[], seed=cfg.seed,
        save_strategy="no", disable_tqdm=True, log_level="warning", dataloader_num_workers=0,
        **choose(cfg.model.dtype, lora=cfg.model.lora.r > 0).train_flags())
    trainer = GRPOTrainer(model=model, reward_funcs=correctness, args=args,
                          train_dataset=Dataset.from_list(grpo_rows), processing_class=tok,
                          peft_config=lora_adapter_config(cfg.model.lora))
    return ready(trainer)


def ready(trainer):
    """The optimiser and scheduler that Trainer.train would create."""
    trainer.create_optimizer_and_scheduler(num_training_steps=trainer.args.max_steps)
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def first_batch(trainer) -> list[dict]:
    """The raw rows of the trainer's first step, from its own dataloader (GRPO's repeats
    each prompt num_generations times)."""
    return next(iter(trainer.get_train_dataloader()))


def optimiser_step(trainer, inputs: list[dict]) -> None:
    model = trainer.model
    trainer.training_step(model, inputs, None)
    if trainer.args.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    model.zero_grad()
    trainer.state.global_step += 1
