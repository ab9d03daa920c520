"""Run folders written by hand, as harness.run leaves them minus the training, for the analysis
tests that choose their numbers (tests/test_claims.py, tests/test_difficulty.py).

python -m pytest -q tests/test_claims.py tests/test_difficulty.py
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from harness.config.gap import effective_tag
from harness.config.schema import run_name
from harness.runs.rundir import write_json


def at(raw: DictConfig, **values) -> DictConfig:
    """A copy of the composed config with dotted keys set (`method.name`, `seed`, ...)."""
    out = raw.copy()
    for key, value in values.items():
        OmegaConf.update(out, key, value)
    return out


def write_run(root: Path, raw: DictConfig, averages: dict[str, float] | None, state: str = "done",
              metrics: list[dict] | None = None) -> str:
    """config.yaml, status.json, eval.json (averages: Average@k per suite, a fraction; None: no
    eval.json) and metrics.jsonl (the rows, when given) of one run; returns its name."""
    cfg = OmegaConf.to_container(raw, resolve=True)
    tag = effective_tag(cfg["tag"], cfg.get("gap"), cfg.get("reference"))  # as the run itself names it
    method = cfg["method"]
    name = run_name(method["name"], method["exposure_source"], cfg["exposure"], cfg["seed"], tag)
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(raw, resolve=True))
    write_json(folder / "status.json", {"state": state, "reason": "" if state == "done" else "boom"})
    if averages is not None:
        k = cfg["eval"]["k"]
        write_json(folder / "eval.json", {"k": k, "suites": {
            s: {"average": a, "se": 0.0, "k": k, "num_problems": 4} for s, a in averages.items()}})
    if metrics is not None:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return name
