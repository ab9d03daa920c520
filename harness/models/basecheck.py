"""Numbers that identify a base model: its student/teacher table and a small fixed check.

python -m harness.models.basecheck [MODEL_DIR]     # the check numbers of a model (default: shipped)

The table (Average@k of the student and the teacher at r = .25 / .5 / 1, every suite)
is what `make base` prints. The check is small enough for a unit test: on the first
CHECK_PROBLEMS problems of CHECK_SUITE, the student's Average@CHECK_K at T = 1 with a
fixed seed, and the mean per-token NLL of the reference solutions given the student
prompt. Both are stored in the shipped model's manifest (tests/test_shipped_base.py).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from harness.compute.device import cpu_name
from harness.config.schema import RunConfig
from harness.models.tiny import load

TABLE_EXPOSURES = (None, 0.25, 0.5, 1.0)  # None: the student (no reference)
CHECK_SUITE, CHECK_PROBLEMS, CHECK_K, CHECK_SEED = "medium_k4", 20, 4, 1234


def label(r: float | None) -> str:
    return "student (no reference)" if r is None else f"teacher r={r:g}"


def table_values(path: Path, cfg: RunConfig) -> dict[str, dict[str, list[float]]]:
    """{row label: {suite: [average, se]}} for the student and the teacher exposures."""
    from harness.evaluation.suites import evaluate

    model, tok = load(path)
    out = {}
    for r in TABLE_EXPOSURES:
        res, _ = evaluate(model, tok, cfg, exposure=r)
        out[label(r)] = {n: [s["average"], s["se"]] for n, s in res["suites"].items()}
    return out


def describe(values: dict[str, dict[str, list[float]]], k: int) -> str:
    """The table as markdown."""
    names = list(next(iter(values.values())))
    lines = [f"| Average@{k} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row, cells in values.items():
        lines.append(f"| {row} | " + " | ".join(f"{a:.3f} ± {se:.3f}" for a, se in cells.values()) + " |")
    return "\n".join(lines)


@torch.no_grad()
def check_numbers(model, tokenizer, cfg: RunConfig) -> dict:
    """Student Average@CHECK_K (seeded sampling) and mean reference NLL on a fixed subset."""
    from harness.evaluation.suites import eval_suite
    from harness.sources.learning_progress import ref_nll
    from harness.tasks.datasets import TaskData

    problems = TaskData(cfg.task).suite(CHECK_SUITE)[:CHECK_PROBLEMS]
    check_cfg = replace(cfg, eval=replace(cfg.eval, k=CHECK_K, seed=CHECK_SEED))
    summary, _ = eval_suite(model, tokenizer, check_cfg, CHECK_SUITE, problems)
    return {"suite": CHECK_SUITE, "problems": CHECK_PROBLEMS, "k": CHECK_K, "seed": CHECK_SEED,
            "temperature": cfg.eval.temperature, "average": summary["average"],
            "ref_nll": ref_nll(model, tokenizer, with_controller(cfg), problems)}


def with_controller(cfg: RunConfig) -> RunConfig:
    """cfg with a controller section (its defaults unless the run has one): ref_nll reads
    controller.progress_batch_size, and a base or OPSD run keeps no controller section."""
    from harness.sources.controller_config import ControllerConfig

    return cfg if cfg.controller is not None else replace(cfg, controller=ControllerConfig())


def compare_with_shipped(path: Path, cfg: RunConfig, values: dict) -> str:
    """Lines saying how a new build compares with the shipped model."""
    from harness.models.base_identity import base_key, base_shaping
    from harness.models.shipped import SHIPPED_DIR, read_manifest, sha256
    from harness.runs.rundir import describe_diff

    m = read_manifest(SHIPPED_DIR)
    if m is None:
        return "no shipped base model to compare with"
    if m["key"] != base_key(cfg):
        diff = describe_diff(m["shaping"], base_shaping(cfg))
        return f"the shipped model was made with another base config ({diff})"
    same = sha256(path / "model.safetensors") == m["files"]["model.safetensors"]
    lines = [f"weights bit-identical to the shipped model: {'yes' if same else 'no'} "
             f"(shipped ones were built on {m['built']['cpu']!r})",
             "Average@k, this build minus the shipped model (points):"]
    for row, cells in values.items():
        old = m["table"].get(row, {})
        diffs = [f"{n} {100 * (a - old[n][0]):+.1f}" for n, (a, _) in cells.items() if n in old]
        lines.append(f"  {row}: " + ", ".join(diffs))
    return "\n".join(lines)


def ship_build(path: Path, cfg: RunConfig, values: dict, seconds: float) -> Path:
    from harness.models.base_identity import base_key, base_shaping
    from harness.models.shipped import SHIPPED_DIR, ship

    model, tok = load(path)
    built = {"seconds": seconds, "date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(),
             "torch": torch.__version__}
    ship(path, SHIPPED_DIR, base_key(cfg), base_shaping(cfg),
         {"built": built, "table": values, "table_k": cfg.eval.k,
          "check": check_numbers(model, tok, cfg)})
    return SHIPPED_DIR




if __name__ == "__main__":
    from harness.config.settings import compose
    from harness.models.shipped import SHIPPED_DIR

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED_DIR
    model, tok = load(folder)
    print(json.dumps(check_numbers(model, tok, compose([])), indent=1))
