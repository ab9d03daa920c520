"""OPSD trainer: TRL's SDFTTrainer with the teacher shown the first r of the reference.

python -m harness.run method=opsd exposure=0.5 profile=smoke    # trains through this

What this subclass changes in trl.experimental.sdft.SDFTTrainer (trl 1.16, pinned):
- the teacher context builder cuts the reference at the exposure in force
  (an ExposureSource: fixed, schedule, random or the ATESD controller);
- the loss is harness.losses.generalized_jsd (teacher top-k or full vocabulary);
- every step logs mismatch both ways, entropies and rollout accuracy to
  metrics.jsonl, and every probe.every steps the mismatch at each probed exposure
  on the same rollouts, all teacher contexts in one batched forward.
Rollout sampling, the frozen/live/EMA teacher, optimiser and checkpoints are TRL's; with
model.lora.r > 0 the student is a peft LoRA model and teacher.mode=base is that model with
its adapters disabled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from trl.experimental.sdft import SDFTConfig, SDFTTrainer
from trl.trainer.utils import pad

from harness import envsafe, faults
from harness.config import RunConfig
from harness.device import choose
from harness.exposure_source import ExposureSource
from harness.losses import entropy, generalized_jsd, kl, masked_mean
from harness.models import lora_adapter_config
from harness.prompts import Prompts
from harness.run_hooks import RunHooks
from harness.rundir import RunDir
from harness.tasks.grading import grade
from harness.tasks.problem import Problem
from harness.trackers import trl_report_to
from harness.vllm_backend import rollout_args

envsafe.install()  # before any trainer builds its Accelerator (see harness/envsafe.py)


class ExposureContextBuilder:
    """Replaces SDFT's builder: teacher prompt = template(problem, reference[:ceil(r L)]),
    built from token ids (harness/prompts.py Prompts.teacher_ids), never through TRL's
    `_tokenize_prompts`, which cuts prompts from the left at max_prompt_length."""

    def __init__(self, trainer: OPSDTrainer) -> None:
        self.trainer = trainer
        self.ref_cut_share = 0.0  # share of the last batch's references cut to fit the budget

    def teacher_ids(self, problem_ids: list[str], r: float) -> list[list[int]]:
        tr = self.trainer
        built = [tr.prompts.teacher_ids(tr.problems[pid], r) for pid in problem_ids]
        self.ref_cut_share = sum(cut for _, cut in built) / max(len(built), 1)
        return [ids for ids, _ in built]

    def select_generation_prompts(self, prompts: list[Any], privileged: list[Any]) -> list[Any]:
        tr = self.trainer
        r = tr.exposure_source.current()
        return [tr.prompts.teacher(tr.problems[pid], r) for pid in privileged]

    def build_ids(self, teacher_ids: list[list[int]], completion_ids_B_C: torch.Tensor,
                  completion_mask_B_C: torch.Tensor) -> dict[str, torch.Tensor]:
        tr = self.trainer
        ids = [torch.tensor(x) for x in teacher_ids]
        prompt_ids = pad(ids, padding_value=tr._tokenizer.pad_token_id, padding_side="left")
        prompt_mask = pad([torch.ones_like(x) for x in ids], padding_value=0, padding_side="left")
        dev = completion_ids_B_C.device
        return {
            "teacher_input_ids": torch.cat([prompt_ids.to(dev), completion_ids_B_C], dim=1),
            "teacher_attention_mask": torch.cat([prompt_mask.to(dev), completion_mask_B_C], dim=1),
        }

    def build(self, prompts: list[Any], privileged: list[Any], completion_ids: torch.Tensor,
              completion_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        r = self.trainer.exposure_source.current()
        self.trainer.batch_exposure = r
        return self.build_ids(self.teacher_ids(privileged, r), completion_ids, completion_mask)


class OPSDTrainer(RunHooks, SDFTTrainer):
    """SDFTTrainer whose dataset rows are {prompt, privileged_context=problem id}."""

    def __init__(self, *, run_cfg: RunConfig, problems: dict[str, Problem],
                 exposure_source: ExposureSource, run_dir: RunDir, **kwargs: Any) -> None:
        self.init_run(run_cfg, problems, exposure_source, run_dir)
        self.batch_exposure = exposure_source.current()
        # With LoRA, TRL wraps the model in peft and its base teacher is this same model
        # run under disable_adapter() (SDFTTrainer._get_teacher_context_for_self_distillation):
        # no second copy of the weights.
        kwargs.setdefault("peft_config", lora_adapter_config(run_cfg.model.lora))
        super().__init__(**kwargs)
        self.prompts = Prompts(run_cfg, self._tokenizer)
        self.teacher_context_builder = ExposureContextBuilder(self)

    def teacher_context(self):
        """The context the teacher's forward runs in (TRL's: adapters disabled for a LoRA base
        teacher); the name RLTrainer uses too (harness/paper_reward.py TeacherView)."""
        return self._get_teacher_context_for_self_distillation()

    # ---- rollouts: grade them, and probe the mismatch on them ---------------------------
    def _prepare_training_batch(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super()._prepare_training_batch(inputs)
        problem_ids = [x["privileged_context"] for x in inputs]
        texts = self._tokenizer.batch_decode(batch["completion_ids"], skip_special_tokens=True)
        correct = [grade(self.run_cfg.task.grader, t, self.problems[pid].answer)[1]
                   for t, pid in zip(texts, problem_ids)]
        self.step_stats = {
            "rollout_accuracy": sum(correct) / len(correct),
            "completion_length": batch["raw_completion_lengths"].float().mean().item(),
        }
        if self.run_cfg.task.max_teacher_tokens:  # logged only where a budget can cut
            self.step_stats["teacher_ref_cut"] = self.teacher_context_builder.ref_cut_share
        probe = self.run_cfg.probe
        step = self.state.global_step + 1
        if self.model.training and probe.every and (step == 1 or step % probe.every == 0):
            self.pending_rows += self.probe_rows(batch, problem_ids, step)
        return batch

    @torch.no_grad()
    def probe_rows(self, batch: dict[str, Any], problem_ids: list[str], step: int) -> list[dict]:
        """Mismatch at every probed exposure on these rollouts, as few teacher forwards as
        probe.max_rows allows (one for all exposures by default)."""
        comp_B_C, cmask_B_C = batch["completion_ids"], batch["completion_mask"]
        c_len = comp_B_C.shape[1]
        s_ids = torch.cat([batch["prompt_ids"], comp_B_C], 1)
        s_mask = torch.cat([batch["prompt_mask"], cmask_B_C], 1)
        s_logits_B_C_V = self._forward_logits(self.model, s_ids, s_mask, c_len) * self.temperature

        def teacher_logits(chunk: list[float]) -> torch.Tensor:
            builder = self.teacher_context_builder
            ids = [x for r in chunk for x in builder.teacher_ids(problem_ids, r)]
            t_in = builder.build_ids(ids, comp_B_C.repeat(len(chunk), 1), cmask_B_C.repeat(len(chunk), 1))
            with self.teacher_context():
                return self._forward_logits(self.teacher_model, t_in["teacher_input_ids"],
                                            t_in["teacher_attention_mask"], c_len) * self.temperature

        rows = probe_mismatch(list(self.run_cfg.probe.exposures), self.run_cfg.probe.max_rows,
                              teacher_logits, s_logits_B_C_V, cmask_B_C)
        for row in rows:
            check_finite(row, step, ("mismatch_kl_st", "mismatch_kl_ts"))
        return [{"step": step, "kind": "probe", **row} for row in rows]

    # ---- loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = self._compute_teacher_student_logits(model, self.teacher_model, inputs)
        lc = self.run_cfg.loss
        per_token_B_C = generalized_jsd(logits.teacher_logits, logits.student_logits, lc.beta,
                                        lc.support, lc.topk)
        loss = masked_mean(per_token_B_C, logits.loss_mask)
        step = self.state.global_step + 1
        if model.training and faults.poison(self.run_cfg.run_name, step):
            loss = loss * float("nan")
        with torch.no_grad():
            # Mismatch at temperature 1: undo SDFT's division of the logits by the sampling T.
            s = logits.student_logits.detach() * self.temperature
            t = logits.teacher_logits * self.temperature
            m = logits.loss_mask
            self.step_stats.update({
                "loss": loss.item(),
                "mismatch_kl_st": masked_mean(kl(s, t), m).item(),
                "mismatch_kl_ts": masked_mean(kl(t, s), m).item(),
                "teacher_entropy": masked_mean(entropy(t), m).item(),
                "student_entropy": masked_mean(entropy(s), m).item(),
                "student_confidence": masked_mean(s.softmax(-1).amax(-1), m).item(),
            })
        if model.training:
            check_finite(self.step_stats, step, ("loss", "mismatch_kl_st", "mismatch_kl_ts"))
        return loss / (self.current_gradient_accumulation_steps if model.training else 1.0)

    # ---- one metrics row per optimiser step ----------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.model.training:
            step = self.state.global_step
            row = {"step": step, "kind": "train", "exposure": self.batch_exposure,
                   **self.step_stats, "lr": logs.get("learning_rate"),
                   "grad_norm": logs.get("grad_norm"), "wall_time": self.elapsed()}
            self.write_step(step, row)
        super().log(logs, start_time)


class NonFiniteError(FloatingPointError):
    """A loss or mismatch went NaN/inf: the run stops (status failed) instead of training on."""


def check_finite(stats: dict[str, float], step: int, keys: tuple[str, ...]) -> None:
    for key in keys:
        if not math.isfinite(stats[key]):
            raise NonFiniteError(f"non-finite {key} at step {step}: {stats[key]}")


@torch.no_grad()
def probe_mismatch(exposures: list[float], max_rows: int,
                   teacher_logits: Callable[[list[float]], torch.Tensor],
                   s_logits_B_C_V: torch.Tensor, cmask_B_C: torch.Tensor) -> list[dict[str, float]]:
    """Mismatch both ways at each exposure; `teacher_logits(chunk)` gives the teacher's
    logits_EB_C_V for a chunk of exposures (rows exposure-major). A chunk holds at most
    max_rows // B exposures (at least one); max_rows = 0 puts all in one forward."""
    n = s_logits_B_C_V.shape[0]
    per_forward = max(1, max_rows // n) if max_rows else len(exposures)
    rows = []
    for start in range(0, len(exposures), per_forward):
        chunk = exposures[start:start + per_forward]
        t_logits_EB_C_V = teacher_logits(chunk)
        for i, r in enumerate(chunk):
            t_logits_B_C_V = t_logits_EB_C_V[i * n:(i + 1) * n]
            rows.append({"probe_exposure": r,
                         "mismatch_kl_st": masked_mean(kl(s_logits_B_C_V, t_logits_B_C_V), cmask_B_C).item(),
                         "mismatch_kl_ts": masked_mean(kl(t_logits_B_C_V, s_logits_B_C_V), cmask_B_C).item()})
    return rows


def sdft_args(cfg: RunConfig, output_dir: str) -> SDFTConfig:
    t = cfg.train
    # Device and mixed precision: harness/device.py (CPU: use_cpu, fp32; CUDA: model.dtype).
    precision = choose(cfg.model.dtype, lora=cfg.model.lora.r > 0)
    return SDFTConfig(
        output_dir=output_dir, max_steps=t.steps, per_device_train_batch_size=t.prompts_per_step,
        num_generations=1, gradient_accumulation_steps=1, learning_rate=t.lr,
        lr_scheduler_type="constant_with_warmup", warmup_steps=t.warmup_steps,
        max_grad_norm=t.max_grad_norm, temperature=t.temperature, top_p=t.top_p, top_k=0,
        max_completion_length=t.max_completion_length, max_prompt_length=None,
        teacher_model_kind=cfg.teacher.mode, teacher_update_rate=cfg.teacher.ema_rate,
        distillation_alpha=cfg.loss.beta, distillation_mode="full_logits",
        logging_steps=1, report_to=trl_report_to(t.report_to), seed=cfg.seed, data_seed=cfg.seed,
        **precision.train_flags(), trust_remote_code=cfg.model.trust_remote_code,
        save_strategy="steps" if t.checkpoint_every else "no",
        save_steps=t.checkpoint_every or 1, save_total_limit=1, save_only_model=False,
        disable_tqdm=False, log_level="warning",
        dataloader_num_workers=0, shuffle_dataset=True,
        **rollout_args(t),  # train.generation=vllm: TRL's vLLM rollouts (harness/vllm_backend.py)
    )
