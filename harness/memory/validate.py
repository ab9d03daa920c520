"""python -m harness.memory.validate [--sizes 2x8,2x256,2x256@256,4x128x2@128] [--keep DIR]

The memory plan (harness/memory/plan.py) against measured peaks on the CPU, at Qwen3's real
vocabulary: a random Qwen3-shaped model (harness/models/qwen3_shaped.py, vocab 151,936, hidden 64,
2 layers) trains 2 OPSD steps with the probe at every step through the README's own command,
`python -m harness.run task=math model.path=<dir> ...` on the math fixtures, one fresh
subprocess per size (ROWSxCOMPLETION[xMICRO_BATCH][@loss.chunk_mb]). Measured: the child's peak RSS
(os.wait4's ru_maxrss: that process alone, so sizes never mask each other). Predicted: the
plan's total in fp32 plus the process baseline, the peak RSS of a process that imports what
a run imports (torch, transformers, TRL, datasets, peft, the harness) and nothing more.
Target (harness/DESIGN.md): predicted / measured in [0.75, 1.25].
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.models.qwen3_shaped import FIXTURES, QWEN3_VOCAB

GB = 1e9
TARGET = (0.75, 1.25)
IMPORTS = ("import torch, transformers, trl, datasets, peft, harness.run, harness.trainers.opsd, "
           "harness.trainers.rl")


def real_vocab_model(folder: Path, hidden: int = 64, layers: int = 2) -> Path:
    """The real-vocabulary model at folder (built once; a second call reuses it)."""
    from harness.models.qwen3_shaped import build

    if not (folder / "config.json").is_file():
        build(folder, vocab_size=QWEN3_VOCAB, hidden_size=hidden, layers=layers,
              intermediate_size=2 * hidden)
    return folder


def math_overrides(model_dir: Path) -> list[str]:
    """A math run on the fixtures (tests/fixtures/math), small evaluation: the memory is the step's."""
    return ["task=math", f"model.path={model_dir}",
            f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
            f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
            f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
            f"task.eval_data.2.path={FIXTURES / 'hmmt_feb_2025.json'}",
            "task.val_size=2", "eval.k=1", "eval.max_new_tokens=8", "train.checkpoint_every=0",
            # the plan bounds a teacher prompt by this budget (the presets' 21,000 would make the
            # teacher part of these short-reference runs all bound and no measurement)
            "task.max_teacher_tokens=4096",
            # the plan bounds the evaluation's rows by eval.batch_size: the fixtures' 6 problems x k 1
            "eval.batch_size=6"]


def size_overrides(size: str) -> list[str]:
    """'2x128', '4x128x2' or '2x256@256' -> rows per step, completion tokens, (optional)
    micro-batch and (after @) loss.chunk_mb."""
    dims, _, chunk = size.lower().partition("@")
    try:
        parts = [int(x) for x in dims.split("x")]
        mb = [f"loss.chunk_mb={float(chunk):g}"] if chunk else []
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or min(parts) < 1:
        raise ValueError(f"--sizes item {size!r} is invalid: ROWSxCOMPLETION[xMICRO_BATCH][@CHUNK_MB]")
    out = [f"train.prompts_per_step={parts[0]}", f"train.max_completion_length={parts[1]}", *mb]
    return out + ([f"train.micro_batch={parts[2]}"] if len(parts) == 3 else [])


def peak_rss(cmd: list[str]) -> tuple[float, int, str]:
    """Bytes of the child's peak RSS, its exit status and its stderr's tail."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return usage.ru_maxrss * 1024.0, proc.returncode, err.read()[-2000:]


def baseline() -> float:
    rss, rc, err = peak_rss([sys.executable, "-c", IMPORTS])
    if rc != 0:
        raise RuntimeError(f"baseline import failed: {err}")
    return rss


def run_command(model_dir: Path, size: str, results: Path, extra: list[str]) -> list[str]:
    name = "mem-" + size.replace("x", "_").replace("@", "-c").replace(".", "p")
    return [sys.executable, "-m", "harness.run", *math_overrides(model_dir), *size_overrides(size),
            "train.steps=2", "probe.every=1", f"results={results}", f"name={name}", "force=true", *extra]


def one_size(model_dir: Path, size: str, results: Path, base: float, extra: list[str]) -> dict:
    from harness.config.settings import compose
    from harness.memory.plan import plan

    cmd = run_command(model_dir, size, results, extra)
    cfg = compose(cmd[3:])
    p = plan(cfg)
    rss, rc, err = peak_rss(cmd)
    if rc != 0:
        raise RuntimeError(f"size {size} failed (exit {rc}): {err}")
    predicted = p.total + base
    return {"size": size, "loss_path": p.loss_path, "rows_per_forward": p.micro_batch,
            "plan_gb": p.total / GB, "baseline_gb": base / GB, "predicted_gb": predicted / GB,
            "measured_gb": rss / GB, "ratio": predicted / rss, "largest_part": p.largest.name,
            "parts_gb": {x.name: x.bytes / GB for x in p.parts}}


def table(rows: list[dict]) -> str:
    lines = ["| size (rows x completion [x micro-batch]) | loss path | plan GB | baseline GB | "
             "predicted GB | measured peak RSS GB | predicted / measured |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = "" if TARGET[0] <= r["ratio"] <= TARGET[1] else " MISS"
        lines.append(f"| {r['size']} | {r['loss_path']} | {r['plan_gb']:.2f} | {r['baseline_gb']:.2f} | "
                     f"{r['predicted_gb']:.2f} | {r['measured_gb']:.2f} | {r['ratio']:.2f}{ok} |")
    return "\n".join(lines)


def validate(sizes: str, keep: str | None, extra: list[str]) -> list[dict]:
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="memory_validate_"))
    folder.mkdir(parents=True, exist_ok=True)
    model_dir = real_vocab_model(folder / "q3_real_vocab")
    base = baseline()
    rows = []
    for size in [x.strip() for x in sizes.split(",") if x.strip()]:
        rows.append(one_size(model_dir, size, folder / "runs", base, extra))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    (folder / "memory_validate.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    print(f"target {TARGET[0]}-{TARGET[1]}; figures: {folder / 'memory_validate.json'}")
    return rows


def main(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m harness.memory.validate",
                                 description=__doc__.splitlines()[2])
    ap.add_argument("--sizes", default="2x8,2x256,2x256@256,4x128x2@128",
                    help="ROWSxCOMPLETION[xMICRO_BATCH][@loss.chunk_mb], comma-separated")
    ap.add_argument("--keep", help="folder for the model and the runs (default: a temp dir)")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    validate(a.sizes, a.keep, a.overrides)


if __name__ == "__main__":
    main(sys.argv[1:])
