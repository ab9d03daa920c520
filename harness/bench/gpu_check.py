"""python -m harness.bench.gpu_check [--out DIR] [--work DIR] [--tiny] [--long-refs TOKENS] [-- overrides]

`make gpu-check`: the paper's OPSD path at real size on the first CUDA machine, nothing to download.

On CUDA: a randomly initialised Qwen3 at the 1.7B shape (28 layers, hidden 2048, MLP 6144, 16
heads, 8 kv heads, head_dim 128, vocabulary 151,936, tied embeddings; harness/models/qwen3_shaped.py)
runs through the real entry point (harness.run's run(), in this process) with the preset
experiment=paper_qwen3_1p7b: LoRA r 64 in bf16, its rollout length, train.micro_batch and
probe.max_rows, references of ~20,000 tokens (--long-refs; the teacher contexts of a real run,
up to the preset's task.max_teacher_tokens 21,000), 2 OPSD steps with the probe at step 1 (a step
with and one without it), then an HF Average@k on 8 problems. Where `import vllm` works, a second
stage runs one step with colocated vLLM rollouts (sleep mode, the LoRA weight sync) and a vLLM
evaluation; else it records "skipped: vllm not installed" (the carried wheels cannot hold vLLM).
It prints each step's time, rollout tokens/s, the peak of each phase of the memory plan
(generation, train step, probe, export, eval: torch.cuda.max_memory_allocated reset at each phase
boundary) beside the plan's figure for that phase and part (harness/memory/plan.py), and writes
results/gpu/gpu_check.json (and .md), re-written after each step and stage and marked PARTIAL
until the end (a stopped check keeps its figures). The loss-kernel comparison runs first (seconds).
First run on an H200, 2026-12-04: 2 training steps in 458 s; stopped in the evaluation by the call's
limit before this report existed (results/gpu/2026-12-04-h200/README.md).
On the CPU (or with --tiny) the same at a tiny width (hidden 64, 2 layers) but the real
vocabulary, short rollouts, 480-token references, 3 steps (probe at 1 and 3) and 2 prompts a step:
well under 2 minutes,
written to --out or a temporary folder (tests/test_gpu_check.py runs it in CI).

The GPU machine has torch, peft and accelerate but not trl, hydra, submitit, datasets'
dill/multiprocess or math-verify, and no network: `make gpu-wheels` downloads the pinned
pure-python wheels (`--wheels DIR`) here, and `make gpu-check` installs them with
`pip install --no-index --no-deps --target` there before running this module.
Measuring and the report: harness/bench/gpu_measure.py; the wheels: harness/bench/gpu_wheels.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.bench.gpu_measure import (
    GB,
    PhaseMeter,
    Report,
    metered,
    metrics,
    plan_by_phase,
    plan_total,
    step_rows,
    step_timer,
    table,
    versions,
    write,
)
from harness.bench.gpu_wheels import download_wheels
from harness.bench.kernel import on_device as kernel_on_device

ROOT = Path(__file__).resolve().parents[2]
TRAIN_FILE = ROOT / "tests" / "fixtures" / "math" / "openthoughts_math_30k_opsd.jsonl"
PRESET = "paper_qwen3_1p7b"


@dataclass(frozen=True)
class Shape:
    """The random model's shape (harness/models/qwen3_shaped.py build's keywords)."""

    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int = 151_936


QWEN3_1P7B = Shape(hidden_size=2048, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate_size=6144)
TINY = Shape(hidden_size=64, layers=2, heads=2, kv_heads=1, head_dim=32, intermediate_size=128)


@dataclass(frozen=True)
class Settings:
    """What the check runs: the preset's values on CUDA, shrunk on the CPU."""

    shape: Shape
    cuda: bool
    overrides: tuple[str, ...]  # on top of the preset and the data/model paths


# The preset's lengths and micro-batch stay; the check bounds only what the preset leaves to
# vLLM (the evaluation's 38,912 thinking tokens: HF generate is this check's sampler, the GPU
# machine has no vLLM) and the run's length: on CUDA 2 steps, the probe at step 1 only, one
# checkpoint at the end; on the CPU 3 steps, the probe at 1 and 3. Measured on an H200 (2026-12-04,
# results/gpu/2026-12-04-h200/): step 1 (probe) 311 s, step 2 145 s, 458 s of training (HF
# rollouts of 32 x 2,048 tokens dominate), about 8 minutes with the build; the evaluation is
# therefore small (2 x 8 samples of 512 tokens) so that the whole check fits a 10-minute call.
CUDA_OVERRIDES = ("train.steps=2", "probe.every=3", "train.checkpoint_every=0", "train.generation=hf",
                  "eval.backend=hf", "eval.k=2", "eval.max_new_tokens=512", "eval.batch_size=16")
CPU_OVERRIDES = ("train.steps=3", "probe.every=3", "train.checkpoint_every=0", "train.generation=hf",
                 "eval.backend=hf", "eval.k=2", "eval.max_new_tokens=16", "train.prompts_per_step=2",
                 "train.micro_batch=1", "train.max_completion_length=16", "task.max_teacher_tokens=512",
                 "train.threads=2", "launcher.gpus_per_node=0")


# The teacher contexts of a real run: references of ~20k tokens (OPSD's budget, task.max_teacher_tokens
# 21,000 with the problem and template) on CUDA; on the CPU the budget above is 512 tokens.
# --long-refs TOKENS overrides it (0: the fixture's own 64-150-character references).
REF_TOKENS = {True: 20_000, False: 480}


def settings(cuda: bool) -> Settings:
    if cuda:
        return Settings(QWEN3_1P7B, True, CUDA_OVERRIDES)
    return Settings(TINY, False, CPU_OVERRIDES)


# --- inputs: the model and 8 evaluation problems ------------------------------------------------

def build_model(folder: Path, shape: Shape, cuda: bool) -> Path:
    """The random Qwen3 at `shape`; on CUDA initialised on the GPU in bf16 (seconds, not the
    minutes a 1.7B fp32 init on the CPU takes) and saved in bf16 (3.4 GB)."""
    import torch

    from harness.models.qwen3_shaped import build

    kw = {**asdict(shape), "max_positions": 40_960}  # Qwen3's own context: teacher prompts run long
    if not cuda:
        return build(folder, vocab_size=kw.pop("vocab_size"), **kw)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return build(folder, vocab_size=kw.pop("vocab_size"), **kw)
    finally:
        torch.set_default_dtype(old)
        gc.collect()
        torch.cuda.empty_cache()


def write_eval_problems(path: Path, n: int = 8) -> Path:
    """n sums as an eval suite (problem, answer): the fixture's training rows cannot serve, since
    training drops every problem an eval suite holds and would keep too few."""
    rows = [{"id": i, "problem": f"Compute {17 * i + 3} + {29 * i + 11}.", "answer": str(46 * i + 14)}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_long_references(path: Path, model: Path, n_tokens: int) -> tuple[Path, int]:
    """The fixture's training rows with worked lines before each reference's last paragraph (its
    boxed answer stays last) until it has about n_tokens tokens: the teacher context of a real
    OPSD run (review F1: 64-150-character references measured the wrong operating point).
    Returns (file, the longest reference in tokens)."""
    from transformers import AutoTokenizer

    from harness.models.qwen3_shaped import long_reference

    tok = AutoTokenizer.from_pretrained(str(model))
    rows, longest = [], 0
    for raw in TRAIN_FILE.read_text().splitlines():
        row = json.loads(raw)
        row["solution"] = long_reference(row["solution"], tok, n_tokens)
        longest = max(longest, len(tok(row["solution"])["input_ids"]))
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, longest


def overrides(s: Settings, model: Path, eval_file: Path, results: Path, extra: list[str],
              train_file: Path = TRAIN_FILE) -> list[str]:
    suite = f"[{{name:check8,path:'{eval_file}',problem:problem,solution:null,answer:answer,id:id}}]"
    return [f"experiment={PRESET}", f"model.path={model}", f"task.train_data.path={train_file}",
            f"task.eval_data={suite}", "task.val_size=2", "method=opsd", "exposure=0.5", "seed=0",
            f"results={results}", "name=gpu_check", "force=true", *s.overrides, *extra]


def references(work: Path, model: Path, tokens: int) -> tuple[Path, int]:
    """(training file, its longest reference in tokens): long references, or the fixture's (0)."""
    if tokens > 0:
        return write_long_references(work / "train_long_refs.jsonl", model, tokens)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    rows = [json.loads(x) for x in TRAIN_FILE.read_text().splitlines() if x.strip()]
    return TRAIN_FILE, max(len(tok(r["solution"])["input_ids"]) for r in rows)


def check(work: Path, cuda: bool, extra: list[str], ref_tokens: int | None = None,
          out: Path | None = None) -> Report:
    """Build the model, run the real entry point on it, and measure (ref_tokens None: REF_TOKENS).
    With out, the report is written (and a line printed) after each step and each stage, marked
    PARTIAL until the end: a check stopped by a time limit keeps what it measured."""
    import torch

    from harness.config.settings import compose_resolved
    from harness.run import run
    from harness.runs.rundir import run_folder

    s = settings(cuda)
    t0 = time.perf_counter()
    kernel = kernel_on_device(cuda)  # first: seconds, its tensors freed before the run's peaks reset
    t_build = time.perf_counter()
    model = build_model(work / "model", s.shape, cuda)
    build_s = time.perf_counter() - t_build
    want = REF_TOKENS[cuda] if ref_tokens is None else ref_tokens
    train_file, longest = references(work, model, want)
    args = overrides(s, model, write_eval_problems(work / "check8.jsonl"), work / "runs", extra, train_file)
    cfg, resolved = compose_resolved(args)
    report = Report("cuda: " + torch.cuda.get_device_name() if cuda else "cpu", asdict(s.shape),
                    args, cfg.micro_batch,
                    cfg.train.prompts_per_step, cfg.train.max_completion_length, build_s=round(build_s, 1),
                    versions=versions(), kernel=kernel)
    report.plan_total_gb, report.plan_note = plan_total(cfg)
    report.reference_tokens = longest
    report.plan_parts_gb = plan_parts(cfg)
    report.plan_phase_gb = plan_by_phase(cfg)
    if cuda:  # the build's GPU tensors are gone: measure the run alone
        torch.cuda.reset_peak_memory_stats()
    meter = PhaseMeter(cuda)
    progress = Progress(report, meter, out, t0)
    timer = step_timer(cuda, meter, on_step=progress.step, on_train_end=progress.train_end)
    progress.save("training")
    t1 = time.perf_counter()
    meter.enter("setup")  # loading, the trainer, checkpoints: whatever no phase below covers
    with metered(meter):
        summary = run(cfg, resolved, observers=[timer]) or {}
    meter.exit()
    done = time.perf_counter()
    rows = metrics(run_folder(cfg))
    report.steps = step_rows(rows, timer, cfg.train.prompts_per_step)
    report.train_s = round(timer.train_end - t1, 1)
    report.eval_s = round(done - timer.train_end, 1)
    report.total_s = round(done - t0, 1)
    report.train_peak_gb = round(timer.train_peak / GB, 3)
    report.run_peak_gb = round(meter.overall() / GB, 3)
    report.phase_peak_gb, report.phase_device_gb = meter.gb(), meter.device_gb()
    report.peak_kind = peak_kind(cuda)
    report.probe_rows = sum(r.get("kind") == "probe" for r in rows)
    report.eval = {k: {"average": v["average"], "k": v["k"], "num_problems": v.get("num_problems")}
                   for k, v in summary.get("suites", {}).items()}
    progress.save("vllm stage")
    vllm_stage(cuda, args, work, report)
    report.stage = "complete"
    return report


def peak_kind(cuda: bool) -> str:
    return "torch.cuda.max_memory_allocated" if cuda else "peak RSS of the process (build included)"


@dataclass
class Progress:
    """Prints a line and re-writes the report after each step and at each stage's start (the
    first GPU run, 2026-12-04, lost every figure to the device call's time limit: the report was
    written only at the end)."""

    report: Report
    meter: PhaseMeter
    out: Path | None
    t0: float

    def save(self, stage: str) -> None:
        self.report.stage = stage
        if self.out is not None:
            write(self.report, self.out)

    def step(self, timer) -> None:
        self.report.steps = step_rows([], timer, self.report.prompts_per_step)
        self.report.phase_peak_gb, self.report.phase_device_gb = self.meter.gb(), self.meter.device_gb()
        self.report.peak_kind = peak_kind(self.report.device.startswith("cuda"))
        row = self.report.steps[-1]
        print(f"gpu-check: step {row['step']} took {row['seconds']:.1f} s, peak so far "
              f"{row['peak_gb']:.2f} GB ({time.perf_counter() - self.t0:.0f} s since the start)", flush=True)
        self.save("training")

    def train_end(self, timer) -> None:
        self.report.train_peak_gb = round(timer.train_peak / GB, 3)
        self.report.train_s = round(timer.train_end - timer.start, 1)
        r = self.report
        print(f"gpu-check: training done in {r.train_s:.0f} s, peak {r.train_peak_gb:.2f} GB; evaluating",
              flush=True)
        self.save("evaluation")


def plan_parts(cfg) -> dict[str, float]:
    """The plan's GB per part (harness/memory/plan.py), to read beside the measured peaks."""
    from harness.memory.plan import plan

    return {p.name: round(p.bytes / GB, 3) for p in plan(cfg).parts}


def vllm_import_error() -> str | None:
    """None when `import vllm` works here, else why not (absent, or a build for another torch)."""
    try:
        import vllm  # noqa: F401
    except ImportError as err:
        return "vllm not installed" if getattr(err, "name", None) == "vllm" else f"import vllm failed: {err}"
    except Exception as err:  # a vllm whose CUDA kernels do not load here
        return f"import vllm failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return None


def vllm_stage(cuda: bool, args: list[str], work: Path, report: Report) -> None:
    """One more step with colocated vLLM rollouts (sleep mode, the LoRA weight sync) and a vLLM
    evaluation, where `import vllm` works on CUDA: its wall time and each phase's peak (the
    torch allocations, and the device's used memory at the phase boundaries, vLLM's pool
    included); else why it was skipped (the carried wheels cannot hold vLLM: a GPU image with
    the vllm extra runs it, make venv GPU=1)."""
    if not cuda:
        report.vllm = "skipped: no CUDA"
        return
    if (why := vllm_import_error()) is not None:
        report.vllm = f"skipped: {why}"
        return
    from harness.config.settings import compose_resolved
    from harness.run import run

    more = ["train.generation=vllm", "eval.backend=vllm", "train.steps=1", "probe.every=1",
            "name=gpu_check_vllm", f"results={work / 'runs_vllm'}"]
    cfg, resolved = compose_resolved([*args, *more])
    meter = PhaseMeter(True)
    meter.enter("setup")
    t0 = time.perf_counter()
    try:
        with metered(meter):
            run(cfg, resolved)
    except Exception as err:  # the check reports what failed instead of losing the other figures
        report.vllm = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
        return
    finally:
        meter.exit()
        report.vllm_phase_peak_gb, report.vllm_phase_device_gb = meter.gb(), meter.device_gb()
    report.vllm = (f"ran: 1 step with vLLM rollouts + a vLLM evaluation in {time.perf_counter() - t0:.0f} s, "
                   f"peak {meter.overall() / GB:.2f} GB (torch allocations; vLLM's pool: device used GB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.gpu_check",
                                 description=__doc__.splitlines()[2])
    ap.add_argument("--out", type=Path, help="where gpu_check.json goes (CUDA default: results/gpu; "
                                             "CPU default: a temporary folder)")
    ap.add_argument("--work", type=Path, help="model and run folder (default: a temporary folder)")
    ap.add_argument("--tiny", action="store_true", help="the CPU variant's sizes even on CUDA")
    ap.add_argument("--long-refs", type=int, metavar="TOKENS",
                    help=f"pad each training reference to about TOKENS tokens (default: {REF_TOKENS[True]:,} "
                         f"on CUDA, {REF_TOKENS[False]} on the CPU; 0: the fixture's own)")
    ap.add_argument("--wheels", type=Path, help="only download the GPU machine's wheels into this folder")
    ap.add_argument("extra", nargs="*", help="more hydra overrides (after --)")
    a = ap.parse_args(argv)
    if a.wheels:
        print("\n".join(str(p) for p in download_wheels(a.wheels)))
        return
    import torch

    cuda = torch.cuda.is_available() and not a.tiny
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        out = a.out or (ROOT / "results" / "gpu" if cuda else Path(tmp) / "out")
        report = check(a.work or Path(tmp), cuda, a.extra, a.long_refs, out)
        print(table(report))
        print(f"wrote {write(report, out)}")


if __name__ == "__main__":
    main()
