"""The table `make sweep` ends with: one row per run, final mismatch and Average@k per suite.

python -m harness.front.summary results/runs

Reads only run folders, through harness.runs.runinfo (state, final mismatch, eval.json); Δ is
versus the `base` run (the untrained base model) of the same results root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.runs.runinfo import FINAL_FRACTION, RunInfo, read_runs


def run_row(info: RunInfo) -> dict:
    return {"run": info.run, "state": info.state, "mismatch": info.final_mismatch(), "reason": info.reason,
            "exposure": info.exposure if info.is_fixed else None,
            "seed": info.seed if info.is_trained else None, "suites": info.suite_averages}


def print_summary(root: Path, names: list[str] | None = None) -> list[dict]:
    rows = [run_row(info) for info in read_runs(Path(root), names or None)]
    base = next((r["suites"] for r in rows if r["run"] == "base"), {})
    suites = list(next((r["suites"] for r in rows if r["suites"]), {}))
    w = max([22, *(len(r["run"]) + 2 for r in rows)])  # long ablation names keep the columns
    head = f"{'run':<{w}}{'state':<8}{'r':>6}{'seed':>5}{'KL(S||T)':>10}"
    head += "".join(f"{s:>22}" for s in suites)
    print(head)
    for r in rows:
        line = f"{r['run']:<{w}}{str(r['state']):<8}"
        line += f"{r['exposure']:>6g}" if r["exposure"] is not None else f"{'':>6}"
        line += f"{r['seed'] if r['seed'] is not None else '':>5}"
        line += f"{r['mismatch']:>10.4f}" if r["mismatch"] is not None else f"{'-':>10}"
        for s in suites:
            v = r["suites"].get(s)
            cell = "-" if v is None else f"{v:.3f}"
            if v is not None and s in base and r["run"] != "base":
                cell += f" ({v - base[s]:+.3f})"
            line += f"{cell:>22}"
        print(line)
    print("Average@k per suite; (Δ vs the base model); KL(S||T): mean mismatch of the last "
          f"{FINAL_FRACTION:.0%} of train steps")
    for r in rows:
        if r["state"] != "done":
            print(f"{r['run']} {r['state']}: {r['reason'] or 'no reason recorded'}")
    return rows


if __name__ == "__main__":
    from harness.runs.identity import DEFAULT_RESULTS

    print_summary(Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RESULTS))
