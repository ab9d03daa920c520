"""Average@k evaluation: k samples per problem, SE over problems, unbiased pass@k.

python -m harness.evaluate --model PATH [--suite medium_k4] [--k 12] [--out DIR] [overrides...]

Writes eval.json (schema in harness/schema.py) and eval_samples.jsonl (every
sample) into --out, atomically. With no --model it evaluates the embedded base model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.config import RunConfig
from harness.exposure import ReferenceCutter
from harness.metrics_math import average_at_k, mean_pass_at_k
from harness.sampling import sample_completions
from harness.tasks.datasets import TaskData
from harness.tasks.grading import grade
from harness.tasks.problem import Problem


def prompts_for(problems: list[Problem], cfg: RunConfig, tokenizer, exposure: float | None) -> list[str]:
    """Student prompts, or teacher prompts at `exposure` (None: no reference)."""
    from harness.base import templates_of

    tpl = templates_of(cfg)
    if exposure is None:
        return [tpl.student_prompt(p.problem) for p in problems]
    cutter = ReferenceCutter(tokenizer, cfg.exposure_unit)
    return [tpl.teacher_prompt(p.problem, cutter.prefix(p.solution, p.steps, exposure))
            for p in problems]


def eval_suite(model, tokenizer, cfg: RunConfig, name: str, problems: list[Problem],
               exposure: float | None = None) -> tuple[dict, list[dict]]:
    """(summary, samples) for one suite; summary has average, se, pass@{1,4,k}."""
    e = cfg.eval
    completions_P_K = sample_completions(
        model, tokenizer, prompts_for(problems, cfg, tokenizer, exposure), e.k, e.temperature,
        e.top_p, e.max_new_tokens, e.batch_size, e.seed, desc=f"eval {name}")
    samples, correct_P_K = [], []
    for prob, completions in zip(problems, completions_P_K):
        row = []
        for i, text in enumerate(completions):
            pred, ok = grade(cfg.task.grader, text, prob.answer)
            row.append(ok)
            samples.append({"suite": name, "problem_id": prob.id, "sample": i, "answer": pred,
                            "gold": prob.answer, "correct": ok, "completion": text})
        correct_P_K.append(row)
    avg, se = average_at_k(correct_P_K)
    summary = {"average": avg, "se": se, "k": e.k, "num_problems": len(problems)}
    for k in sorted({1, 4, e.k}):
        if k <= e.k:
            summary[f"pass@{k}"] = mean_pass_at_k(correct_P_K, k)
    return summary, samples


def evaluate(model, tokenizer, cfg: RunConfig, suites: list[str] | None = None,
             exposure: float | None = None) -> tuple[dict, list[dict]]:
    data = TaskData(cfg.task)
    names = suites or list(data.suites)
    results, samples, t0 = {}, [], time.time()
    for name in names:
        results[name], s = eval_suite(model, tokenizer, cfg, name, data.suite(name), exposure)
        samples.extend(s)
    summary = {"suites": results, "k": cfg.eval.k, "temperature": cfg.eval.temperature,
               "exposure": exposure, "seconds": round(time.time() - t0, 2)}
    return summary, samples


def main(argv: list[str]) -> None:
    from harness.base import ensure_base
    from harness.models import load
    from harness.rundir import write_eval
    from harness.settings import compose, fail

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="saved model folder (default: the embedded base model)")
    ap.add_argument("--suite", action="append", help="suite name (repeatable; default all)")
    ap.add_argument("--k", type=int, help="samples per problem")
    ap.add_argument("--out", default="results/eval", help="folder for eval.json")
    ap.add_argument("overrides", nargs="*", help="hydra overrides, e.g. profile=smoke")
    a = ap.parse_args(argv)
    try:
        extra = [f"eval.k={a.k}"] if a.k is not None else []
        cfg = compose(a.overrides + extra)
        data = TaskData(cfg.task)
        for s in a.suite or []:
            data.suite(s)
        model, tok = load(a.model or ensure_base(cfg))
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    summary, samples = evaluate(model, tok, cfg, a.suite)
    write_eval(Path(a.out), summary, samples)
    for name, r in summary["suites"].items():
        print(f"{name}: Average@{r['k']} = {r['average']:.3f} ± {r['se']:.3f}")
    print(f"results: {Path(a.out) / 'eval.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
