"""How much the base recipe depends on its seed: build it for several seeds, tabulate each.

python -m harness.models.base_spread --seeds 0,1,2 [hydra overrides]     # or: make base-spread

Each seed's model is built into the cache (reused when already there) and evaluated
like `make base` (student and teacher at r = .25 / .5 / 1, every suite). The closing
lines give the student's spread on each suite (max - min over seeds) and check the
recipe's spec on medium_k4: student in 15-70%, teacher at r = 1 >= 20 points above it.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.models.basecheck import table_values


def spread_rows(seeds: list[int], overrides: list[str]) -> list[dict]:
    from harness.config.settings import compose
    from harness.models.base import build

    rows = []
    for seed in seeds:
        cfg = compose([*overrides, f"base.seed={seed}"])
        path = build(cfg)
        seconds = json.loads((path / "build.json").read_text())["seconds"]
        values = table_values(path, cfg)
        rows.append({"seed": seed, "seconds": seconds, "path": str(path),
                     **{row: {s: v[0] for s, v in cells.items()} for row, cells in values.items()}})
        print(f"seed {seed}: built in {seconds:.0f} s at {path}", flush=True)
    return rows


def report(rows: list[dict], spec_suite: str = "medium_k4") -> str:
    student, t_half, t_full = "student (no reference)", "teacher r=0.5", "teacher r=1"
    suites = list(rows[0][student])
    head = "| seed | build s | " + " | ".join(f"student {s}" for s in suites)
    head += f" | teacher r=.5 {spec_suite} | teacher r=1 {spec_suite} |"
    lines = [head, "|" + "---|" * (len(suites) + 4)]
    for r in rows:
        cells = [f"{r[student][s]:.3f}" for s in suites]
        lines.append(f"| {r['seed']} | {r['seconds']:.0f} | " + " | ".join(cells)
                     + f" | {r[t_half][spec_suite]:.3f} | {r[t_full][spec_suite]:.3f} |")
    for s in suites:
        vals = [r[student][s] for r in rows]
        lines.append(f"student {s}: mean {sum(vals) / len(vals):.3f}, spread (max - min) "
                     f"{100 * (max(vals) - min(vals)):.1f} points")
    ok = [0.15 <= r[student][spec_suite] <= 0.70 and r[t_full][spec_suite] >= r[student][spec_suite] + 0.20
          for r in rows]
    lines.append(f"spec on {spec_suite} (student 15-70%, teacher r=1 >= student + 20 points): "
                 f"{sum(ok)}/{len(ok)} seeds meet it")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from harness.config.settings import fail
    from harness.front.sweep import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("overrides", nargs="*", help="hydra overrides of the base recipe")
    a = ap.parse_args(argv)
    try:
        seeds = parse_seeds(a.seeds)
        from harness.config.settings import compose

        compose(a.overrides)  # bad values: one line before any build
    except ValueError as err:
        fail(err)
    print(report(spread_rows(seeds, a.overrides)))


if __name__ == "__main__":
    main(sys.argv[1:])
