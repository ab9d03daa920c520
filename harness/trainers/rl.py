"""GRPO and the student-side losses built on it: TRL's GRPOTrainer with the task's grader.

python -m harness.run method=grpo profile=smoke       # also method=antisd|sdar, source=atesd loss=antisd

What each loss adds to GRPO's step is its component's GRPOSideLoss (harness/losses/base.py;
antisd.py, sdar.py); this trainer names no loss:
loss=grpo   correctness reward (harness.tasks.grading.grade), grpo.group_size rollouts a
            problem, no teacher (source none).
loss=antisd GRPO with A_i + lambda A_t per token, A_t the bounded AntiSD advantage of the gap
            log p_T - log p_S, turned off by the teacher-entropy gate (harness/losses/student.py).
loss=sdar   GRPO loss + sdar.coef x mean_t(g_t D_t), g_t = sigmoid(beta_g gap_t) detached, D_t
            the OPSD divergence (harness.losses.divergences.generalized_jsd, loss.beta / loss.support).
The teacher is the same model shown the reference at the exposure in force, through the same
ExposureContextBuilder as OPSDTrainer (harness/trainers/opsd.py); teacher.mode picks its weights.
Metrics rows match OPSD's (one `kind: train` row per optimiser step, rank 0 writes them);
checkpoints and resume are TRL's, the loss's own state (AntiSD's gate) travels in each checkpoint.
Teacher-side statistics and the sdar term come from harness/losses/chunked.py on final hidden states
(train.micro_batch rows per forward, the vocabulary in blocks): no batch-wide logits tensor.
Cost: sdar runs a second student forward (with gradient) for its divergence.
"""

from __future__ import annotations

import copy
import json
import math
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import is_peft_model
from transformers import TrainerCallback
from trl import GRPOTrainer
from trl.experimental.sdft.teacher_sync import PEFTAdapterEMACallback
from trl.trainer.utils import use_adapter

from harness.compute import envsafe
from harness.compute.distributed import world
from harness.compute.reduce import global_count, weighted_means
from harness.config.schema import RunConfig
from harness.losses.base import GRPOSideLoss
from harness.losses.chunked import STATS, chunked_divergence, token_means
from harness.losses.hidden_states import lm_head, row_blocks
from harness.models.tiny import lora_adapter_config
from harness.prompts.templates import Prompts
from harness.registry import get
from harness.runs import faults
from harness.runs.rundir import RunDir
from harness.sources.base import ExposureSource
from harness.tasks.grading import grade
from harness.tasks.problem import Problem
from harness.trainers.hooks import NonFiniteError, RunHooks, check_finite
from harness.trainers.opsd import ExposureContextBuilder

envsafe.install()  # before any trainer builds its Accelerator (see harness/compute/envsafe.py)



class EMATeacher(TrainerCallback):
    """teacher.mode=ema without LoRA: teacher <- (1 - rate) teacher + rate student each step."""

    def __init__(self, teacher: torch.nn.Module, student: torch.nn.Module, rate: float) -> None:
        self.teacher, self.student, self.rate = teacher, student, rate

    @torch.no_grad()
    def on_step_end(self, args, state, control, **kwargs):
        for t, s in zip(self.teacher.parameters(), self.student.parameters()):
            t.lerp_(s.detach().to(t.dtype), self.rate)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of model that runs its own weights. A plain deepcopy does not: by the time
    setup_teacher runs, the trainer has set an instance `forward` on the model (a wrapper whose
    closure holds the student's bound forward), and deepcopy keeps that closure, so the
    "copy" computed with the student's live weights. Instance forwards are dropped here."""
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    for module in teacher.modules():
        module.__dict__.pop("forward", None)
    return teacher


class RLTrainer(RunHooks, GRPOTrainer):
    """GRPOTrainer whose dataset rows are {prompt, privileged_context=problem id}."""

    def __init__(self, *, run_cfg: RunConfig, problems: dict[str, Problem],
                 exposure_source: ExposureSource, run_dir: RunDir, **kwargs: Any) -> None:
        self.init_run(run_cfg, problems, exposure_source, run_dir)
        loss = get("loss", run_cfg.method.loss)
        self.has_teacher = loss.has_teacher
        # what the loss adds to GRPO's step (harness/losses/base.py; plain GRPO adds nothing)
        self.student_loss: GRPOSideLoss = loss.build(run_cfg) if loss.build else GRPOSideLoss(run_cfg)
        kwargs.setdefault("peft_config", lora_adapter_config(run_cfg.model.lora))
        super().__init__(reward_funcs=[self.correctness], **kwargs)
        self._tokenizer = self.processing_class  # what ExposureContextBuilder pads with
        self.prompts = Prompts(run_cfg, self._tokenizer)
        self.teacher_context_builder = ExposureContextBuilder(self)
        self.teacher_model, self.teacher_context = self.setup_teacher() if self.has_teacher \
            else (None, nullcontext)

    # ---- reward and teacher --------------------------------------------------------------
    def correctness(self, completions: list[str], privileged_context: list[str],
                    **_: Any) -> list[float]:
        """1.0 for a correct final answer (the task's grader), else 0.0."""
        scores = [float(grade(self.run_cfg.task.grader, text, self.problems[pid].answer)[1])
                  for text, pid in zip(completions, privileged_context)]
        self.graded = (list(privileged_context), [s == 1.0 for s in scores])
        return scores

    def setup_teacher(self):
        """(teacher module, context manager routing its forward) for teacher.mode: live is the
        student; base with LoRA is the student with adapters disabled (no copy), without LoRA a
        frozen copy of the initial weights; ema a copy (or LoRA adapter) moved each step."""
        mode, rate = self.run_cfg.teacher.mode, self.run_cfg.teacher.ema_rate
        peft = is_peft_model(self.model)
        if mode == "live":
            return self.model, nullcontext
        if peft and mode == "base":
            return self.model, lambda: use_adapter(self.model, adapter_name=None)
        if peft:  # ema: a "teacher" LoRA adapter, TRL's EMA of the student's
            self.add_callback(PEFTAdapterEMACallback(model=self.model, teacher_adapter_name="teacher",
                                                     update_rate=rate, accelerator=self.accelerator))
            return self.model, lambda: use_adapter(self.model, adapter_name="teacher")
        teacher = frozen_copy(self.model)
        if mode == "ema":
            self.add_callback(EMATeacher(teacher, self.model, rate))
        return teacher, nullcontext

    @torch.no_grad()
    def teacher_token_stats(self, out: dict[str, Any]) -> torch.Tensor:
        """stats_B_C_K (harness/losses/chunked.py STATS, zero on padding) of the whole generation batch,
        train.micro_batch rows per forward, the vocabulary block by block."""
        m_B_C = out["completion_mask"].bool()
        stats_B_C_K = torch.zeros(*m_B_C.shape, len(STATS), device=m_B_C.device)
        for rows in row_blocks(m_B_C.shape[0], self.run_cfg.micro_batch):
            sel = m_B_C[rows]
            h_t = self.teacher_hidden(out["teacher_input_ids"][rows], out["teacher_attention_mask"][rows],
                                      out["completion_ids"].shape[1])
            _, st = chunked_divergence(self.student_hidden(self.model, out, rows)[sel], h_t[sel],
                                       out["completion_ids"][rows][sel],
                                       lm_head(self.model), replace(self.spec(), loss=False),
                                       lm_head(self.teacher_model))
            stats_B_C_K[rows][sel] = st.to(stats_B_C_K.dtype)  # rows is a slice: a view, written through
        return stats_B_C_K

    # ---- rollouts: teacher contexts, mismatch, AntiSD advantage ------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        if not self.has_teacher or not self.model.training:
            return out
        builder = self.teacher_context_builder
        ids = builder.batch_ids([x["privileged_context"] for x in inputs])
        out.update(builder.build_ids(ids, out["completion_ids"], out["completion_mask"]))
        m_B_C = out["completion_mask"]
        local_tokens = max(int(m_B_C.sum()), 1)
        # An added term's normaliser over micro-batches: the step's tokens on all ranks over the
        # world size, as DDP averages the ranks' gradients (the global batch's token mean).
        self.step_loss_tokens = max(global_count(int(m_B_C.sum())) / world()[1], 1e-9)
        self.student_loss.batch_start(self)
        stats_B_C_K = self.teacher_token_stats(out)
        means = {k: v.item() / local_tokens for k, v in
                 token_means(stats_B_C_K[m_B_C.bool()], STATS[:4]).items()}
        if self.run_cfg.task.max_teacher_tokens:
            means["teacher_ref_cut"] = builder.ref_cut_share
        self.step_stats = weighted_means(means, local_tokens)  # over every rank's tokens
        self.exposure_source.record(*self.graded)  # per-problem sources read the grades
        if self.exposure_source.needs_probe:  # a source that reads the probe (target_mismatch)
            self.maybe_probe(out, [x["privileged_context"] for x in inputs])
        advantages = self.student_loss.advantages(self, out, stats_B_C_K)
        if advantages is not None:  # AntiSD: per-token advantages instead of GRPO's
            out["advantages"] = advantages
        return out

    # ---- loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        extra = self.student_loss.extra_loss(self, model, inputs) if model.training else None
        if extra is not None:  # SDAR: the gated distillation term
            loss = loss + extra
        step = self.state.global_step + 1
        if model.training and faults.poison(self.run_cfg.run_name, step):
            loss = loss * float("nan")
        if model.training and not math.isfinite(loss.item()):
            raise NonFiniteError(f"non-finite loss at step {step}: {loss.item()}")
        return loss

    # ---- one metrics row per optimiser step ----------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        training = "loss" in logs and self.model.training
        super().log(logs, start_time)  # GRPOTrainer.log adds its step metrics to `logs`
        if not training:
            return
        step = self.state.global_step
        row = {"step": step, "kind": "train",
               **(self.exposure_stats() if self.has_teacher else {}),
               "rollout_accuracy": logs.get("reward"),
               "completion_length": logs.get("completions/mean_length"),
               "student_entropy": logs.get("entropy"),  # teacher losses: at T 1, from step_stats
               "loss": logs.get("loss"), **self.step_stats, "lr": logs.get("learning_rate"),
               "grad_norm": logs.get("grad_norm"), "wall_time": self.elapsed()}
        # A student term's token sums were taken over the global token count / world size on each
        # rank (harness/losses/sdar.py): their plain mean over ranks is the global batch's value.
        row.update(weighted_means(getattr(self.student_loss, "sums", None) or {}, 1.0))
        check_finite(row, step, ("loss",))
        self.write_step(step, row)

    # ---- the student loss's own state (AntiSD's gate) in each checkpoint -------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        name = self.student_loss.state_file
        if name and self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            (folder / name).write_text(json.dumps(self.student_loss.state_dict()))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        name = self.student_loss.state_file
        if checkpoint is not None and name and (Path(checkpoint) / name).is_file():
            self.student_loss.load_state_dict(json.loads((Path(checkpoint) / name).read_text()))
