"""The pre-registered statistics (analysis/prereg.py) against numbers worked out by hand, and the
plan applied to the committed gap-map table against the science audit's seed-paired figures.

python -m pytest -q tests/test_prereg.py

Hand values use the t distribution with 2 degrees of freedom, whose CDF has a closed form:
F(t) = 1/2 + t / (2 sqrt(2 + t^2)); t_{0.975, 2} = 4.302653.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.claim_data import Select
from analysis.prereg import (
    ALL,
    ANY,
    PLAN,
    PLAN_DATE,
    combine,
    decide,
    holm,
    paired_test,
)
from analysis.prereg_claims import beats_tests, full_not_best_tests, seed_values
from analysis.summary_runs import parse_row, read_summaries, split_tag
from analysis.tables import MEAN
from analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN

ROOT = Path(__file__).resolve().parent.parent
T975_DF2 = 4.302653


def sf_df2(t: float) -> float:
    """P(T > t) for 2 degrees of freedom, in closed form."""
    return 0.5 - t / (2 * math.sqrt(2 + t * t))


# ---- the paired t ------------------------------------------------------------------------------
def test_paired_t_by_hand():
    # d = 2, 5, 2: mean 3, sd sqrt(3), se 1, t = 3 on 2 df
    t = paired_test({0: 10, 1: 14, 2: 12}, {0: 8, 1: 9, 2: 10})
    assert (t.n, t.mean) == (3, pytest.approx(3.0))
    assert t.p_for == pytest.approx(sf_df2(3.0)) == pytest.approx(0.047733, abs=1e-6)
    assert t.p_against == pytest.approx(1 - 0.047733, abs=1e-6)
    assert (t.low, t.high) == (pytest.approx(3 - T975_DF2, abs=1e-5), pytest.approx(3 + T975_DF2, abs=1e-5))


def test_a_non_inferiority_margin_shifts_the_test():
    # same d, margin -3: t = (3 + 3) / 1 = 6, p = 0.5 - 6 / (2 sqrt 38) = 0.013336
    t = paired_test({0: 10, 1: 14, 2: 12}, {0: 8, 1: 9, 2: 10}, margin=-3.0)
    assert t.p_for == pytest.approx(0.013336, abs=1e-6)
    assert t.mean == pytest.approx(3.0)  # the interval is of d itself, not of d - margin


def test_unpaired_seeds_are_left_out_and_named():
    t = paired_test({0: 1.0, 1: 2.0, 3: 5.0}, {0: 0.0, 1: 0.0, 2: 9.0})
    assert t.n == 2 and t.unpaired == (2, 3) and t.mean == pytest.approx(1.5)
    one = paired_test({0: 1.0}, {0: 0.0, 1: 3.0})
    assert one.n == 1 and math.isnan(one.p_for) and math.isnan(one.low)
    assert paired_test({}, {0: 1.0}).n == 0


def test_zero_spread_gives_a_sure_sign():
    up = paired_test({0: 3.0, 1: 4.0}, {0: 1.0, 1: 2.0})  # d = 2, 2
    assert (up.p_for, up.p_against) == (0.0, 1.0)
    tie = paired_test({0: 3.0, 1: 4.0}, {0: 3.0, 1: 4.0})
    assert (tie.p_for, tie.p_against) == (1.0, 1.0)


# ---- Holm -----------------------------------------------------------------------------------------
def test_holm_worked_example():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([float("nan"), 0.01]) == pytest.approx([1.0, 0.02])  # no test counts as p = 1
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


# ---- the symmetric verdict and its test count ------------------------------------------------------
STRONG = ({0: 16.0, 1: 19.0, 2: 16.0}, {0: 10.0, 1: 10.0, 2: 10.0})  # d = 6, 9, 6: t = 7, p = 0.009902
NULL = ({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 3.0, 2: 2.0})  # d = 0, -1, 1: t = 0


def test_the_rule_is_symmetric_both_ways():
    assert sf_df2(7.0) == pytest.approx(0.009902, abs=1e-6)
    holds = decide("x", [paired_test(*STRONG)], ALL)
    fails = decide("x", [paired_test(*reversed(STRONG))], ALL)  # the mirrored contrast
    assert (holds.verdict, fails.verdict) == (HOLDS, FAILS)
    assert holds.tests[0].p_for_holm == pytest.approx(fails.tests[0].p_against_holm)
    assert holds.summary() == "holds (rests on 1 deciding test(s), Holm over 1; all)"


def test_holm_counts_each_contrast_of_the_claim():
    # Holm over 2: 2 x 0.009902 = 0.0198 < 0.025 holds; over 3: 0.0297 does not
    two = decide("x", [paired_test(*STRONG), paired_test(*NULL)], ANY)
    three = decide("x", [paired_test(*STRONG), paired_test(*NULL), paired_test(*NULL)], ANY)
    assert two.tests[0].p_for_holm == pytest.approx(2 * 0.009902, abs=1e-6)
    assert (two.verdict, three.verdict) == (HOLDS, INCONCLUSIVE)
    assert (three.n_deciding, three.n_tests) == (3, 3)


def test_secondary_contrasts_are_counted_but_do_not_decide():
    v = decide("x", [paired_test(*STRONG), paired_test(*reversed(STRONG), decides=False)], ALL)
    assert v.verdict == HOLDS and (v.n_deciding, v.n_tests) == (1, 2)
    assert v.tests[1].verdict == FAILS  # reported, Holm-adjusted, not in the verdict


def test_all_and_any_are_each_others_negation():
    assert combine([HOLDS, HOLDS], ALL) == HOLDS and combine([HOLDS, FAILS], ALL) == FAILS
    assert combine([HOLDS, INCONCLUSIVE], ALL) == INCONCLUSIVE
    assert combine([FAILS, HOLDS], ANY) == HOLDS and combine([FAILS, FAILS], ANY) == FAILS
    assert combine([FAILS, INCONCLUSIVE], ANY) == INCONCLUSIVE
    assert combine([NOT_RUN], ALL) == NOT_RUN
    # a planned contrast with a missing side keeps ALL from holding
    missing = decide("x", [paired_test(*STRONG), paired_test({}, {0: 1.0})], ALL)
    assert missing.verdict == INCONCLUSIVE and missing.n_tests == 1


def test_the_plan_is_dated_and_covers_the_claims():
    assert PLAN_DATE == "2026-12-04"
    assert set(PLAN) == {"a", "g-a", "b", "g-b", "c", "g-c", "g-ref"}
    assert {PLAN[k].combine for k in ("b", "g-b")} == {ANY}
    text = (ROOT / "analysis" / "PREREGISTRATION.md").read_text()
    assert "2026-12-04" in text and "δ = −3" in text and "r = 0 is excluded" in text


# ---- the committed gap-map table, against the audit's seed-paired numbers --------------------------
@pytest.fixture(scope="module")
def gap_map():
    return read_summaries([ROOT / "results/reference/gap_map/summary.txt"])


def test_summary_rows_parse():
    suites = ["easy_k3", "medium_k4", "hard_k5"]
    row = parse_row("opsd-horizon2_ref_shuffled-r0.5-s1   done  0.5  1  0.6601  0.238 (-0.337)  "
                    "0.227 (-0.273)  0.183 (-0.243)", suites)
    assert (row["method_name"], row["level"], row["reference"], row["exposure"], row["seed"]) == \
        ("opsd", "horizon2", "shuffled", 0.5, 1)
    assert row[MEAN] == pytest.approx(100 * (0.238 + 0.227 + 0.183) / 3)
    atesd = parse_row("atesd-paper_reward_horizon2-s0  done  0  0.3197  0.351 (-0.224)  0.257 (-0.243)  "
                      "0.195 (-0.231)", suites)
    assert atesd["exposure"] is None and atesd["user_tag"] == "paper_reward" and atesd["seed"] == 0
    assert parse_row("base   done   -   0.575   0.500   0.426", suites) is None
    assert split_tag(None) == ("gap 0", "own", None)


def test_audit_paired_figures_on_the_committed_map(gap_map):
    h2 = gap_map[gap_map["level"] == "horizon2"]
    opsd = h2[(h2["method_name"] == "opsd") & (h2["reference"] == "own")]
    # hard_k5, r = 0.25 - r = 1: per seed +18.9 / +13.2 / +15.7, paired CI [+8.8, +23.0] (audit 2b)
    hard = paired_test(seed_values(opsd[opsd["exposure"] == 0.25], "hard_k5"),
                       seed_values(opsd[opsd["exposure"] == 1.0], "hard_k5"))
    assert (round(hard.mean, 1), round(hard.low, 1), round(hard.high, 1)) == (15.9, 8.8, 23.0)
    # ATESD (paper reward) - OPSD r = 1: -9.0 [-14.4, -3.5] paired (audit 2d)
    paper = Select("p", "atesd", "paper_reward_horizon2")
    full = Select("o", "opsd", "horizon2", 1.0)
    tests = beats_tests(h2, paper, full, full, Select("g", "grpo", "horizon2"))
    vs_opsd = tests[1]
    assert (round(vs_opsd.mean, 1), round(vs_opsd.low, 1), round(vs_opsd.high, 1)) == (-9.0, -14.4, -3.5)


def test_r0_is_left_out_of_claim_b(gap_map):
    h3 = gap_map[(gap_map["level"] == "horizon3") & (gap_map["method_name"] == "opsd")
                 & (gap_map["reference"] == "own")]
    names = [t.name for t in full_not_best_tests(h3)]
    assert names == ["r = 0.25 − r = 1", "r = 0.5 − r = 1", "r = 0.75 − r = 1"]


def test_pre_registered_map_verdicts_quoted_in_results_readme(gap_map):
    """The verdicts results/README.md quotes, from the committed table (no Welch trend: fast)."""
    from analysis.gap_data import level_order
    from analysis.prereg_claims import content_tests, prereg_claim
    from analysis.prereg_report import with_map_columns

    scores = with_map_columns(gap_map)
    own = scores[(scores["method_name"] == "opsd") & (scores["reference"] == "own")
                 & scores["user_tag"].isna() & scores["exposure"].notna()]
    levels = level_order(own["level"])
    g_b = prereg_claim("g-b", [t for lv in levels for t in full_not_best_tests(own[own["level"] == lv], lv)])
    assert (g_b.verdict, g_b.n_deciding, g_b.n_tests) == (HOLDS, 15, 15)
    by_name = {t.name: t for t in g_b.tests}
    assert by_name["horizon2: r = 0.25 − r = 1"].verdict == INCONCLUSIVE
    assert [n for n, t in by_name.items() if t.verdict == HOLDS] == \
        ["horizon3: r = 0.25 − r = 1", "leap1: r = 0.25 − r = 1", "leap1: r = 0.5 − r = 1"]
    shuffled = scores[(scores["method_name"] == "opsd") & (scores["reference"] == "shuffled")]
    g_ref = prereg_claim("g-ref", [t for lv in levels for t in content_tests(
        own[own["level"] == lv], shuffled[shuffled["level"] == lv], lv)])
    assert (g_ref.verdict, g_ref.n_tests) == (HOLDS, 4)


def test_spearman_p_does_not_depend_on_the_run_order():
    """The gap-0 sweep's 15 final KLs (15! pairings: a Monte Carlo p). Read in another order they
    gave 0.0006 and 0.0004 before the points were sorted; now one p whatever the order."""
    import numpy as np

    from analysis.stats import spearman_with_permutation_p

    x = np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], 3)
    y = np.array([3e-4, 2e-4, 2e-4, .0142, .0135, .0131, .0211, .0193, .0189, .0318, .0217, .0223,
                  .0242, .0177, .0203])
    order = np.random.default_rng(5).permutation(15)
    assert spearman_with_permutation_p(x, y) == spearman_with_permutation_p(x[order], y[order])
