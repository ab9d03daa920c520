"""Peak memory and time of an OPSD step (probe on) over a TRL GRPO step at Qwen3's real vocabulary.

python -m harness.bench --only memory_real_vocab [--rounds 2] [--quick]
python -m harness.bench.memory_real_vocab opsd|grpo <model dir> [overrides]   # one configuration (the worker)

The model is a random Qwen3 with vocab_size 151,936 (hidden 64, 2 layers: harness/models/qwen3_shaped.py),
so every vocabulary-sized tensor is as wide as on the paper's models; the math fixtures give
the problems (harness/memory/validate.py math_overrides). Each configuration runs in a fresh
subprocess per round, as harness/bench/memory.py does (its Peak: VmHWM above the baseline on
the CPU, torch.cuda.max_memory_allocated on CUDA), for STEPS optimiser steps of ROWS rollouts
x COMPLETION tokens (--quick: QUICK_COMPLETION); OPSD probes every step (probe.every=1, so
step 1 probes all five exposures). GRPO (harness/bench/trainers.py) samples the same rollouts
a step. Target (harness/DESIGN.md): OPSD / GRPO peak <= 1.3; the time ratio is reported beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import median

DEFAULT_ROUNDS = 2
STEPS = 2
ROWS = 2
COMPLETION = 512
QUICK_COMPLETION = 32
KINDS = ("opsd", "grpo")
MARK = "BENCH_MEMORY_REAL_VOCAB "


def overrides(model_dir: Path, completion: int) -> list[str]:
    from harness.memory.validate import math_overrides

    return [*math_overrides(model_dir), f"train.prompts_per_step={ROWS}",
            f"train.max_completion_length={completion}", f"train.steps={STEPS}", "probe.every=1"]


def worker(kind: str, model_dir: str, extra: list[str]) -> dict:
    import datasets  # noqa: F401 - imported before the baseline: libraries are not the figure
    import peft  # noqa: F401
    import torch
    import trl  # noqa: F401

    import harness.trainers.opsd  # noqa: F401
    from harness.bench import trainers
    from harness.bench.memory import Peak
    from harness.config.settings import compose

    cfg = compose(extra)
    torch.set_num_threads(cfg.train.threads)
    with tempfile.TemporaryDirectory(prefix="bench_real_vocab_") as tmp:
        peak = Peak()
        trainer = getattr(trainers, kind)(trainers.Setup(cfg, Path(model_dir), Path(tmp)))
        batch = trainers.first_batch(trainer)
        t0 = time.perf_counter()
        for i in range(STEPS):
            torch.manual_seed(i)
            trainers.optimiser_step(trainer, batch)
        seconds = (time.perf_counter() - t0) / STEPS
        return {"kind": kind, "peak_mb": peak.growth_mb(), "step_s": seconds, "method": peak.method,
                "baseline_mb": peak.base / 2**20, "rollouts": len(batch)}


def measure(kind: str, model_dir: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "harness.bench.memory_real_vocab", kind, str(model_dir), *extra]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    lines = [x for x in r.stdout.splitlines() if x.startswith(MARK)]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"memory_real_vocab worker {kind} failed (exit {r.returncode}): "
                           f"{r.stderr[-1500:]}")
    return json.loads(lines[-1][len(MARK):])


def run(b: BenchArgs) -> list[Result]:
    from harness.memory.validate import real_vocab_model

    rounds = b.rounds or DEFAULT_ROUNDS
    completion = QUICK_COMPLETION if b.quick else COMPLETION
    with tempfile.TemporaryDirectory(prefix="real_vocab_model_") as tmp:
        model_dir = real_vocab_model(Path(tmp) / "q3")
        extra = [*b.overrides, *overrides(model_dir, completion)]
        got: dict[str, list[dict]] = {k: [] for k in KINDS}
        for i in range(rounds):  # rotate the order: neither kind always runs first
            for kind in KINDS[i % 2:] + KINDS[:i % 2]:
                got[kind].append(measure(kind, model_dir, extra))
    mb = {k: [g["peak_mb"] for g in got[k]] for k in KINDS}
    secs = {k: [g["step_s"] for g in got[k]] for k in KINDS}
    time_ratio = median(secs["opsd"]) / median(secs["grpo"])
    ratio = median(mb["opsd"]) / median(mb["grpo"])
    details = {"rows": ROWS, "completion_tokens": completion, "steps": STEPS, "vocab_size": 151936,
               "model": "random Qwen3, hidden 64, 2 layers", "probe": "every step (5 exposures)",
               "method": got["opsd"][0]["method"], "step_seconds": secs, "time_ratio": time_ratio,
               "baseline_mb": {k: median([g["baseline_mb"] for g in got[k]]) for k in KINDS}}
    what = (f"peak memory of {STEPS} steps at vocab 151,936 ({ROWS} x {completion} tokens): OPSD with "
            "the probe vs TRL GRPO, fresh subprocess each")
    return [Result("memory_real_vocab", what, ratio, "opsd / grpo",
                   Target("<=", 1.3), mb, unit="MB", details=details,
                   limits=f"{median(mb['opsd']):.0f} MB vs {median(mb['grpo']):.0f} MB above the baseline; "
                          f"step time OPSD / GRPO {time_ratio:.2f}x")]


if __name__ == "__main__":
    from harness.config.settings import fail

    if len(sys.argv) < 3 or sys.argv[1] not in KINDS:
        fail(ValueError(f"configuration={sys.argv[1:2]} is invalid: one of {', '.join(KINDS)}, "
                        "then a model folder"))
    print(MARK + json.dumps(worker(sys.argv[1], sys.argv[2], sys.argv[3:])), flush=True)
