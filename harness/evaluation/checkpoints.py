"""Average@k of a run's saved checkpoints, each on its own, resumable; OPSD's best-per-suite report.

python -m harness.evaluate --run results/runs/opsd-r1-s0 --checkpoints all --best-per-suite

A run keeps train.keep_checkpoints complete checkpoints (harness/runs/checkpoints.py). Each one
named here is loaded (a full model, or the run's base model with the checkpoint's LoRA adapter)
and evaluated with the run's own config.yaml (plus any overrides) into
<run>/eval_checkpoints/<checkpoint>/eval.json. The public OPSD numbers are each benchmark's best
checkpoint (siyan-zhao/OPSD issue #11): --best-per-suite writes that report too, as
best_per_suite.json, labelled as what it is: a choice made on the test suites themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from harness.config.schema import RunConfig, to_run_config
from harness.runs.checkpoints import checkpoints, is_complete
from harness.runs.rundir import write_eval, write_json

BEST_LABEL = ("best checkpoint per suite, chosen on the test suites themselves (the public OPSD "
              "report): optimistic, not comparable with a single checkpoint's numbers")


def run_config(run: Path, overrides: list[str]) -> RunConfig:
    """The run's config.yaml with overrides (key=value) on top."""
    path = run / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no config.yaml)")
    raw = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(overrides))
    return to_run_config(raw)


def pick(run: Path, which: str) -> list[Path]:
    """The complete checkpoints `which` names: last, all, or checkpoint-N,..."""
    done = [c for c in checkpoints(run / "checkpoints") if is_complete(c)]
    if not done:
        raise FileNotFoundError(f"{run}: no complete checkpoint under checkpoints/")
    if which == "last":
        return done[-1:]
    if which == "all":
        return done
    names = {c.name: c for c in done}
    wanted = [w.strip() for w in which.split(",") if w.strip()]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ValueError(f"--checkpoints {','.join(missing)}: not a complete checkpoint of {run.name} "
                         f"(have: {', '.join(names)})")
    return [names[w] for w in wanted]


def load_checkpoint(ckpt: Path, cfg: RunConfig):
    """(model, tokenizer) of a checkpoint: a saved model, or the base with its LoRA adapter."""
    from harness.models.tiny import load

    if (ckpt / "config.json").is_file():
        return load(ckpt, cfg.model)
    if not (ckpt / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: neither a saved model (config.json) nor a LoRA adapter")
    from peft import PeftModel

    base, tok = load(cfg.model.path, cfg.model)
    return PeftModel.from_pretrained(base, str(ckpt)).eval(), tok


def evaluate_run(run: Path, which: str, overrides: list[str], best_per_suite: bool) -> dict[str, dict]:
    """{checkpoint: eval.json summary}; each written under <run>/eval_checkpoints/<name>/."""
    from harness.evaluation.suites import evaluate

    cfg = run_config(run, overrides)
    chosen = pick(run, which)
    out: dict[str, dict] = {}
    for ckpt in chosen:
        folder = run / "eval_checkpoints" / ckpt.name
        if (folder / "eval.json").is_file():  # done before: a relaunch skips it
            out[ckpt.name] = json.loads((folder / "eval.json").read_text())
            print(f"{ckpt.name}: already evaluated ({folder / 'eval.json'})")
            continue
        model, tok = load_checkpoint(ckpt, cfg)
        progress = folder / "eval_progress.jsonl"
        summary, samples = evaluate(model, tok, cfg, progress_path=progress)
        folder.mkdir(parents=True, exist_ok=True)
        write_eval(folder, {**summary, "checkpoint": ckpt.name}, samples)
        progress.unlink(missing_ok=True)
        out[ckpt.name] = summary
        line = ", ".join(f"{n} {r['average']:.3f}" for n, r in summary["suites"].items())
        print(f"{ckpt.name}: Average@{cfg.eval.k} {line}")
    if best_per_suite:
        write_json(run / "eval_checkpoints" / "best_per_suite.json", best_report(out))
    return out


def best_report(per_checkpoint: dict[str, dict]) -> dict:
    """Each suite's highest Average@k over the checkpoints, with the checkpoint it came from."""
    suites: dict[str, dict] = {}
    for name, summary in per_checkpoint.items():
        for suite, r in summary["suites"].items():
            if suite not in suites or r["average"] > suites[suite]["average"]:
                suites[suite] = {"average": r["average"], "se": r["se"], "checkpoint": name}
    return {"label": BEST_LABEL, "suites": suites, "checkpoints": sorted(per_checkpoint)}
