"""Evaluate the student every `eval.every` optimiser steps during training (0: off).

python -m harness.run profile=smoke eval.every=2      # adds `kind: eval` rows to metrics.jsonl

Each row carries the Average@k of every suite (`eval_<suite>`) at that step. Sampling
runs under a forked torch RNG, so turning this on does not change the training's draws.
"""

from __future__ import annotations

from transformers import TrainerCallback

from harness.config.schema import RunConfig
from harness.runs.rundir import RunDir


class PeriodicEval(TrainerCallback):
    """TRL/transformers callback: on every eval.every-th step end, one `eval` metrics row."""

    def __init__(self, cfg: RunConfig, tokenizer, run_dir: RunDir) -> None:
        self.cfg, self.tokenizer, self.run_dir = cfg, tokenizer, run_dir

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.cfg.eval.every
        step = state.global_step
        if not every or step % every or step >= state.max_steps:  # the final eval is the run's own
            return control
        if not state.is_world_process_zero:  # several processes: rank 0 evaluates and writes
            return control
        from harness.evaluation.suites import evaluate
        from harness.sources.learning_progress import rng_untouched

        with rng_untouched(model):  # CPU and CUDA generators alike
            summary, _ = evaluate(model, self.tokenizer, self.cfg)
        row = {"step": step, "kind": "eval", "seconds": summary["seconds"]}
        row.update({f"eval_{name}": res["average"] for name, res in summary["suites"].items()})
        self.run_dir.append_metrics(row)
        return control
