"""Benchmark results: one json per ratio under results/bench/, and the README table over them.

python -m harness.bench --only probe --quick profile=smoke   # writes results/bench/probe_*.json

A Result is one ratio with its target (harness/DESIGN.md "Performance and memory targets") and the raw
figures it comes from; `write` adds the machine facts (CPU model, threads, library
versions, load average, date), since a ratio means little without the machine it was
taken on. The README table is rebuilt from every json in the folder, so `--only`
refreshes its own rows and keeps the others.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.timing import median
from harness.compute.device import cpu_name

# Table order: the order of harness/DESIGN.md's targets.
ORDER = ("opsd_vs_sdft", "opsd_vs_parts", "probe_share", "probe_batching", "memory_opsd_base",
         "memory_opsd_live", "memory_opsd_lora", "memory_real_vocab", "eval_batched", "parallel_jobs",
         "kernel")


@dataclass
class BenchArgs:
    """What the runner hands every benchmark: the composed config and its overrides (for
    subprocesses), the rounds asked for (None: the benchmark's own default), --quick."""

    cfg: Any  # harness.config.schema.RunConfig
    overrides: list[str]
    rounds: int | None
    quick: bool


@dataclass
class Target:
    op: str  # "<=" (the ratio must not exceed value) or ">="
    value: float

    def met(self, ratio: float) -> bool:
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass
class Result:
    """One ratio: `ratio_of` says which figure over which (e.g. 'opsd step / sdft step')."""

    name: str
    what: str  # one line: what is compared, on what
    ratio: float
    ratio_of: str
    target: Target | None  # None: informative, no target
    samples: dict[str, list[float]]  # per way, one figure per round (unit below)
    unit: str = "s"
    details: dict[str, Any] = field(default_factory=dict)
    limits: str = ""  # what limits the figure, where that can be told

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        return "pass" if self.target.met(self.ratio) else "miss"

    def line(self) -> str:
        target = f" (target {self.target})" if self.target else ""
        head = {"pass": "pass", "miss": "MISS", "info": "info"}[self.verdict]
        return f"{head} {self.name}: {self.ratio:.3g} = {self.ratio_of}{target}"


def machine() -> dict[str, Any]:
    import torch
    import transformers
    import trl

    facts = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
             "torch": torch.__version__, "transformers": transformers.__version__,
             "trl": trl.__version__, "python": platform.python_version(),
             "host": socket.gethostname(), "load_avg_1m": round(os.getloadavg()[0], 2),
             "date": datetime.datetime.now().isoformat(timespec="seconds")}
    if torch.cuda.is_available():
        facts["cuda_device"] = torch.cuda.get_device_name(0)
    return facts




def to_json(r: Result, context: dict[str, Any]) -> dict[str, Any]:
    rounds = len(next(iter(r.samples.values())))
    return {"name": r.name, "what": r.what, "ratio": r.ratio, "ratio_of": r.ratio_of,
            "target": str(r.target) if r.target else None,
            "verdict": r.verdict, "rounds": rounds, "unit": r.unit,
            "medians": {k: median(v) for k, v in r.samples.items()},
            "samples": r.samples, "details": r.details, "limits": r.limits,
            "target_parts": asdict(r.target) if r.target else None,
            "machine": machine(), **context}


def write(out: Path, r: Result, context: dict[str, Any]) -> Path:
    """results/bench/<name>.json, atomically (write then rename)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{r.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_json(r, context), indent=1) + "\n")
    tmp.replace(path)
    return path


def table(out: Path) -> str:
    """The Markdown table over every result json in `out`, in ORDER (others after)."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    rows.sort(key=lambda d: (ORDER.index(d["name"]) if d["name"] in ORDER else len(ORDER), d["name"]))
    lines = ["| benchmark | ratio | target | verdict | what | limits / notes | machine, date |",
             "|---|---|---|---|---|---|---|"]
    for d in rows:
        m = d["machine"]
        lines.append(f"| {d['name']} | {d['ratio']:.3g} ({d['ratio_of']}) | {d['target'] or '-'} | "
                     f"{d['verdict']} | {d['what']} | {d['limits'] or ''} | "
                     f"{m['cpu']}, {m['torch_threads']} thread(s), load {m['load_avg_1m']}, {m['date']} |")
    return "\n".join(lines) + "\n"


def write_readme(out: Path, command: str) -> Path:
    path = out / "README.md"
    text = ("# Benchmarks (`make bench`)\n\n"
            "Each ratio is measured side by side in one process (or, for memory, one fresh "
            "subprocess per configuration), in interleaved rounds; figures are medians over "
            "rounds. Targets: harness/DESIGN.md \"Performance and memory targets\". One json "
            "per row holds the raw figures and the machine facts.\n\n"
            f"Last command: `{command}`\n\n" + table(out))
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
