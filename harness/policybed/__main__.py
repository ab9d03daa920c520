"""The policy test bed's table: every source on every case, regret against the oracle.

python -m harness.policybed [--seeds 10] [--cases high_easy,low_easy] [--sources atesd,random]
                            [--meta 40] [--save-policy DIR]

Prints, per case, its oracle (best schedule and best fixed r, their c_T) and one line per
source: mean normalised regret with its 95% interval over seeds, the median decisions to get
within 10% of the best fixed r (and the share of seeds that did), and the late exposure.
With --meta N (default 40; 0: none) two more rows per case: ATESD starting from a policy
trained across N earlier runs of the case (harness/policybed/meta.py), frozen and continued;
--save-policy DIR keeps those weights as DIR/<case>.pt (controller.init_policy reads them).
Definitions: harness/policybed/runner.py; the cases: harness/policybed/cases.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from harness.policybed import sources
from harness.policybed.cases import C0, CASES, Case
from harness.policybed.meta import init_overrides, meta_train
from harness.policybed.oracle import Oracle, oracle
from harness.policybed.runner import Summary, summarise


def line(s: Summary) -> str:
    dec = "never" if s.decisions is None else f"{s.decisions:.0f} ({s.reached:.0%})"
    late_mean, late_sd = float(np.mean(s.late_r)), float(np.std(s.late_r))
    return f"| {s.source} | {s.regret:.3f} ± {s.regret_ci:.3f} | {dec} | {late_mean:.2f} ({late_sd:.2f}) |"


def meta_lines(case: Case, runs: int, seeds: list[int], orc: Oracle, save_dir: Path) -> list[str]:
    """ATESD from a policy trained across `runs` earlier runs: frozen, and learning on."""
    path = save_dir / f"{case.name}.pt"
    torch.save(meta_train(case, runs), path)
    out = []
    for frozen, how in ((True, "frozen"), (False, "continued")):
        s = summarise("atesd", case, seeds, init_overrides(path, frozen), orc)
        out.append(line(replace(s, source=f"atesd[trained across {runs} runs, {how}]")))
    return out


def table(case_names: list[str], source_names: list[str], seeds: list[int], meta: int = 0,
          save_dir: Path | None = None) -> str:
    out = []
    for cname in case_names:
        case = CASES[cname]
        orc = oracle(case, sources.total_steps())
        out += [f"\n### {cname}: {case.note}",
                f"oracle: best schedule c_T {orc.best_schedule_c:.3f}; best fixed r {orc.best_fixed_r:.3f}, "
                f"c_T {orc.best_fixed_c:.3f}, regret {orc.regret(orc.best_fixed_c):.3f} (c_0 {C0})", "",
                "| source | regret ± 95% CI | decisions to 10% of best fixed (seeds there) | late r (sd) |",
                "|---|---|---|---|"]
        out += [line(summarise(name, case, seeds, orc=orc)) for name in source_names]
        if meta:
            with tempfile.TemporaryDirectory() as tmp:
                out += meta_lines(case, meta, seeds, orc, save_dir or Path(tmp))
    return "\n".join(out)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..n-1 per source and case")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--sources", default=",".join(sources.SOURCES), help="comma list of bed source names")
    p.add_argument("--meta", type=int, default=40,
                   help="rows of ATESD trained across this many runs (0: none)")
    p.add_argument("--save-policy", type=Path, default=None,
                   help="keep the trained policies as DIR/<case>.pt")
    a = p.parse_args(argv)
    names = [s.strip() for s in a.sources.split(",") if s.strip()]
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    bad = [n for n in names if n not in sources.SOURCES] + [c for c in cases if c not in CASES]
    if bad:
        sys.exit(f"unknown source or case: {', '.join(bad)}")
    t0 = time.time()
    if a.save_policy:
        a.save_policy.mkdir(parents=True, exist_ok=True)
    print(table(cases, names, list(range(a.seeds)), a.meta, a.save_policy))
    print(f"\n{a.seeds} seeds per cell, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
