"""python -m harness.bench.gpu_check [--out DIR] [--work DIR] [--tiny]   # measures with these

What make gpu-check measures and writes: each optimiser step's time and peak (a TrainerCallback
on run()), rollout tokens/s, the peak of each phase of the memory plan (PhaseMeter: generation,
train step, probe, progress, export, eval) beside the plan's figure for it (harness/memory/plan.py,
when present), the library versions; the Report as a Markdown table and results/gpu/gpu_check.json
(and .md).
"""

from __future__ import annotations

import importlib
import json
import re
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import wraps
from importlib import metadata
from pathlib import Path

GB = 1e9

# Where each phase of the memory plan runs: (module, attribute, phase). A class attribute is
# patched on the class the run instantiates (an inherited method included); nested phases (the
# rollouts and the probe run inside the first training_step of a step) are charged to the inner one.
PHASES = (
    ("harness.trainers.opsd:OPSDTrainer", "sample_rollouts", "generation"),  # TRL SDFTTrainer's rollouts
    ("harness.trainers.hooks:RunHooks", "probe_rows", "probe"),
    ("harness.trainers.opsd:OPSDTrainer", "training_step", "train step"),  # micro-batch fwd + bwd
    ("harness.sources.controller", "val_accuracy", "progress"),  # ATESD's progress sampling
    ("harness.compute.vllm_backend", "export_weights", "export"),  # the LoRA-merged copy for a vLLM eval
    ("harness.run", "evaluate_into", "eval"),
)


def peak_bytes(cuda: bool) -> int:
    """CUDA: torch.cuda.max_memory_allocated since the last reset; CPU: the process's peak RSS."""
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class PhaseMeter:
    """Peak memory per phase: torch.cuda.max_memory_allocated reset at each phase boundary on CUDA
    (with the device's used memory, torch.cuda.mem_get_info, at the boundaries: vLLM's own pool
    included); on a CPU the process's peak RSS (VmHWM), reset through /proc/self/clear_refs. The
    peak over the whole run survives the resets (overall)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.peaks: dict[str, int] = {}
        self.device_used: dict[str, int] = {}
        self.stack: list[str] = []
        self.folded = 0  # the largest peak read before a reset

    def _current_peak(self) -> int:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated()
        status = Path("/proc/self/status")
        match = re.search(r"VmHWM:\s+(\d+)", status.read_text()) if status.exists() else None
        return int(match.group(1)) * 1024 if match else peak_bytes(False)

    def _reset(self) -> int:
        """The peak since the last reset, then a reset."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        peak = self._current_peak()
        self.folded = max(self.folded, peak)
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            except OSError:
                pass  # no reset: each phase then reads the peak so far
        return peak

    def _charge(self, phase: str, peak: int) -> None:
        self.peaks[phase] = max(self.peaks.get(phase, 0), peak)
        if self.cuda:
            import torch

            free, total = torch.cuda.mem_get_info()
            self.device_used[phase] = max(self.device_used.get(phase, 0), total - free)

    def enter(self, phase: str) -> None:
        peak = self._reset()
        if self.stack:
            self._charge(self.stack[-1], peak)
        self.stack.append(phase)

    def exit(self) -> None:
        self._charge(self.stack.pop(), self._reset())

    def overall(self) -> int:
        return max(self.folded, self._current_peak())

    def gb(self) -> dict[str, float]:
        return {k: round(v / GB, 3) for k, v in self.peaks.items()}

    def device_gb(self) -> dict[str, float]:
        return {k: round(v / GB, 3) for k, v in self.device_used.items()}


def _owner(target: str):
    module, _, cls = target.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, cls) if cls else mod


@contextmanager
def metered(meter: PhaseMeter, phases=PHASES) -> Iterator[PhaseMeter]:
    """Each phase's function wrapped to enter and exit its phase in the meter, for the duration."""
    undo: list[Callable[[], None]] = []
    try:
        for target, name, phase in phases:
            try:
                owner = _owner(target)
            except (ImportError, AttributeError):  # a phase this tree does not have: not metered
                continue
            original = getattr(owner, name)
            undo.append(_restorer(owner, name, original, own=name in vars(owner)))
            setattr(owner, name, _wrapped(original, meter, phase))
        yield meter
    finally:
        for restore in reversed(undo):
            restore()


def _restorer(owner, name: str, original: Callable, own: bool) -> Callable[[], None]:
    """Put back what `owner` had: its own attribute, or nothing (an inherited method)."""
    return lambda: setattr(owner, name, original) if own else delattr(owner, name)


def _wrapped(fn: Callable, meter: PhaseMeter, phase: str) -> Callable:
    @wraps(fn)
    def inner(*args, **kwargs):
        meter.enter(phase)
        try:
            return fn(*args, **kwargs)
        finally:
            meter.exit()

    return inner


def step_timer(cuda: bool, meter: PhaseMeter | None = None,
               on_step: Callable[[object], None] | None = None,
               on_train_end: Callable[[object], None] | None = None):
    """A TrainerCallback: each optimiser step's end time and the peak so far (rollouts, the
    micro-batches, the probe and the update all fall between two step ends); with a meter, its
    overall peak (the meter resets the device's peak at each phase). on_step / on_train_end get the
    timer after each step and at the training's end: the check prints and writes its figures then,
    so a check stopped later (a device call's time limit) keeps them."""
    from transformers import TrainerCallback

    def peak_so_far() -> int:
        return meter.overall() if meter is not None else peak_bytes(cuda)

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
            self.peaks.append(peak_so_far())
            if on_step is not None:
                on_step(self)

        def on_train_end(self, args, state, control, **kwargs):
            self.train_end = time.perf_counter()
            self.train_peak = peak_so_far()
            if on_train_end is not None:
                on_train_end(self)

    return StepTimer()


def plan_by_phase(cfg) -> dict[str, float]:
    """The plan's GB per phase: the persistent parts plus that phase's parts (what the device holds
    while it runs); {} without harness/memory/plan.py."""
    try:
        from harness.memory.plan import plan
    except ImportError:
        return {}
    p = plan(cfg)
    return {ph: round((p.phase_bytes("persistent") + p.phase_bytes(ph)) / GB, 3) for ph in p.phases}


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
    phase_peak_gb: dict = field(default_factory=dict)  # measured peak per plan phase (PhaseMeter)
    phase_device_gb: dict = field(default_factory=dict)  # CUDA: device memory used at its boundaries
    plan_phase_gb: dict = field(default_factory=dict)  # the plan's persistent + phase parts, per phase
    vllm_phase_peak_gb: dict = field(default_factory=dict)  # the vLLM stage's phases
    vllm_phase_device_gb: dict = field(default_factory=dict)
    kernel: dict = field(default_factory=dict)  # loss.kernel harness vs trl (bench/kernel.py on_device)
    stage: str = "setup"  # what ran when written: setup, training, evaluation, vllm stage; complete


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
    """One row per step: seconds, rollout tokens (prompts x mean completion length) and tokens/s
    (rows: the run's metrics.jsonl; [] while it trains: the seconds and peaks alone)."""
    train = {r["step"]: r for r in rows if r.get("kind") == "train"}
    out, last = [], timer.start
    for i, (end, peak) in enumerate(zip(timer.ends, timer.peaks), start=1):
        seconds = end - last
        last = end
        tokens = train.get(i, {}).get("completion_length", 0.0) * prompts
        out.append({"step": i, "seconds": round(seconds, 3), "rollout_tokens": round(tokens),
                    "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and tokens else None,
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
    lines = [f"gpu-check on {r.device}: Qwen3 shape {r.shape}" +
             ("" if r.stage == "complete" else f" (PARTIAL: written while the {r.stage} ran)"),
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
    lines += phase_table(r.phase_peak_gb, r.plan_phase_gb, r.phase_device_gb, r.device.startswith("cuda"))
    lines += [f"train {r.train_s:.1f} s, eval {r.eval_s:.1f} s ({r.eval}), total {r.total_s:.1f} s",
              f"peak ({r.peak_kind}): training {r.train_peak_gb:.2f} GB, whole run {r.run_peak_gb:.2f} GB",
              f"{r.plan_note}" + (f"; {ratio}" if ratio else ""),
              f"vLLM stage: {r.vllm}",
              *(phase_table(r.vllm_phase_peak_gb, {}, r.vllm_phase_device_gb, True)
                if r.vllm_phase_peak_gb else []),
              f"loss kernel, loss + backward (harness vs trl): {r.kernel}",
              f"versions: {r.versions}"]
    return "\n".join(lines)


def phase_table(peaks: dict, planned: dict, device: dict, cuda: bool) -> list[str]:
    """Measured peak per phase beside the plan's (persistent + that phase's parts)."""
    if not peaks:
        return []
    kind = "torch peak GB" if cuda else "peak RSS GB (libraries included)"
    lines = [f"| phase | measured {kind} | device used GB | plan GB | measured / plan |",
             "|---|---:|---:|---:|---:|"]
    for phase, gb in peaks.items():
        plan_gb = planned.get(phase)
        ratio = f"{gb / plan_gb:.2f}" if plan_gb and cuda else ""
        used = f"{device[phase]:.2f}" if phase in device else ""
        planned_gb = "" if plan_gb is None else f"{plan_gb:.2f}"
        lines.append(f"| {phase} | {gb:.2f} | {used} | {planned_gb} | {ratio} |")
    return lines


def write(r: Report, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(asdict(r), indent=2) + "\n")
    (out / "gpu_check.md").write_text(table(r) + "\n")
    return out / "gpu_check.json"
