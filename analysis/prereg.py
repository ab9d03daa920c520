"""The pre-registered analysis (analysis/PREREGISTRATION.md, 2026-12-04): seed-paired
differences, Holm within each claim, margins fixed in advance, a verdict rule that treats
"holds" and "does not hold" alike, and the number of tests each verdict rests on.

python -c "from analysis.prereg import paired_test; print(paired_test({0: 70, 1: 72}, {0: 60, 1: 65}))"

Why paired by seed: the seed fixes the training problem stream and the step-1 rollouts
(harness training_problems draws from cfg.seed), and at horizon2 every teacher-based arm
ranks its seeds alike (audit finding 4), so two arms' runs of one seed are a block, not
independent samples. A seed present on one side only is left out of the test and named
(`unpaired`), never silently averaged in.

Each contrast is a paired difference d (in the claim's direction: positive = as claimed)
against a margin delta: "for" tests H0 mean(d) <= delta against mean(d) > delta, "against"
tests H0 mean(d) >= delta against mean(d) < delta, each one-sided at ALPHA_ONE_SIDED = 0.025
(the two together are the two-sided 95% interval), each Holm-adjusted over the claim's
contrasts. A claim says how its deciding contrasts combine: `all` (it holds when every one
holds; it does not hold when one does not) or `any` (it holds when one holds; it does not
hold when every one does not). Each pair of rules is one statement and its exact negation,
each shown at family-wise 0.025, so neither verdict is easier to reach than the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN

PLAN_DATE = "2026-12-04"
ALPHA_ONE_SIDED = 0.025  # per direction: together the two-sided 0.05 of the 95% intervals
NON_INFERIORITY_MARGIN = 3.0  # points of mean Average@12: (c) holds when ATESD >= tuned r - 3
ALL, ANY = "all", "any"


# ---- the plan, as data ------------------------------------------------------------------------
@dataclass(frozen=True)
class ContrastPlan:
    """One planned contrast: d = treatment - baseline (per seed), tested against `margin`."""

    name: str
    margin: float = 0.0  # 0: superiority; -3: non-inferiority by 3 points
    decides: bool = True  # False: secondary, reported and Holm-counted, not in the verdict


@dataclass(frozen=True)
class ClaimPlan:
    key: str
    endpoint: str
    primary: str
    combine: str  # ALL or ANY over the deciding contrasts
    note: str = ""


PLAN: dict[str, ClaimPlan] = {
    "a": ClaimPlan("a", "final KL(S||T) of each fixed-exposure OPSD run",
                   "each adjacent exposure pair (r_next - r): KL rises, margin 0", ALL),
    "g-a": ClaimPlan("g-a", "final KL(S||T), per gap level",
                     "each adjacent exposure pair at each level, margin 0", ALL),
    "b": ClaimPlan("b", "mean Average@12 over suites",
                   "each r in {0.25, 0.5, 0.75} minus r = 1, margin 0 (r = 0 is no training: left "
                   "out)", ANY, "per-suite contrasts are secondary and do not enter the verdict"),
    "g-b": ClaimPlan("g-b", "mean Average@12 over suites, per gap level",
                     "each r in {0.25, 0.5, 0.75} minus r = 1 at each level, margin 0 (r = 0 left out)",
                     ANY, "Holm over every level's contrasts together"),
    "c": ClaimPlan("c", "mean Average@12 over suites",
                   f"ATESD minus the tuned fixed r, non-inferiority margin {NON_INFERIORITY_MARGIN:g} "
                   "points (deciding); ATESD minus OPSD r = 1 and minus GRPO, margin 0 (secondary)", ALL,
                   "Holm over the three"),
    "g-c": ClaimPlan("g-c", "mean Average@12 over suites, at a gap level",
                     f"ATESD minus the map's best fixed r, non-inferiority margin "
                     f"{NON_INFERIORITY_MARGIN:g} (deciding); minus OPSD r = 1 (the paper's "
                     "comparison) and minus GRPO, margin 0 (secondary)", ALL,
                     "the best fixed r is chosen on the same runs (favours the baseline)"),
    "g-ref": ClaimPlan("g-ref", "mean Average@12 over suites",
                       "own reference minus shuffled at each level and r that has both, margin 0", ALL),
}
EXCLUDED_EXPOSURES = (0.0,)  # claim (b): OPSD at r = 0 leaves the student at the base model


# ---- statistics -----------------------------------------------------------------------------------
@dataclass
class PairedTest:
    """A seed-paired difference against a margin: its mean, 95% interval and one-sided p's."""

    name: str
    margin: float
    n: int
    mean: float
    low: float
    high: float
    p_for: float  # H1: mean(d) > margin
    p_against: float  # H1: mean(d) < margin
    unpaired: tuple[int, ...] = ()  # seeds on one side only (left out)
    decides: bool = True
    digits: int = 1  # shown decimals: 1 for Average@k points, 4 for a KL
    p_for_holm: float = math.nan
    p_against_holm: float = math.nan

    @property
    def verdict(self) -> str:
        """This contrast alone, on its Holm-adjusted p's."""
        if self.n == 0:
            return NOT_RUN
        if self.p_for_holm < ALPHA_ONE_SIDED:
            return HOLDS
        return FAILS if self.p_against_holm < ALPHA_ONE_SIDED else INCONCLUSIVE


def paired_test(treatment: Mapping[int, float], baseline: Mapping[int, float], margin: float = 0.0,
                name: str = "", decides: bool = True) -> PairedTest:
    """Paired t on d_s = treatment[s] - baseline[s] over the seeds both sides have:
    t = (mean(d) - margin) / (sd(d) / sqrt(n)), n - 1 degrees of freedom. With n < 2 the p's
    are NaN (no test); with sd = 0 they are 0 or 1 by the sign of mean(d) - margin."""
    seeds = sorted(set(treatment) & set(baseline))
    unpaired = tuple(sorted(set(treatment) ^ set(baseline)))
    d = np.array([treatment[s] - baseline[s] for s in seeds], dtype=float)
    n = len(d)
    if n == 0:
        nan = math.nan
        return PairedTest(name, margin, 0, nan, nan, nan, nan, nan, unpaired, decides)
    mean = float(d.mean())
    if n < 2:
        return PairedTest(name, margin, 1, mean, math.nan, math.nan, math.nan, math.nan, unpaired, decides)
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        above = mean > margin
        below = mean < margin
        return PairedTest(name, margin, n, mean, mean, mean, 0.0 if above else 1.0, 0.0 if below else 1.0,
                          unpaired, decides)
    t = (mean - margin) / se
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return PairedTest(name, margin, n, mean, mean - half, mean + half, float(stats.t.sf(t, n - 1)),
                      float(stats.t.cdf(t, n - 1)), unpaired, decides)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p's (NaN counts as 1): the i-th smallest p times (m - i + 1),
    made non-decreasing in that order, capped at 1."""
    p = [1.0 if math.isnan(x) else float(x) for x in p_values]
    m = len(p)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p[j])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


# ---- the verdict --------------------------------------------------------------------------------
@dataclass
class PreregVerdict:
    key: str
    verdict: str
    tests: list[PairedTest] = field(default_factory=list)
    combine: str = ALL

    @property
    def n_tests(self) -> int:
        """The Holm family: every contrast of the claim that was run."""
        return sum(t.n > 0 for t in self.tests)

    @property
    def n_deciding(self) -> int:
        return sum(t.n > 0 and t.decides for t in self.tests)

    def summary(self) -> str:
        return (f"{self.verdict} (rests on {self.n_deciding} deciding test(s), Holm over "
                f"{self.n_tests}; {self.combine})")


def combine(verdicts: Sequence[str], how: str) -> str:
    """The claim from its deciding contrasts' verdicts: ALL or ANY, each with its exact negation."""
    run = [v for v in verdicts if v != NOT_RUN]
    if not run:
        return NOT_RUN
    if how == ALL:
        return FAILS if FAILS in run else HOLDS if all(v == HOLDS for v in run) else INCONCLUSIVE
    if how == ANY:
        return HOLDS if HOLDS in run else FAILS if all(v == FAILS for v in run) else INCONCLUSIVE
    raise ValueError(f"combine={how!r}: one of {ALL}, {ANY}")


def decide(key: str, tests: Sequence[PairedTest], how: str) -> PreregVerdict:
    """Holm-adjust the run tests' p's (each direction over the same family; written into the
    tests' p_*_holm), then combine the deciding ones."""
    run = [t for t in tests if t.n > 0]
    for direction in ("p_for", "p_against"):
        for t, adj in zip(run, holm([getattr(t, direction) for t in run])):
            setattr(t, f"{direction}_holm", adj)
    deciding = [t.verdict for t in tests if t.decides]
    if run:  # a planned contrast with a side missing is no pass: it keeps ALL from holding and
        # ANY from failing, as a missing number should
        deciding = [INCONCLUSIVE if v == NOT_RUN else v for v in deciding]
    return PreregVerdict(key, combine(deciding, how), list(tests), how)


# ---- formatting -------------------------------------------------------------------------------------
def contrast_row(t: PairedTest) -> list[str]:
    digits = t.digits
    if t.n == 0:
        return [t.name, f"{t.margin:+g}", "0", "-", "-", "-", NOT_RUN]
    ci = "no CI (1 pair)" if math.isnan(t.low) else f"[{t.low:+.{digits}f}, {t.high:+.{digits}f}]"
    flags = f"; unpaired seeds left out: {', '.join(map(str, t.unpaired))}" if t.unpaired else ""
    role = "" if t.decides else " (secondary)"
    return [t.name + role, f"{t.margin:+g}", str(t.n) + flags, f"{t.mean:+.{digits}f} {ci}",
            f"{t.p_for_holm:.3g}", f"{t.p_against_holm:.3g}", t.verdict]


HEAD = ["contrast (d = treatment − baseline, per seed)", "margin", "pairs", "mean d [95% paired CI]",
        "Holm p (for)", "Holm p (against)", "verdict"]
