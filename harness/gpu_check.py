"""make gpu-check: 3 OPSD steps with LoRA at the 1.7B preset's lengths, a probe and an HF Average@k, measured.

python -m harness.gpu_check [--out DIR] [--shape auto|1p7b|tiny]

On CUDA (`--shape auto` -> 1p7b): a randomly initialised Qwen3 at the 1.7B shape (28 layers,
hidden 2048, vocabulary 151,936; nothing to download) trains 3 OPSD steps with LoRA r 64 in
bf16 at the preset's lengths (sweeps/experiment/paper_qwen3_1p7b.yaml: 2,048 new tokens, its
train.micro_batch), the probe at every exposure at step 3, then an HF Average@k on 8 problems
(the math fixtures). It prints step time, tokens/s and the peak
torch.cuda.max_memory_allocated against the memory plan's prediction (harness/memory_plan.py),
and writes results/gpu/gpu_check.json. On a CPU (`tiny`) the same path runs at hidden 64, 2
layers, the real vocabulary and short lengths (tests/test_gpu_check.py runs it in CI).
The run goes through harness.run's own `run`, so it is the path a preset launches.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness.qwen3_shaped import FIXTURES, QWEN3_VOCAB, build

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {  # Qwen3-1.7B's config (DESIGN.md "Real sizes"); tiny: the same vocabulary, CPU width
    "1p7b": dict(hidden_size=2048, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate_size=6144),
    "tiny": dict(hidden_size=64, layers=2, heads=2, kv_heads=1, head_dim=32, intermediate_size=128),
}
TRAIN = FIXTURES / "openthoughts_math_30k_opsd.jsonl"
EXTRA = [("What is $7 \\cdot 8$?", "56"), ("Compute $100 - 37$.", "63")]


def eval_file(out: Path) -> Path:
    """8 evaluation problems: the AIME24 / AIME25 / HMMT25 fixtures' 6 and two more, one jsonl."""
    rows = [{"problem": r["problem"], "answer": str(r["answer"])}
            for name in ("aime_2024.jsonl", "aime_2025.json", "hmmt_feb_2025.json")
            for r in _rows(FIXTURES / name)]
    rows += [{"problem": q, "answer": a} for q, a in EXTRA]
    path = out / "eval8.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(path: Path) -> list[dict]:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def overrides(model_dir: Path, results: Path, shape: str, eval8: Path) -> list[str]:
    suite = f"[{{name:check8,path:{eval8},problem:problem,solution:null,answer:answer}}]"
    common = [f"model.path={model_dir}", f"results={results}", "method=opsd", "exposure=1",
              f"task.train_data.path={TRAIN}", f"task.eval_data={suite}", "task.val_size=2",
              "train.steps=3", "probe.every=3", "train.checkpoint_every=0", "eval.backend=hf",
              "train.generation=hf", "launcher.gpus_per_node=0", "name=gpu_check", "force=true"]
    if shape == "1p7b":  # the preset's lengths and micro-batch; 4 prompts keep it within minutes
        return ["experiment=paper_qwen3_1p7b", *common, "train.prompts_per_step=4", "eval.k=2",
                "eval.max_new_tokens=256", "eval.thinking=false", "launcher.gpus_per_node=1"]
    return ["task=math", *common, "train.prompts_per_step=2", "train.micro_batch=1",
            "train.max_completion_length=32", "model.lora.r=8", "eval.k=2", "eval.max_new_tokens=16"]


def measure(cfg, resolved: str, cuda: bool) -> dict:
    import torch

    from harness.run import run

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    run(cfg, resolved)
    wall = time.time() - t0
    rows = _rows(Path(cfg.results) / cfg.run_name / "metrics.jsonl")
    train = [r for r in rows if r["kind"] == "train"]
    times = [b["wall_time"] - a["wall_time"] for a, b in zip(train, train[1:])]
    tokens = sum(r["completion_length"] for r in train) * cfg.train.prompts_per_step
    return {"wall_s": wall, "step_s": sorted(times)[len(times) // 2] if times else train[0]["wall_time"],
            "tokens_per_s": tokens / max(train[-1]["wall_time"], 1e-9),
            "probe_rows": sum(r["kind"] == "probe" for r in rows),
            "peak_allocated_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def check(out: Path, shape: str) -> dict:
    import torch

    from harness.memory_plan import plan
    from harness.settings import compose_resolved

    cuda = torch.cuda.is_available()
    shape = ("1p7b" if cuda else "tiny") if shape == "auto" else shape
    model_dir = out / f"qwen3_{shape}"
    if not (model_dir / "config.json").is_file():
        build(model_dir, vocab_size=QWEN3_VOCAB, max_positions=40960, **SHAPES[shape])
    cfg, resolved = compose_resolved(overrides(model_dir, out / "runs", shape, eval_file(out)))
    predicted = plan(cfg).total / 2**30
    result = {"device": torch.cuda.get_device_name() if cuda else "cpu", "shape": shape,
              "micro_batch": cfg.micro_batch, "completion_tokens": cfg.train.max_completion_length,
              "predicted_gb": predicted, **measure(cfg, resolved, cuda)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m harness.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="work folder (default: a temp dir); on CUDA the figures also go to "
                                  "results/gpu/gpu_check.json")
    ap.add_argument("--shape", default="auto", choices=("auto", "1p7b", "tiny"))
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="gpu_check_"))
    out.mkdir(parents=True, exist_ok=True)
    result = check(out, a.shape)
    for key, value in result.items():
        print(f"{key:>20}: {value:.3f}" if isinstance(value, float) else f"{key:>20}: {value}")
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    if result["device"] != "cpu":
        (ROOT / "results" / "gpu").mkdir(parents=True, exist_ok=True)
        (ROOT / "results" / "gpu" / "gpu_check.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
