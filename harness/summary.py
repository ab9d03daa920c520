"""The table `make sweep` ends with: one row per run, final mismatch and Average@k per suite.

python -m harness.summary results/runs

Reads only run folders (status.json, metrics.jsonl, eval.json); Δ is versus the
`base` run (the untrained base model) of the same results root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.rundir import RunDir, read_json, read_jsonl

LAST_ROWS = 10  # "final" mismatch: mean over the last 10 optimiser steps (one step is noisy)


def final_mismatch(rd: RunDir) -> float | None:
    rows = [r for r in read_jsonl(rd.metrics_path) if r.get("kind") == "train"]
    vals = [r["mismatch_kl_st"] for r in rows[-LAST_ROWS:] if "mismatch_kl_st" in r]
    return sum(vals) / len(vals) if vals else None


def run_row(rd: RunDir) -> dict:
    status = rd.status() or {"state": "missing"}
    cfg_path = rd.path / "config.yaml"
    row = {"run": rd.path.name, "state": status.get("state"), "mismatch": final_mismatch(rd),
           "reason": status.get("reason", "")}
    if cfg_path.exists():
        import yaml

        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        fixed = (cfg.get("method") or {}).get("exposure_source") == "fixed"
        trained = (cfg.get("method") or {}).get("name") != "base"
        row["exposure"] = cfg.get("exposure") if fixed and trained else None
        row["seed"] = cfg.get("seed") if trained else None
    ev = rd.path / "eval.json"
    row["suites"] = {k: v["average"] for k, v in read_json(ev)["suites"].items()} if ev.exists() else {}
    return row


def print_summary(root: Path, names: list[str] | None = None) -> list[dict]:
    names = names or sorted(p.name for p in root.iterdir() if (p / "status.json").exists())
    rows = [run_row(RunDir(root / n)) for n in dict.fromkeys(names)]
    base = next((r["suites"] for r in rows if r["run"] == "base"), {})
    suites = list(next((r["suites"] for r in rows if r["suites"]), {}))
    w = max([22, *(len(r["run"]) + 2 for r in rows)])  # long ablation names keep the columns
    head = f"{'run':<{w}}{'state':<8}{'r':>6}{'seed':>5}{'KL(S||T)':>10}"
    head += "".join(f"{s:>22}" for s in suites)
    print(head)
    for r in rows:
        line = f"{r['run']:<{w}}{str(r['state']):<8}"
        line += f"{r.get('exposure') if r.get('exposure') is not None else '':>6}"
        line += f"{r.get('seed') if r.get('seed') is not None else '':>5}"
        line += f"{r['mismatch']:>10.4f}" if r["mismatch"] is not None else f"{'-':>10}"
        for s in suites:
            v = r["suites"].get(s)
            cell = "-" if v is None else f"{v:.3f}"
            if v is not None and s in base and r["run"] != "base":
                cell += f" ({v - base[s]:+.3f})"
            line += f"{cell:>22}"
        print(line)
    print("Average@k per suite; (Δ vs the base model); KL(S||T): mean mismatch of the last "
          f"{LAST_ROWS} steps")
    for r in rows:
        if r["state"] != "done":
            print(f"{r['run']} {r['state']}: {r['reason'] or 'no reason recorded'}")
    return rows


if __name__ == "__main__":
    print_summary(Path(sys.argv[1] if len(sys.argv) > 1 else "results/runs"))
