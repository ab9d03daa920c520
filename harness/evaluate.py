"""Average@k of a saved model from the command line (the evaluation itself: harness.evaluation.suites.py).

python -m harness.evaluate --model PATH [--suite medium_k4] [--k 12] [--out DIR] [overrides...]
python -m harness.evaluate --run RUN_FOLDER [--checkpoints last|all|checkpoint-10,...] [--best-per-suite]

Writes eval.json (schema in harness/runs/schema.py) and eval_samples.jsonl (every
sample) into --out, atomically. With no --model it evaluates the embedded base model.
Resumable: a requeue or a kill redraws only the sampling batch in flight
(<out>/eval_progress.jsonl, harness/evaluation/progress.py). --run evaluates a run's saved
checkpoints (harness/evaluation/checkpoints.py) with the run's own config.yaml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.compute.vllm_backend import check_eval_budget, eval_backend
from harness.evaluation.suites import evaluate
from harness.tasks.datasets import TaskData


def main(argv: list[str]) -> None:
    from harness.config.settings import compose, fail
    from harness.models.base import ensure_base
    from harness.models.tiny import load
    from harness.runs.rundir import write_eval

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="saved model folder (default: the embedded base model)")
    ap.add_argument("--suite", action="append", help="suite name (repeatable; default all)")
    ap.add_argument("--k", type=int, help="samples per problem")
    ap.add_argument("--out", default="results/eval", help="folder for eval.json")
    ap.add_argument("--run", help="a run folder: evaluate its saved checkpoints (its config.yaml)")
    ap.add_argument("--checkpoints", default="last", help="with --run: last | all | checkpoint-N,...")
    ap.add_argument("--best-per-suite", action="store_true",
                    help="with --run: also OPSD's report, each suite's best checkpoint (chosen on the "
                         "test suites themselves: an optimistic number, labelled so)")
    ap.add_argument("overrides", nargs="*", help="hydra overrides, e.g. profile=smoke")
    a = ap.parse_args(argv)
    if a.run:
        from harness.evaluation.checkpoints import evaluate_run

        try:
            evaluate_run(Path(a.run), a.checkpoints, a.overrides, a.best_per_suite)
        except (ValueError, FileNotFoundError) as err:
            fail(err)
        return
    try:
        extra = [f"eval.k={a.k}"] if a.k is not None else []
        cfg = compose(a.overrides + extra)
        data = TaskData(cfg.task)
        for s in a.suite or []:
            data.suite(s)
        eval_backend(cfg.eval.backend)  # eval.backend=vllm without CUDA: one line, before loading
        check_eval_budget(cfg)  # a budget HF generate cannot serve: one line, before loading
        model, tok = load(a.model or ensure_base(cfg), cfg.model)
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    progress = Path(a.out) / "eval_progress.jsonl"
    summary, samples = evaluate(model, tok, cfg, a.suite, progress_path=progress)
    write_eval(Path(a.out), summary, samples)
    progress.unlink(missing_ok=True)
    for name, r in summary["suites"].items():
        print(f"{name}: Average@{r['k']} = {r['average']:.3f} ± {r['se']:.3f}")
    print(f"results: {Path(a.out) / 'eval.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
