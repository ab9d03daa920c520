"""The regime search table: for each candidate setting, base, GRPO and OPSD at each r, and
whether the paper's ordering base < GRPO < OPSD r = 1 < some r < 1 holds.

python -m analysis.regime --results <root> [--results <root2> ...] [--seeds 0] [--out FILE.md]

A candidate is what the teacher is shown and how the student trains: the run's user tag
(e.g. `stepsans`: exposure by steps with the answer kept, which has its own base model) and its
gap label (harness/config/gap.py: horizon1, horizon1mix50, noisy2, ...). GRPO never sees a
reference, so a candidate's GRPO row is the GRPO run that trains the same student on the same
problems: the same tag and the same horizon (a noisy or leap reference leaves the student's
problems as at gap 0). Each cell is the mean Average@12 over the suites (%), averaged over the
seeds given, with their count; the search is descriptive (issue 29 item 3), its winner is
confirmed on fresh seeds under analysis/PREREGISTRATION.md. A candidate with its own base model
(exposure by steps with the answer kept changes the base recipe) needs its own results root, whose
base run is its `base`: several roots are read together, each candidate held against its root's base.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pandas as pd

from analysis.cli import AnalysisError, cli, emit
from analysis.collect import collect
from harness.config.gap import GapConfig

R_ARMS = (0.25, 0.5, 0.75, 1.0)


def gap_label(kind: object, level: object, share: object) -> str:
    if not isinstance(kind, str) or kind == "none":
        return ""
    share = 1.0 if share is None or (isinstance(share, float) and math.isnan(share)) else float(share)
    return GapConfig(kind=kind, level=int(level), share=share).label


def student_label(kind: object, level: object, share: object) -> str:
    """The gap as the student's training problems see it: only horizon changes them."""
    return gap_label(kind, level, share) if kind == "horizon" else ""


def joined(tag: str, gap: str) -> str:
    return " ".join(x for x in (tag, gap) if x) or "gap 0"


def run_means(roots: list[Path], seeds: list[int] | None) -> pd.DataFrame:
    """One row per finished run of every root: its mean Average@12 over suites (%), tag, gap, arm
    and root."""
    return pd.concat([root_means(root, seeds).assign(root=str(root)) for root in roots], ignore_index=True)


def root_means(root: Path, seeds: list[int] | None) -> pd.DataFrame:
    runs = collect(root).runs
    runs = runs[(runs["state"] == "done") & runs["average"].notna()]
    if seeds is not None:
        runs = runs[runs["seed"].isin(seeds)]
    if runs.empty:
        raise AnalysisError(f"no finished run with an evaluation under {root}"
                            + (f" for seeds {seeds}" if seeds is not None else ""))
    keys = ["run", "seed", "cfg.tag", "cfg.gap.kind", "cfg.gap.level", "cfg.gap.share", "cfg.method.name",
            "cfg.exposure"]
    for k in keys:
        if k not in runs:
            runs[k] = None
    out = runs.groupby("run", dropna=False).agg({**{k: "first" for k in keys[1:]}, "average": "mean"})
    out["score"] = 100 * out["average"]
    tag = out["cfg.tag"].fillna("").astype(str)
    gaps = list(zip(tag, out["cfg.gap.kind"], out["cfg.gap.level"], out["cfg.gap.share"]))
    out["candidate"] = [joined(t, gap_label(k, lv, sh)) for t, k, lv, sh in gaps]
    out["student"] = [joined(t, student_label(k, lv, sh)) for t, k, lv, sh in gaps]
    out["tag"] = tag
    out["arm"] = [arm(m, r) for m, r in zip(out["cfg.method.name"], out["cfg.exposure"])]
    return out.reset_index()


def arm(method: object, exposure: object) -> str:
    if method == "opsd":
        return f"r={float(exposure):g}"
    return str(method)


def cell(scores: pd.Series) -> tuple[float, str]:
    if scores.empty:
        return math.nan, "-"
    return float(scores.mean()), f"{scores.mean():.1f}" + (f" (n={len(scores)})" if len(scores) > 1 else "")


def candidate_rows(means: pd.DataFrame) -> list[dict]:
    """Per candidate: each arm's mean, the best r < 1 and the ordering's verdict."""
    rows = []
    for cand in sorted(set(means["candidate"]) - {""}):
        own = means[means["candidate"] == cand]
        student, root = own["student"].iloc[0], own["root"].iloc[0]
        base = means[(means["arm"] == "base") & (means["root"] == root)]  # the base model of its root
        grpo = means[(means["arm"] == "grpo") & (means["student"] == student) & (means["root"] == root)]
        fixed = {r: cell(own[own["arm"] == f"r={r:g}"]["score"]) for r in R_ARMS}
        if all(math.isnan(v) for v, _ in fixed.values()):
            continue
        b, g, r1 = cell(base["score"])[0], cell(grpo["score"])[0], fixed[1.0][0]
        partial = {r: v for r, (v, _) in fixed.items() if r < 1 and not math.isnan(v)}
        best_r = max(partial, key=partial.get) if partial else None
        best = partial.get(best_r, math.nan) if best_r is not None else math.nan
        rows.append({"candidate": cand, "base": cell(base["score"])[1], "GRPO": cell(grpo["score"])[1],
                     **{f"r={r:g}": text for r, (_, text) in fixed.items()},
                     "best r<1": f"{best_r:g}" if best_r is not None else "-",
                     "ordering": ordering(b, g, r1, best)})
    return rows


def ordering(base: float, grpo: float, r1: float, best_partial: float) -> str:
    """Which links of base < GRPO < OPSD r=1 < best r<1 hold, e.g. 'holds' or 'no: r=1 <= GRPO'."""
    if any(math.isnan(x) for x in (base, grpo, r1, best_partial)):
        return "incomplete"
    broken = [name for name, lo, hi in (("GRPO <= base", base, grpo), ("r=1 <= GRPO", grpo, r1),
                                        ("best r<1 <= r=1", r1, best_partial)) if not lo < hi]
    return "holds" if not broken else "no: " + ", ".join(broken)


def markdown(rows: list[dict]) -> str:
    cols = ["candidate", "base", "GRPO", *[f"r={r:g}" for r in R_ARMS], "best r<1", "ordering"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, action="append", help="a results root (repeatable)")
    ap.add_argument("--seeds", help="comma-separated seeds (default: all)")
    ap.add_argument("--out", help="also write the table here (markdown)")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else None
    emit(markdown(candidate_rows(run_means([Path(r) for r in a.results], seeds))), a.out)


if __name__ == "__main__":
    cli(main)
