"""python -m harness.bench.gpu_check [--out DIR] [--work DIR] [--tiny]   # measures with these

What make gpu-check measures and writes: each optimiser step's time and peak (a TrainerCallback
on run()), rollout tokens/s, the memory plan's prediction (harness/memory/plan.py, when present),
the library versions; the Report as a Markdown table and results/gpu/gpu_check.json (and .md).
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

GB = 1e9


def peak_bytes(cuda: bool) -> int:
    """CUDA: torch.cuda.max_memory_allocated since the last reset; CPU: the process's peak RSS."""
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def step_timer(cuda: bool):
    """A TrainerCallback: each optimiser step's end time and the peak so far (rollouts, the
    micro-batches, the probe and the update all fall between two step ends)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.peaks: list[int] = []
            self.start = self.train_end = 0.0
            self.train_peak = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                import torch

                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())
            self.peaks.append(peak_bytes(cuda))

        def on_train_end(self, args, state, control, **kwargs):
            self.train_end = time.perf_counter()
            self.train_peak = peak_bytes(cuda)

    return StepTimer()


@dataclass
class Report:
    device: str
    shape: dict
    overrides: list[str]
    micro_batch: int
    prompts_per_step: int
    max_completion_length: int
    steps: list[dict] = field(default_factory=list)
    build_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    total_s: float = 0.0
    train_peak_gb: float = 0.0
    run_peak_gb: float = 0.0
    peak_kind: str = ""
    plan_total_gb: float | None = None
    plan_note: str = ""
    probe_rows: int = 0
    eval: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    reference_tokens: int = 0  # the longest training reference (the teacher context's length)
    plan_parts_gb: dict = field(default_factory=dict)  # the plan's figure per part, beside the peaks
    vllm: str = "not run"  # the vLLM stage: its figures, or why it was skipped
    kernel: dict = field(default_factory=dict)  # loss.kernel harness vs trl (bench/kernel.py on_device)


def plan_total(cfg) -> tuple[float | None, str]:
    """The memory plan's predicted peak (GB) of this point; harness/memory/plan.py may be absent."""
    try:
        from harness.memory.plan import plan
    except ImportError:
        return None, "plan: not available"
    p = plan(cfg)
    note = f"plan: {p.total / GB:.2f} GB ({p.device}, {p.loss_path} loss, largest phase {p.peak_phase})"
    return p.total / GB, note


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]


def step_rows(rows: list[dict], timer, prompts: int) -> list[dict]:
    """One row per step: seconds, rollout tokens (prompts x mean completion length) and tokens/s."""
    train = {r["step"]: r for r in rows if r.get("kind") == "train"}
    out, last = [], timer.start
    for i, (end, peak) in enumerate(zip(timer.ends, timer.peaks), start=1):
        seconds = end - last
        last = end
        tokens = train.get(i, {}).get("completion_length", 0.0) * prompts
        out.append({"step": i, "seconds": round(seconds, 3), "rollout_tokens": round(tokens),
                    "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
                    "probe": any(r.get("kind") == "probe" and r["step"] == i for r in rows),
                    "peak_gb": round(peak / GB, 3)})
    return out


def versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def table(r: Report) -> str:
    lines = [f"gpu-check on {r.device}: Qwen3 shape {r.shape}",
             f"{r.prompts_per_step} prompts/step, micro-batch {r.micro_batch}, "
             f"{r.max_completion_length} new tokens; build {r.build_s:.1f} s",
             "| step | seconds | rollout tokens | tokens/s | probe | peak GB |",
             "|---:|---:|---:|---:|:---:|---:|"]
    for s in r.steps:
        lines.append(f"| {s['step']} | {s['seconds']:.2f} | {s['rollout_tokens']} | {s['tokens_per_s']} | "
                     f"{'yes' if s['probe'] else ''} | {s['peak_gb']:.2f} |")
    if not r.plan_total_gb:
        ratio = ""
    elif r.device.startswith("cuda"):
        ratio = f"measured / predicted = {r.run_peak_gb / r.plan_total_gb:.2f}"
    else:  # RSS counts torch and the libraries too: the plan's CPU check is memory_plan --validate
        ratio = "no ratio on a CPU (its peak RSS includes the libraries; see memory_plan --validate)"
    lines += [f"train {r.train_s:.1f} s, eval {r.eval_s:.1f} s ({r.eval}), total {r.total_s:.1f} s",
              f"peak ({r.peak_kind}): training {r.train_peak_gb:.2f} GB, whole run {r.run_peak_gb:.2f} GB",
              f"{r.plan_note}" + (f"; {ratio}" if ratio else ""),
              f"loss kernel, loss + backward (harness vs trl): {r.kernel}",
              f"versions: {r.versions}"]
    return "\n".join(lines)


def write(r: Report, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(asdict(r), indent=2) + "\n")
    (out / "gpu_check.md").write_text(table(r) + "\n")
    return out / "gpu_check.json"
