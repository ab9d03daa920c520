"""OPSD trainer: TRL's SDFTTrainer with the teacher shown the first r of the reference.

python -m harness.run method=opsd exposure=0.5 profile=smoke    # trains through this

What this subclass changes in trl.experimental.sdft.SDFTTrainer (trl 1.16, pinned):
- the teacher context builder cuts the reference at the exposure in force
  (an ExposureSource: fixed, schedule, random or the ATESD controller);
- the loss is harness.losses.divergences.generalized_jsd (teacher top-k or full vocabulary);
- every step logs mismatch both ways, entropies and rollout accuracy to
  metrics.jsonl, and every probe.every steps the mismatch at each probed exposure
  on the same rollouts, all teacher contexts in one batched forward; on the synthetic
  task both also log the teacher's leak (harness/trainers/leak.py) from the same hidden states.
Rollout sampling, the frozen/live/EMA teacher, optimiser and checkpoints are TRL's; with
model.lora.r > 0 the student is a peft LoRA model and teacher.mode=base is that model with
its adapters disabled.
"""

from __future__ import annotations

from typing import Any

import torch
from trl.experimental.sdft import SDFTTrainer
from trl.trainer.utils import pad

from harness.compute import envsafe
from harness.compute.distributed import world
from harness.compute.reduce import global_count, weighted_means
from harness.config.schema import RunConfig
from harness.losses.chunked import chunked_divergence, token_means
from harness.losses.hidden_states import lm_head
from harness.models.tiny import lora_adapter_config
from harness.prompts.templates import Prompts
from harness.runs import faults
from harness.runs.rundir import RunDir
from harness.sources.base import ExposureSource
from harness.tasks.grading import grade
from harness.tasks.problem import Problem
from harness.trainers.hooks import RunHooks, check_finite
from harness.trainers.leak import LeakAccumulator, LeakTargets, leak_stats

envsafe.install()  # before any trainer builds its Accelerator (see harness/compute/envsafe.py)


class ExposureContextBuilder:
    """Replaces SDFT's builder: teacher prompt = template(problem, reference[:ceil(r L)]),
    built from token ids (harness/prompts/templates.py Prompts.teacher_ids), never through TRL's
    `_tokenize_prompts`, which cuts prompts from the left at max_prompt_length."""

    def __init__(self, trainer: OPSDTrainer) -> None:
        self.trainer = trainer
        self.ref_cut_share = 0.0  # share of the last batch's references cut to fit the budget

    def teacher_ids(self, problem_ids: list[str], rs: list[float]) -> list[list[int]]:
        """Teacher prompt ids of each problem at its own exposure (rs: one per problem)."""
        tr = self.trainer
        built = [tr.prompts.teacher_ids(tr.problems[pid], r) for pid, r in zip(problem_ids, rs, strict=True)]
        self.ref_cut_share = sum(cut for _, cut in built) / max(len(built), 1)
        return [ids for ids, _ in built]

    def select_generation_prompts(self, prompts: list[Any], privileged: list[Any]) -> list[Any]:
        tr = self.trainer
        rs = tr.exposure_source.exposures(privileged)
        return [tr.prompts.teacher(tr.problems[pid], r) for pid, r in zip(privileged, rs, strict=True)]

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

    def batch_ids(self, problem_ids: list[str]) -> list[list[int]]:
        """The batch's teacher prompt ids at the source's exposures; the trainer keeps them
        for its train row (mean and spread) and, for a per-problem source, its exposure rows."""
        rs = self.trainer.exposure_source.exposures(problem_ids)
        self.trainer.note_exposures(problem_ids, rs)
        return self.teacher_ids(problem_ids, rs)

    def build(self, prompts: list[Any], privileged: list[Any], completion_ids: torch.Tensor,
              completion_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.build_ids(self.batch_ids(privileged), completion_ids, completion_mask)


class OPSDTrainer(RunHooks, SDFTTrainer):
    """SDFTTrainer whose dataset rows are {prompt, privileged_context=problem id}."""

    def __init__(self, *, run_cfg: RunConfig, problems: dict[str, Problem],
                 exposure_source: ExposureSource, run_dir: RunDir, **kwargs: Any) -> None:
        self.init_run(run_cfg, problems, exposure_source, run_dir)
        # With LoRA, TRL wraps the model in peft and its base teacher is this same model
        # run under disable_adapter() (SDFTTrainer._get_teacher_context_for_self_distillation):
        # no second copy of the weights.
        kwargs.setdefault("peft_config", lora_adapter_config(run_cfg.model.lora))
        super().__init__(**kwargs)
        self.prompts = Prompts(run_cfg, self._tokenizer)
        self.teacher_context_builder = ExposureContextBuilder(self)
        self.step_leak: LeakTargets | None = None  # the step's leak tokens (synthetic task only)
        self.leak_sums = LeakAccumulator()

    def teacher_context(self):
        """The context the teacher's forward runs in (TRL's: adapters disabled for a LoRA base
        teacher); the name RLTrainer uses too (harness/sources/paper_reward.py TeacherView)."""
        return self._get_teacher_context_for_self_distillation()

    # ---- rollouts: grade them, and probe the mismatch on them ---------------------------
    def _prepare_training_batch(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Once per optimiser step, on all of the step's rows (TRL splits them into micro-batches)."""
        batch = super()._prepare_training_batch(inputs)
        problem_ids = [x["privileged_context"] for x in inputs]
        texts = self._tokenizer.batch_decode(batch["completion_ids"], skip_special_tokens=True)
        correct = [grade(self.run_cfg.task.grader, t, self.problems[pid].answer)[1]
                   for t, pid in zip(texts, problem_ids)]
        stats = {
            "rollout_accuracy": sum(correct) / len(correct),
            "completion_length": batch["raw_completion_lengths"].float().mean().item(),
        }
        if self.run_cfg.task.max_teacher_tokens:  # logged only where a budget can cut
            stats["teacher_ref_cut"] = self.teacher_context_builder.ref_cut_share
        # the step's rows are split over ranks: the logged means are over all of them
        self.step_stats = weighted_means(stats, len(correct))
        # Each micro-batch's loss is its token sum over the step's token count, so the
        # accumulated gradient is the step's token mean whatever train.micro_batch is.
        self.token_stats = TokenStats()
        # Parsed once for the whole step; each micro-batch finds its rows by batch_row, which
        # TRL splits along with the other per-row tensors.
        self.step_leak, self.leak_sums = self.train_leak_targets(batch, problem_ids), LeakAccumulator()
        comp_B_C = batch["completion_ids"]
        batch["batch_row"] = torch.arange(comp_B_C.shape[0], device=comp_B_C.device)
        # the step's loss tokens over all ranks (compute_loss normalises by them)
        self.step_loss_tokens = max(int(global_count(int(self.loss_mask(batch["completion_mask"]).sum()))), 1)
        if self.model.training:
            self.exposure_source.record(problem_ids, correct)  # per-problem sources read grades
        self.maybe_probe(batch, problem_ids)
        return batch

    def loss_mask(self, completion_mask_B_C: torch.Tensor) -> torch.Tensor:
        """Completion tokens the loss counts (SDFT's num_loss_tokens_to_skip first ones left out)."""
        skip = self.num_loss_tokens_to_skip
        if not skip:
            return completion_mask_B_C
        pos_1_C = torch.arange(completion_mask_B_C.shape[1], device=completion_mask_B_C.device)[None]
        return completion_mask_B_C * (pos_1_C >= skip).long()

    # ---- loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """One micro-batch: its token sum of D over the step's loss tokens (harness/losses/chunked.py)."""
        c_len = inputs["completion_ids"].shape[1]
        sel_B_C = self.loss_mask(inputs["completion_mask"]).bool()
        h_s_N_H = self.student_hidden(model, inputs)[sel_B_C]
        h_t_B_C_H = self.teacher_hidden(inputs["teacher_input_ids"], inputs["teacher_attention_mask"], c_len)
        h_t_N_H = h_t_B_C_H[sel_B_C]
        if self.step_leak is not None:  # the teacher's p at the leak tokens, from the same hidden states
            self.leak_sums.add(leak_stats(h_t_B_C_H, lm_head(self.teacher_model),
                                          self.step_leak.select(inputs["batch_row"]), self.spec().block))
        loss_sum, stats_N_K = chunked_divergence(h_s_N_H, h_t_N_H, inputs["completion_ids"][sel_B_C],
                                                 lm_head(model), self.spec(), lm_head(self.teacher_model))
        n_tok = stats_N_K.shape[0]
        # Training: the token sum over the step's tokens on all ranks, times the world size, as DDP
        # averages the ranks' gradients: the update is the global batch's token mean, equal to one
        # process's on the same batch (tests/test_rank_equivalence.py).
        loss = (loss_sum * world()[1] / self.step_loss_tokens if model.training
                else loss_sum / max(n_tok, 1))
        step = self.state.global_step + 1
        if model.training and faults.poison(self.run_cfg.run_name, step):
            loss = loss * float("nan")
        # a poisoned (NaN) loss must reach the finite check, as the loss itself would
        micro = self.token_stats.add(loss_sum.detach() if torch.isfinite(loss) else loss.detach(), stats_N_K)
        if model.training:
            check_finite(micro, step, ("loss", "mismatch_kl_st", "mismatch_kl_ts"))
        return loss

    # ---- one metrics row per optimiser step ----------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.model.training:
            step = self.state.global_step
            row = {"step": step, "kind": "train", **self.exposure_stats(),
                   **self.step_stats, **self.token_stats.reduced(), **self.leak_means(),
                   "lr": logs.get("learning_rate"),
                   "grad_norm": logs.get("grad_norm"), "wall_time": self.elapsed()}
            self.write_step(step, row)
        super().log(logs, start_time)

    def leak_means(self) -> dict[str, float | int | None]:
        """The train row's leak_* over the step's micro-batches; none off the synthetic task."""
        return self.leak_sums.reduced().means() if self.step_leak is not None else {}


class TokenStats:
    """Token sums of the loss and statistics over a step's micro-batches: the train row holds
    their token-weighted means (one micro-batch's values never overwrite another's)."""

    KEYS = ("mismatch_kl_st", "mismatch_kl_ts", "teacher_entropy", "student_entropy", "student_confidence")

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.tokens = 0

    def add(self, loss_sum: torch.Tensor, stats_N_K: torch.Tensor) -> dict[str, float]:
        """Add one micro-batch; returns its own means (for the finite check)."""
        n = stats_N_K.shape[0]
        micro = {"loss": loss_sum.item(),
                 **{k: v.item() for k, v in token_means(stats_N_K, self.KEYS).items()}}
        for key, value in micro.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.tokens += n
        return {k: v / max(n, 1) for k, v in micro.items()}

    def means(self) -> dict[str, float]:
        return {k: v / max(self.tokens, 1) for k, v in self.sums.items()}

    def reduced(self) -> dict[str, float | None]:
        """means() over every rank's micro-batches (token-weighted; a collective)."""
        return weighted_means(self.means(), self.tokens)
