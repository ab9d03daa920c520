"""The paper's claims against the runs of a results root: statement, our numbers (95% CIs over
seeds), a verdict by a stated rule, and the command that regenerates it, as Markdown.

python -m analysis.claims --results results/reproduce [--out FILE.md] [--group-by KEYS]
(or `python analysis/claims.py ...`; make reproduce writes <results>/tables/claims.md)

(a) the final mismatch KL(S||T) (harness.runs.runinfo: mean over the last quarter of the train
    rows) rises monotonically with the fixed exposure r; also the probe at its first step
    on the OPSD (r = 1) runs; (b) full exposure is not reliably best, over the mean of the
    suites and per suite (easy -> hard, analysis/difficulty.py); (c) ATESD (both rewards)
    beats OPSD r = 1, the tuned fixed r and GRPO; (d) the live teacher collapses (against
    the frozen base teacher at the same r). Scores are Average@k in percent, a run's mean
    over suites unless a suite is named. Rules: analysis/verdicts.py RULES, quoted in the
    text. A comparison whose runs are missing says "not run"; none is dropped.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and not __package__:  # `python analysis/<x>.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
import pandas as pd

from analysis.claim_data import Select, fixed_mismatch, probe_points, run_scores, trajectory
from analysis.cli import cli, group_keys, parse
from analysis.collect import collect, run_info
from analysis.comparable import split_comparable
from analysis.difficulty import suite_order
from analysis.prereg import PreregVerdict
from analysis.prereg_claims import (
    beats_tests,
    full_not_best_tests,
    prereg_claim,
    prereg_lines,
    rising_tests,
)
from analysis.stats import mean_ci, spearman_with_permutation_p
from analysis.tables import MEAN
from analysis.verdicts import (
    NOT_RUN,
    RULES,
    Diff,
    all_verdict,
    any_view_verdict,
    collapse_verdict,
    diff_verdict,
    full_not_best_verdict,
    monotone_verdict,
    welch_diff,
)
from harness.runs.runinfo import ST

# Which make reproduce stages make each claim's runs (names of harness.front.reproduce.STAGES).
STAGES = {"a": ("atesd_vs_fixed",), "b": ("atesd_vs_fixed",),
          "c": ("atesd_vs_fixed", "controller_ablations", "tune", "paper_table"),
          "d": ("atesd_vs_fixed", "teacher_modes"), "e": ("tune", "paper_table")}
ATESD_VARIANTS = (Select("ATESD (val-accuracy reward)", "atesd"),
                  Select("ATESD (paper reward)", "atesd", "paper_reward"))
BASELINES = (Select("OPSD (r = 1)", "opsd", exposure=1.0), Select("tuned fixed r", "opsd", "tuned"),
             Select("GRPO", "grpo"))
# Exposure policies that no paper has (harness/sources/target_mismatch.py, per_problem.py)
NEW_SOURCES = (Select("target mismatch", "target_mismatch"), Select("per-problem r", "per_problem"),
               Select("per-problem r + AntiSD", "per_problem_antisd"))
TEACHER_RS = (0.5, 1.0)
VIEW_NAMES = {MEAN: "mean over suites"}


@dataclass
class Claim:
    key: str
    title: str
    paper: str
    verdict: str
    body: list[str]  # Markdown lines: our numbers
    rule: str
    prereg: PreregVerdict | None = None  # the pre-registered verdict (analysis/prereg.py), shown first

    @property
    def verdict_cells(self) -> list[str]:
        """[pre-registered verdict with its test count, the Welch rule's verdict]."""
        first = self.prereg.summary() if self.prereg else "not in the plan"
        return [f"**{first}**", self.verdict]

    def lines(self) -> list[str]:
        """The claim's section: statement, the pre-registered verdict and table, then the Welch body."""
        pre = [*prereg_lines(self.prereg), ""] if self.prereg else []
        return ["", f"### ({self.key}) {self.title}", "", f"**Statement:** {self.paper}.", "", *pre,
                "**Ours (Welch rule, as before the plan):**", "", *self.body, "",
                f"**Verdict (Welch rule): {self.verdict}.** Rule: {self.rule}."]


VERDICT_HEAD = ["claim", "pre-registered verdict (tests)", "verdict (Welch rule)"]


# ---- formatting ---------------------------------------------------------------------------------
def ci_text(values, digits: int = 1) -> str:
    mean, half, n = mean_ci(list(values))
    if n == 0:
        return "-"
    mean = 0.0 if abs(mean) < 0.5 * 10 ** -digits else mean  # no "-0.0000"
    spread = f" ± {half:.{digits}f}" if n > 1 else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def diff_text(d: Diff, digits: int = 1) -> str:
    if not d.run:
        return "-"
    if math.isnan(d.half):
        return f"{d.diff:+.{digits}f} (no CI: < 2 runs a side)"
    return f"{d.diff:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows)]


# ---- (a) mismatch against exposure ----------------------------------------------------------------
def trend(points: pd.DataFrame, x: str, y: str) -> tuple[str, list[str]]:
    """Verdict and table of y against x: per-x mean ± CI, Spearman rho, every pairwise drop."""
    groups = {r: g[y].tolist() for r, g in points.groupby(x)}
    xs = sorted(groups)
    if len(xs) < 2:
        return NOT_RUN, [f"fewer than 2 exposures with finished runs (have {len(xs)})"]
    means = [float(np.mean(groups[r])) for r in xs]
    rho, p = (spearman_with_permutation_p(points[x].to_numpy(), points[y].to_numpy())
              if len(points) >= 3 and points[y].nunique() > 1 else (math.nan, math.nan))
    drops = [welch_diff(groups[b], groups[a]) for i, a in enumerate(xs) for b in xs[i + 1:]]
    rows = [[f"{r:g}", ci_text(groups[r], 4)] for r in xs]
    lines = table(["r", "KL(S‖T), mean ± 95% CI"], rows)
    sig = [f"r = {b:g} below r = {a:g}: {diff_text(welch_diff(groups[b], groups[a]), 4)}"
           for i, a in enumerate(xs) for b in xs[i + 1:] if welch_diff(groups[b], groups[a]).high < 0]
    rising = "rise strictly" if all(b > a for a, b in zip(means, means[1:])) else "do not rise strictly"
    lines += ["", f"Spearman rho = {rho:+.2f}, permutation p = {p:.2g} ({len(points)} runs); means {rising}"
              + (f"; significant drops: {'; '.join(sig)}" if sig else "; no significant drop")]
    return monotone_verdict(means, rho, p, drops), lines


def claim_a(info: pd.DataFrame, metrics: pd.DataFrame) -> Claim:
    points = fixed_mismatch(info)
    verdict, body = trend(points, "exposure", ST)
    body = ["Final KL(S‖T) of each finished fixed-exposure OPSD run (mean over its last quarter of "
            "train rows), over seeds:", "", *body]
    probe, step = probe_points(info, metrics)
    if len(probe):
        p_verdict, p_body = trend(probe, "probe_exposure", ST)
        body += ["", f"The probe at step {step} on the OPSD (r = 1) runs' rollouts (the base model's own "
                 f"rollouts at step 1), every exposure on the same rollouts; same rule: **{p_verdict}**.",
                 "", *p_body]
    else:
        body += ["", "No probe rows (probe.every = 0 or no finished OPSD r = 1 run)."]
    return Claim("a", "The mismatch grows monotonically with exposure",
                 "the ATESD paper: the student-teacher mismatch grows monotonically with the exposure r (its "
                 "sweep finding 2)",
                 verdict, body, RULES["monotone"], prereg_claim("a", rising_tests(points, ST)))


# ---- (b) full exposure is not reliably best -------------------------------------------------------
def view_row(scores: pd.DataFrame, column: str) -> tuple[str, list[str]]:
    """One view (a suite, or the mean over suites): verdict and its table row."""
    fixed = scores[Select("", "opsd").mask(scores) & scores["exposure"].notna()]
    by_r = {float(r): g[column].tolist() for r, g in fixed.groupby("exposure")}
    others = {r: v for r, v in by_r.items() if r < 1.0}
    full = by_r.get(1.0, [])
    diffs = {r: welch_diff(v, full) for r, v in others.items()}
    verdict = full_not_best_verdict(list(diffs.values())) if full and others else NOT_RUN
    means = {r: float(np.mean(v)) for r, v in by_r.items()}
    top = max(means.values()) if means else math.nan
    best = "/".join(f"{r:g}" for r in sorted(means) if means[r] >= top - 1e-9) or "-"
    runner = max(others, key=lambda r: means[r]) if others else None
    if runner is None:
        return verdict, [VIEW_NAMES.get(column, column), ci_text(full), "-", "-", best, verdict]
    return verdict, [VIEW_NAMES.get(column, column), ci_text(full), f"{runner:g}: {ci_text(others[runner])}",
                     diff_text(diffs[runner]) if full else "-", best, verdict]


def fixed_opsd_runs(scores: pd.DataFrame) -> pd.DataFrame:
    """The untagged fixed-exposure OPSD runs (claim (b)'s sweep)."""
    return scores[Select("", "opsd").mask(scores) & scores["exposure"].notna()] if len(scores) else scores


def claim_b(runs: pd.DataFrame, scores: pd.DataFrame, suites: list[str]) -> Claim:
    verdicts, rows = [], []
    for column in [MEAN, *suite_order(runs, suites)]:
        v, row = view_row(scores, column)
        verdicts.append(v)
        rows.append(row)
    head = ["view", "r = 1", "best r < 1 (top mean)", "Δ best r < 1 − r = 1 [95% CI]", "best r", "verdict"]
    body = ["Average@k (%) of the fixed-exposure OPSD runs, mean ± 95% CI over seeds; suites easy → hard. "
            "The verdict of a view weighs every r < 1 against r = 1, not only the top one.", "",
            *table(head, rows)]
    return Claim("b", "Full exposure is not reliably best (overall and per difficulty)",
                 "the ATESD paper: full exposure (r = 1) is not reliably the best choice (its sweep "
                 "finding 1); easy problems prefer a high exposure and hard ones a low one",
                 any_view_verdict(verdicts), body,
                 RULES["full_not_best"], prereg_claim("b", full_not_best_tests(fixed_opsd_runs(scores))))


# ---- (c) ATESD against the baselines --------------------------------------------------------------
def comparison_row(scores: pd.DataFrame, variant: Select, baseline: Select) -> tuple[str, list[str]]:
    a, b = variant.values(scores, MEAN), baseline.values(scores, MEAN)
    d = welch_diff(a, b)
    verdict = diff_verdict(d)
    missing = [s.describe() for s, v in ((variant, a), (baseline, b)) if not v]
    shown = f"{NOT_RUN} (no finished {' or '.join(missing)})" if missing else verdict
    name = f"{variant.label} − {baseline.name_in(scores)}"
    return verdict, [name, ci_text(a), ci_text(b), diff_text(d), shown]


def beats(scores: pd.DataFrame, variant: Select, baselines: tuple[Select, ...]) -> tuple[str, list[str]]:
    """The claim's verdict (all comparisons) and its body: one Welch row per baseline."""
    verdicts, rows = [], []
    for baseline in baselines:
        v, row = comparison_row(scores, variant, baseline)
        verdicts.append(v)
        rows.append(row)
    head = ["comparison", "method", "baseline", "Δ mean Average@k [95% Welch CI]", "verdict"]
    body = ["Average@k (%), mean over the suites per run, then mean ± 95% CI over seeds; Δ: "
            "difference of the means, Welch interval (runs of two methods are independent "
            "samples: a shared seed number is no shared trajectory).", "", *table(head, rows)]
    return all_verdict(verdicts), body


def claim_c(scores: pd.DataFrame) -> list[Claim]:
    out = []
    for i, variant in enumerate(ATESD_VARIANTS, 1):
        verdict, body = beats(scores, variant, BASELINES)
        tuned, opsd_full, grpo = BASELINES[1], BASELINES[0], BASELINES[2]
        pre = prereg_claim("c", beats_tests(scores, variant, tuned, opsd_full, grpo))
        out.append(Claim(f"c{i}", f"{variant.label} beats OPSD r = 1, the tuned fixed r and GRPO",
                         "the ATESD paper: ATESD improves Average@12 over OPSD (+0.95 / +2.05 / +2.33 on "
                         "Qwen3-1.7B / 4B / 8B); checked here also against the tuned fixed r and GRPO",
                         verdict, body, RULES["diff"] + ". Claim: " + RULES["all"], pre))
    return out


def claim_e(scores: pd.DataFrame) -> list[Claim]:
    out = []
    for i, variant in enumerate(NEW_SOURCES, 1):
        verdict, body = beats(scores, variant, BASELINES[:2])
        out.append(Claim(f"e{i}", f"{variant.label} beats OPSD r = 1 and the tuned fixed r",
                         "no paper's: this project's exposure policies from its own observables "
                         "(the probe curve inverted at a target mismatch; a record per problem)",
                         verdict, body, RULES["diff"] + ". Claim: " + RULES["all"]))
    return out


# ---- (d) the live teacher collapses ---------------------------------------------------------------
def claim_d(scores: pd.DataFrame, metrics: pd.DataFrame) -> Claim:
    base_model = Select("base model", "base").values(scores, MEAN)
    b0 = float(np.mean(base_model)) if base_model else math.nan
    verdicts, rows, curves = [], [], []
    for r in TEACHER_RS:
        modes = {m: Select(m, "opsd", None if m == "base" else m, r) for m in ("base", "live", "ema")}
        vals = {m: s.values(scores, MEAN) for m, s in modes.items()}
        live = welch_diff(vals["live"], vals["base"])
        mean, half, _ = mean_ci(vals["live"])
        v = collapse_verdict(live, mean, half, b0) if vals["base"] else NOT_RUN
        verdicts.append(v)
        rows.append([f"{r:g}", ci_text(vals["base"]), ci_text(vals["live"]), diff_text(live),
                     ci_text(vals["ema"]), diff_text(welch_diff(vals["ema"], vals["base"])), v])
        curves += [[f"{r:g}", m, *trajectory(scores, metrics, s)] for m, s in modes.items()]
    head = ["r", "base teacher", "live teacher", "Δ live − base [95% CI]", "EMA teacher",
            "Δ EMA − base [95% CI]", "verdict (live)"]
    body = [f"Average@k (%), mean over suites per run, mean ± 95% CI over seeds. Untrained base model: "
            f"{'-' if math.isnan(b0) else f'{b0:.1f}'}.", "", *table(head, rows), "",
            "Trajectories: mean over seeds of each quarter of training (train rows), Q1 → Q4:", "",
            *table(["r", "teacher", "KL(S‖T)", "teacher entropy (nats)"], curves)]
    return Claim("d", "The live teacher collapses",
                 "not the paper's but this project's (the prototype's finding, harness/DESIGN.md; why "
                 "teacher.mode=base is the default): with the live student as its own teacher, "
                 "self-distillation collapses, the frozen base teacher is the stable choice",
                 all_verdict(verdicts), body,
                 RULES["collapse"] + ". Claim: " + RULES["all"])


# ---- the report -----------------------------------------------------------------------------------
def claims_of(runs: pd.DataFrame, metrics: pd.DataFrame) -> list[Claim]:
    scores, suites = run_scores(runs)
    info = run_info(runs)
    return [claim_a(info, metrics), claim_b(runs, scores, suites), *claim_c(scores), claim_d(scores, metrics),
            *claim_e(scores)]


def regenerate(key: str, results: str) -> str:
    stages = ",".join(STAGES[key[0]])
    return (f"`python -m harness.front.reproduce --results {results} --only {stages}` "
            f"(then `python -m analysis.claims --results {results}`)")


def render(claims: list[Claim], results: str, label: str = "") -> str:
    where = f" ({label})" if label else ""
    lines = [f"## The paper's claims against these runs{where}", "",
             f"Generated by `python -m analysis.claims --results {results}` from the run folders; "
             "the pre-registered verdict (analysis/PREREGISTRATION.md: seed-paired, Holm within the "
             "claim, margins fixed in advance) comes first; the Welch rule's verdict (analysis/verdicts.py) "
             "is kept beside it.", "",
             *table(VERDICT_HEAD, [[f"({c.key}) {c.title}", *c.verdict_cells] for c in claims])]
    for c in claims:
        lines += [*c.lines(), "", f"**Regenerate:** {regenerate(c.key, results)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    a = parse(argv, __doc__, out="Markdown file to write (then only the verdicts are printed)")
    col = collect(a.results, refresh=a.refresh)
    text = ""
    for label, runs in split_comparable(col.runs, group_keys(a.group_by)):
        text += render(claims_of(runs, col.metrics[col.metrics["run"].isin(runs["run"])]), a.results, label)
    if not a.out:
        print(text, end="")
        return
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print("\n".join(ln for ln in text.splitlines() if ln.startswith("| (")))  # the verdicts
    print(f"wrote {a.out}")


if __name__ == "__main__":
    cli(main)
