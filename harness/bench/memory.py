"""Peak memory of an OPSD step (frozen and live teacher, and with LoRA) against a TRL GRPO step.

python -m harness.bench --only memory [--rounds 3] [overrides]
python -m harness.bench.memory opsd-base [overrides]     # one configuration (the worker)

Each configuration runs in a fresh subprocess (a process's allocator keeps what it once
held, so configurations measured in one process would mask each other), in rounds that
rotate the order. The worker imports everything first, then marks a baseline, builds the
trainer from the run's base model (weights, a frozen teacher copy where the mode needs
one) and runs STEPS optimiser steps (the first creates the optimiser state); the figure
is the peak above the baseline:
- CPU: peak RSS. /proc/self/clear_refs "5" resets the kernel's high-water mark (VmHWM)
  to the current RSS at the baseline; the figure is VmHWM - VmRSS(baseline). tracemalloc
  sees Python objects only (not torch's tensors); getrusage's ru_maxrss cannot be reset
  and would include the import peak.
- CUDA: torch.cuda.max_memory_allocated() after reset_peak_memory_stats() at the baseline.
GRPO (harness/bench/trainers.py) has the same rollouts per step and no reference model
(beta 0), so a frozen OPSD teacher's weights are the difference one expects. Target
(harness/DESIGN.md): OPSD / GRPO <= 1.2 in each configuration.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import median

DEFAULT_ROUNDS = 3
STEPS = 2
LORA_R = 8
# configuration -> (trainer, overrides it adds)
CONFIGS = {"opsd-base": ("opsd", ["teacher.mode=base"]), "opsd-live": ("opsd", ["teacher.mode=live"]),
           "grpo": ("grpo", []), "opsd-lora": ("opsd", ["teacher.mode=base", f"model.lora.r={LORA_R}"]),
           "grpo-lora": ("grpo", [f"model.lora.r={LORA_R}"])}
# result name -> (OPSD configuration, GRPO configuration it is compared with)
RATIOS = {"memory_opsd_base": ("opsd-base", "grpo"), "memory_opsd_live": ("opsd-live", "grpo"),
          "memory_opsd_lora": ("opsd-lora", "grpo-lora")}
# What OPSD holds beyond GRPO, per comparison (the README's limits column).
LOGITS = "the teacher's logits (rollouts x length x vocabulary) beside the student's"
WHY = {"memory_opsd_base": f"{LOGITS}, and a frozen copy of the weights",
       "memory_opsd_live": f"{LOGITS}; no weight copy (the teacher is the student)",
       "memory_opsd_lora": f"{LOGITS}; no weight copy (the teacher is the model with its adapters off)"}
MARK = "BENCH_MEMORY "


def proc_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


class Peak:
    """Peak memory above a baseline taken at construction (see the module docstring)."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
        else:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            self.base = proc_kb("VmRSS") * 1024
            self.method = "peak RSS (VmHWM after clear_refs 5) above VmRSS at the baseline"

    def growth_mb(self) -> float:
        import torch

        peak = torch.cuda.max_memory_allocated() if self.cuda else proc_kb("VmHWM") * 1024
        return (peak - self.base) / 2**20


def worker(name: str, overrides: list[str]) -> dict:
    """One configuration in this process: build, STEPS steps, the peak above the baseline."""
    import tempfile

    import datasets  # noqa: F401 - imported before the baseline: libraries are not the figure
    import peft  # noqa: F401
    import torch
    import trl  # noqa: F401

    import harness.trainers.opsd  # noqa: F401
    from harness.bench import trainers
    from harness.config.settings import compose

    kind, extra = CONFIGS[name]
    cfg = compose(overrides + extra)
    torch.set_num_threads(cfg.train.threads)
    path = trainers.base_path(cfg)
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        peak = Peak()
        trainer = getattr(trainers, kind)(trainers.Setup(cfg, path, Path(tmp)))
        batch = trainers.first_batch(trainer)
        for i in range(STEPS):
            torch.manual_seed(i)
            trainers.optimiser_step(trainer, batch)
        return {"config": name, "peak_mb": peak.growth_mb(), "method": peak.method,
                "baseline_mb": peak.base / 2**20, "rollouts": len(batch)}


def measure(name: str, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "harness.bench.memory", name, *overrides]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    lines = [x for x in r.stdout.splitlines() if x.startswith(MARK)]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"memory worker {name} failed (exit {r.returncode}): {r.stderr[-1500:]}")
    return json.loads(lines[-1][len(MARK):])


def run(b: BenchArgs) -> list[Result]:
    from harness.bench import trainers

    rounds = b.rounds or DEFAULT_ROUNDS
    trainers.base_path(b.cfg)  # build the base once here (smoke), not in every worker
    names = list(CONFIGS)
    got: dict[str, list[dict]] = {n: [] for n in names}
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            got[name].append(measure(name, b.overrides))
    mb = {n: [g["peak_mb"] for g in got[n]] for n in names}
    details = {"configs": {n: {"trainer": CONFIGS[n][0], "overrides": CONFIGS[n][1],
                               "median_peak_mb": median(mb[n]),
                               "baseline_mb": median([g["baseline_mb"] for g in got[n]])} for n in names},
               "method": got[names[0]][0]["method"], "steps": STEPS,
               "rollouts": got[names[0]][0]["rollouts"], "lora_r": LORA_R}
    out = []
    for result, (opsd, grpo) in RATIOS.items():
        ratio = median(mb[opsd]) / median(mb[grpo])
        out.append(Result(result, f"peak memory of {STEPS} steps: OPSD ({opsd}) vs TRL GRPO ({grpo}), "
                          "fresh subprocess each", ratio, f"{opsd} / {grpo}", Target("<=", 1.2),
                          {opsd: mb[opsd], grpo: mb[grpo]}, unit="MB", details=details,
                          limits=f"{median(mb[opsd]):.0f} MB vs {median(mb[grpo]):.0f} MB above the "
                                 f"baseline; {WHY[result]}"))
    return out


if __name__ == "__main__":
    from harness.config.settings import fail

    if len(sys.argv) < 2 or sys.argv[1] not in CONFIGS:
        fail(ValueError(f"configuration={sys.argv[1:2]} is invalid: one of {', '.join(CONFIGS)}"))
    print(MARK + json.dumps(worker(sys.argv[1], sys.argv[2:])), flush=True)
