"""What OPSDTrainer and RLTrainer share around TRL: the run's state and its per-step rows.

python -m harness.run method=opsd profile=smoke     # (or method=grpo) both trainers mix this in

A mixin placed before the TRL trainer in the bases (`class OPSDTrainer(RunHooks, SDFTTrainer)`):
`init_run` stores what a run needs before TRL's __init__ (which may already call back into
the subclass), `write_step` writes one optimiser step's rows - rank 0 alone, in the order
probe rows, the train row, a per-problem source's exposure rows, the controller rows - then
runs the fault-injection hooks the failure tests use (harness/runs/faults.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import torch

from harness.config.schema import RunConfig
from harness.losses.chunked import DivergenceSpec, spec_of
from harness.losses.hidden_states import final_hidden, lm_head
from harness.runs import faults
from harness.runs.rundir import RunDir
from harness.sources.base import ExposureSource, batch_exposure
from harness.tasks.problem import Problem
from harness.trainers.leak import LeakTargets, TaskVocab, leak_targets
from harness.trainers.probe import probe_mismatch


class RunHooks:
    """Run state and row writing shared by the OPSD and RL trainers."""

    run_cfg: RunConfig
    problems: dict[str, Problem]
    exposure_source: ExposureSource
    run_dir: RunDir

    def init_run(self, run_cfg: RunConfig, problems: dict[str, Problem],
                 exposure_source: ExposureSource, run_dir: RunDir) -> None:
        self.run_cfg = run_cfg
        self.problems = problems
        self.exposure_source = exposure_source
        exposure_source.attach(problems)
        self.run_dir = run_dir
        self.step_stats: dict[str, float] = {}
        self.pending_rows: list[dict[str, Any]] = []  # probe rows waiting for their step's row
        self.batch_rs: list[float] = []  # the last batch's exposures, one per problem
        self.batch_problem_ids: list[str] = []
        self.task_vocab: TaskVocab | None = None  # built at the first leak_targets call
        self.t_start = time.time()

    def elapsed(self) -> float:
        return round(time.time() - self.t_start, 3)

    def note_exposures(self, problem_ids: list[str], rs: list[float]) -> None:
        """The exposures the batch's teacher contexts were built at (one per problem)."""
        self.batch_problem_ids, self.batch_rs = list(problem_ids), list(rs)

    def exposure_stats(self) -> dict[str, float]:
        """The train row's `exposure` (the batch mean) and `exposure_spread` (its std)."""
        mean, spread = batch_exposure(self.batch_rs)
        return {"exposure": mean, "exposure_spread": spread}

    def exposure_rows(self, step: int) -> list[dict[str, Any]]:
        """A per-problem source's rows: one per problem of the step's batch."""
        if not self.exposure_source.per_problem:
            return []
        return [{"step": step, "kind": "exposure", "problem_id": pid, "exposure": r,
                 "ref_steps": len(self.problems[pid].steps)}
                for pid, r in zip(self.batch_problem_ids, self.batch_rs, strict=True)]

    def write_step(self, step: int, row: dict[str, Any]) -> None:
        """Pending rows, `row` (kind train), the source's controller rows; then fault hooks."""
        # Several processes (harness/compute/distributed.py): rank 0 alone writes the rows, but every
        # rank steps its exposure source (the shared source gathers from all of them).
        # (is_world_process_zero is transformers.Trainer's, later in the bases.)
        write = self.run_dir.append_metrics if self.is_world_process_zero() else (lambda r: None)
        self.exposure_source.observe_probe(step, [r for r in self.pending_rows if r["kind"] == "probe"])
        for pending in self.pending_rows:
            write(pending)
        self.pending_rows = []
        write(row)
        for r in self.exposure_rows(step):
            write(r)
        for r in self.exposure_source.step_end(step, row):
            write({"step": step, "kind": "controller", **r})
        faults.maybe_kill(self.run_cfg.run_name, step)
        faults.maybe_slow(self.run_cfg.run_name)

    # ---- what both trainers' divergences read: final hidden states, the loss spec ----------
    # (self.model, self.teacher_model, self.teacher_context and self.temperature are the TRL
    # trainer's / the subclass's; both trainers have all four)
    def spec(self, gate_beta: float | None = None) -> DivergenceSpec:
        """loss.* at the sampling temperature (the policy both trainers train is sampled at it)."""
        return spec_of(self.run_cfg.loss, lm_head(self.model).weight.shape[0], self.temperature, gate_beta)

    def student_hidden(self, model, batch: dict[str, Any], rows: slice = slice(None)) -> torch.Tensor:
        """h_b_C_H of the student on its own prompt + the rollouts of `rows`."""
        ids = torch.cat([batch["prompt_ids"][rows], batch["completion_ids"][rows]], 1)
        mask = torch.cat([batch["prompt_mask"][rows], batch["completion_mask"][rows]], 1)
        return final_hidden(model, ids, mask, batch["completion_ids"].shape[1])

    def teacher_hidden(self, ids_B_L: torch.Tensor, mask_B_L: torch.Tensor, c_len: int) -> torch.Tensor:
        """h_B_C_H of the teacher (no gradient, in its weights' context) on teacher ids + rollouts."""
        with torch.no_grad(), self.teacher_context():
            return final_hidden(self.teacher_model, ids_B_L, mask_B_L, c_len)

    def leak_targets(self, batch: dict[str, Any], problem_ids: list[str]) -> LeakTargets | None:
        """The leak tokens of the batch's rollouts against their training references (self.problems:
        leaped where the gap leaps them; harness/trainers/leak.py); None off the synthetic task.
        No shown flags yet: those depend on the exposure (with_shown, shown_reference_tokens)."""
        task = self.run_cfg.task
        if task.kind != "synthetic":
            return None
        if self.task_vocab is None:  # the tokenizer's ids of the task's words, once per run
            self.task_vocab = TaskVocab.of(self._tokenizer)
        return leak_targets(batch["completion_ids"], batch["completion_mask"],
                            [self.problems[pid].solution for pid in problem_ids], self.task_vocab,
                            task.modulus)

    def shown_reference_tokens(self, problem_ids: list[str], rs: list[float]) -> list[int]:
        """Reference tokens the teacher is shown of each problem at its r: the cut's length
        (harness/prompts/templates.py; a whole reference at any r > 0 for answer_only)."""
        out = []
        for pid, r in zip(problem_ids, rs, strict=True):
            problem = self.problems[pid]
            ids, _ = self.prompts.cutter.prefix_ids(problem.solution, problem.steps,
                                                    self.prompts.shown_exposure(problem, r))
            out.append(len(ids))
        return out

    def train_leak_targets(self, batch: dict[str, Any], problem_ids: list[str]) -> LeakTargets | None:
        """leak_targets marked shown or not at the exposures the batch's teachers were built at."""
        targets = self.leak_targets(batch, problem_ids)
        if targets is None:
            return None
        r_of = dict(zip(self.batch_problem_ids, self.batch_rs, strict=True))
        return targets.with_shown(self.shown_reference_tokens(problem_ids, [r_of[p] for p in problem_ids]))

    # ---- the mismatch probe (OPSD always; RL when its source reads it) ------------------------
    def maybe_probe(self, batch: dict[str, Any], problem_ids: list[str]) -> None:
        """Probe rows of this step's rollouts when probe.every says so (step 1 and every N)."""
        probe, step = self.run_cfg.probe, self.state.global_step + 1
        if self.model.training and probe.every and (step == 1 or step % probe.every == 0):
            self.pending_rows += self.probe_rows(batch, problem_ids, step)

    @torch.no_grad()
    def probe_rows(self, batch: dict[str, Any], problem_ids: list[str], step: int) -> list[dict]:
        """Mismatch at every probed exposure on these rollouts (harness/trainers/probe.py): train.micro_batch
        rows at a time, probe.max_rows teacher rows per forward; the synthetic task adds the leak."""
        comp_B_C, cmask_B_C = batch["completion_ids"], batch["completion_mask"]
        builder = self.teacher_context_builder

        def teacher(chunk: list[float], rows: slice) -> torch.Tensor:
            ids = [x for r in chunk
                   for x in builder.teacher_ids(problem_ids[rows], [r] * len(problem_ids[rows]))]
            t_in = builder.build_ids(ids, comp_B_C[rows].repeat(len(chunk), 1),
                                     cmask_B_C[rows].repeat(len(chunk), 1))
            return self.teacher_hidden(t_in["teacher_input_ids"], t_in["teacher_attention_mask"],
                                       comp_B_C.shape[1])

        spec = replace(self.spec(), temperature=1.0, loss=False)  # the mismatch: T 1, no loss
        exposures = list(self.run_cfg.probe.exposures)
        targets = self.leak_targets(batch, problem_ids)
        # each probed exposure shows its own cut: the same leak tokens, shown or not at that r
        leak = None if targets is None else {
            r: targets.with_shown(self.shown_reference_tokens(problem_ids, [r] * len(problem_ids)))
            for r in exposures}
        rows = probe_mismatch(exposures, self.run_cfg.probe.max_rows,
                              self.run_cfg.micro_batch, lambda r: self.student_hidden(self.model, batch, r),
                              teacher, comp_B_C, cmask_B_C, lm_head(self.model), lm_head(self.teacher_model),
                              spec, leak=leak)
        for row in rows:
            check_finite(row, step, ("mismatch_kl_st", "mismatch_kl_ts"))
        return [{"step": step, "kind": "probe", **row} for row in rows]


class NonFiniteError(FloatingPointError):
    """A loss or mismatch went NaN/inf: the run stops (status failed) instead of training on."""


def check_finite(stats: dict[str, float], step: int, keys: tuple[str, ...]) -> None:
    for key in keys:
        if not math.isfinite(stats[key]):
            raise NonFiniteError(f"non-finite {key} at step {step}: {stats[key]}")
