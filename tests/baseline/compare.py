"""python tests/baseline/compare.py BEFORE AFTER: are the runs of two trees the same run for run?

Written with tests/baseline/make.sh: 15 runs (12 smoke: every source and loss, a steps-unit
cut, an EMA teacher, a composition; 2 on the shipped default base; ATESD on 2 processes).
For every run folder under BEFORE: metrics.jsonl row for row (timing keys left out; keys
AFTER adds, such as exposure_spread, allowed), eval.json (timing left out) and
eval_samples.jsonl byte for byte. Prints the differences and a count; exit 1 on any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMING = {"wall_time", "ctrl_seconds", "seconds"}  # wall clock: never equal between two runs


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in path.read_text().splitlines()]


def untimed(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING}


def differences(before: Path, after: Path) -> tuple[int, list[str]]:
    out, n = [], 0
    for metrics in sorted(before.rglob("metrics.jsonl")):
        rel = metrics.parent.relative_to(before)
        other = after / rel
        if not other.is_dir():
            out.append(f"missing {rel}")
            continue
        n += 1
        a, b = rows(metrics), rows(other / "metrics.jsonl")
        bad = [(i, k) for i, (x, y) in enumerate(zip(a, b)) for k in x if x[k] != y.get(k, "<absent>")]
        if len(a) != len(b) or bad:
            out.append(f"metrics differ in {rel}: {len(a)} vs {len(b)} rows, first keys {bad[:5]}")
        if untimed(metrics.parent / "eval.json") != untimed(other / "eval.json"):
            out.append(f"eval.json differs in {rel}")
        samples = "eval_samples.jsonl"
        if (metrics.parent / samples).read_bytes() != (other / samples).read_bytes():
            out.append(f"eval_samples.jsonl differs in {rel}")
    return n, out


if __name__ == "__main__":
    n, found = differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(found + [f"{n} runs compared, {len(found)} differences"]))
    sys.exit(1 if found else 0)
