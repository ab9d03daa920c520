"""Average@k evaluation batched (eval.batch_size) against one prompt at a time.

python -m harness.bench --only eval [--rounds 3] [overrides]

Both ways run the harness's own evaluation (harness.evaluation.suites.eval_suite: sampling,
grading, Average@k) on the same problems, the first suite's (all of it; --quick: 4),
with the run's base model (completion lengths depend on the weights):
- `batched`: eval.batch_size sequences per generate call (the default 512);
- `one prompt at a time`: eval.batch_size = eval.k, i.e. one generate call per problem
  holding its k samples. (One sequence per call would be k times slower still; this is
  the fairer baseline.)
Target (harness/DESIGN.md): one-at-a-time / batched >= 5.
"""

from __future__ import annotations

from dataclasses import replace

from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import interleave, median

DEFAULT_ROUNDS = 3
QUICK_PROBLEMS = 4


def run(b: BenchArgs) -> list[Result]:
    from harness.bench.trainers import base_path
    from harness.evaluation.suites import eval_suite
    from harness.models.tiny import load
    from harness.tasks.datasets import TaskData

    cfg = b.cfg
    rounds = b.rounds or DEFAULT_ROUNDS
    model, tok = load(base_path(cfg), cfg.model)
    data = TaskData(cfg.task)
    suite = next(iter(data.suites))
    problems = data.suite(suite)[:QUICK_PROBLEMS] if b.quick else data.suite(suite)
    one_cfg = replace(cfg, eval=replace(cfg.eval, batch_size=cfg.eval.k))
    averages: dict[str, float] = {}

    def way(c, name: str):
        def call(_: int) -> None:
            averages[name] = eval_suite(model, tok, c, suite, problems)[0]["average"]
        return call

    times = interleave({"batched": way(cfg, "batched"),
                        "one prompt at a time": way(one_cfg, "one prompt at a time")}, rounds)
    batched_s, one_s = median(times["batched"]), median(times["one prompt at a time"])
    details = {"suite": suite, "problems": len(problems), "k": cfg.eval.k,
               "batch_size": cfg.eval.batch_size, "max_new_tokens": cfg.eval.max_new_tokens,
               "average_at_k": averages,
               "generate_calls": {"batched": -(-len(problems) * cfg.eval.k // cfg.eval.batch_size),
                                  "one prompt at a time": len(problems)}}
    return [Result("eval_batched", f"Average@{cfg.eval.k} of {len(problems)} problems ({suite}): "
                   f"eval.batch_size={cfg.eval.batch_size} vs one problem's k samples per generate call",
                   one_s / batched_s, "one prompt at a time / batched", Target(">=", 5.0), times,
                   details=details,
                   limits=f"{one_s:.1f} s vs {batched_s:.1f} s; a generate step's fixed cost per call "
                          "is what batching saves, the per-sequence work stays")]
