"""The confirmation report: arms read from run names, the ordering, (g-b) and (c) by hand.

python -m pytest -q tests/test_confirm.py
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.confirm import arms, fresh_metrics, fresh_only, report
from analysis.tables import MEAN

RUNS = {  # run name -> mean Average@12 (%)
    "base": 50.0,
    **{f"opsd-tuned_horizon2-r0.25-s{s}": v for s, v in ((3, 55.0), (4, 52.0), (5, 50.0))},
    **{f"opsd-horizon2-r1-s{s}": v for s, v in ((3, 45.0), (4, 50.0), (5, 40.0))},
    **{f"grpo-horizon2-s{s}": v for s, v in ((3, 80.0), (4, 82.0), (5, 81.0))},
    **{f"atesd-horizon2-s{s}": v for s, v in ((3, 56.0), (4, 53.0), (5, 51.0))},  # tuned + 1, every seed
    **{f"atesd-shuffled_rewards_horizon2-s{s}": v for s, v in ((3, 46.0), (4, 53.0), (5, 51.0))},
    **{f"atesd-frozen_policy_horizon2-s{s}": 50.0 for s in (3, 4, 5)},
    **{f"random-initial_beta_horizon2-s{s}": v for s, v in ((3, 54.0), (4, 52.0), (5, 51.0))},
    "opsd-horizon2-r0.5-s3": 99.0,  # another fixed r: no arm of the confirmation
}


@pytest.fixture()
def scores() -> pd.DataFrame:
    frame = pd.DataFrame({"run": list(RUNS), MEAN: list(RUNS.values())})
    frame["seed"] = frame["run"].str.extract(r"-s(\d+)$")[0].astype(float)
    frame["method"] = frame["run"].str.replace(r"-s\d+$", "", regex=True)
    return frame


def test_arms_come_from_run_names(scores):
    table = arms(scores, "horizon2")
    assert set(table) == {"OPSD r = 1", "GRPO", "ATESD", "tuned r = 0.25", "ATESD (shuffled rewards)",
                          "ATESD (frozen policy)", "ATESD (initial Beta)"}
    assert table["tuned r = 0.25"] == {3: 55.0, 4: 52.0, 5: 50.0}


def test_the_contrasts_by_hand(scores):
    text = report(scores, "horizon2")
    # tuned − r = 1: d = 10, 2, 10; mean 7.33, sd 4.619, se 2.667, t 2.75 on 2 df: one-sided p 0.0554
    # (scipy's t.sf(2.75, 2)), 95% CI 7.33 ± 4.303 x 2.667 = [-4.1, +18.8]: inconclusive
    row = "| tuned r = 0.25 − OPSD r = 1 | +0 | 3 | +7.3 [-4.1, +18.8] | 0.0554 | 0.945 | inconclusive |"
    assert row in text
    assert "**(g-b) at horizon2, one pre-specified contrast: inconclusive (rests on 1" in text
    # ATESD − tuned = +1 on every seed (sd 0): above the -3 margin for sure: holds
    assert "| ATESD − tuned r = 0.25 | -3 | 3 | +1.0 [+1.0, +1.0] | 0 |" in text
    assert "**(g-c) ATESD at horizon2: holds" in text
    # the ordering: GRPO − base holds (d = 30, 32, 31), r = 1 − GRPO does not (d = -35, -32, -41)
    assert "| GRPO − base | +0 | 3 | +31.0 [+28.5, +33.5] |" in text
    assert "Ordering base < GRPO < OPSD r = 1 < tuned r (all three links): does not hold" in text
    assert "| base model | - | 50.0 | - | - |" in text and "s3 55.0, s4 52.0, s5 50.0" in text
    # the learning control: ATESD − its shuffled-rewards twin, d = 10, 0, 0 (mean 3.3, sd 5.77)
    assert "| ATESD − ATESD (shuffled rewards) | +0 | 3 | +3.3 [-11.0, +17.7] |" in text
    # learning rate 0: d = 6, 3, 1 (mean 3.33, sd 2.517, se 1.453): 3.33 ± 4.303 x 1.453 = [-2.9, +9.6]
    assert "| ATESD − ATESD (frozen policy) | +0 | 3 | +3.3 [-2.9, +9.6] |" in text
    # r from the initial Beta: d = 2, 1, 0 (mean 1, sd 1, se 0.577): 1 ± 2.48 = [-1.5, +3.5]
    assert "| ATESD − ATESD (initial Beta) | +0 | 3 | +1.0 [-1.5, +3.5] |" in text
    # one family of 3: no control is beaten at Holm-adjusted 0.025, so the family is inconclusive
    assert ("**Learning controls (not pre-registered): ATESD above every control, Holm over the controls "
            "run: inconclusive (rests on 3 deciding test(s), Holm over 3; all)**") in text


def test_late_exposure_is_the_mean_of_the_last_ten_decisions():
    from analysis.confirm import late_exposure_lines

    rows = [{"run": "atesd-horizon2-s3", "kind": "controller", "step": 5 * k, "ctrl_r": 1.0 if k < 5 else 0.2}
            for k in range(15)]
    rows.append({"run": "opsd-horizon2-r1-s3", "kind": "train", "step": 1, "ctrl_r": None})
    lines = late_exposure_lines(pd.DataFrame(rows), "horizon2")
    assert "| atesd-horizon2-s3 | 15 | 0.20 |" in lines and len(lines) == 6


def test_two_tuned_exposures_under_one_root_are_refused(scores):
    from analysis.cli import AnalysisError

    extra = pd.DataFrame({"run": ["opsd-tuned_horizon2-r0.5-s3"], MEAN: [60.0], "seed": [3.0],
                          "method": ["opsd-tuned_horizon2-r0.5"]})
    with pytest.raises(AnalysisError, match="several tuned exposures"):
        arms(pd.concat([scores, extra]), "horizon2")


def test_the_search_seeds_are_left_out_of_the_confirmation(scores):
    """make reproduce-extended puts the gap map's seed 0-2 runs (same names) in the same root."""
    search = pd.DataFrame({"run": ["atesd-horizon2-s0", "grpo-horizon2-s2"], MEAN: [10.0, 10.0],
                           "seed": [0.0, 2.0], "method": ["atesd-horizon2", "grpo-horizon2"]})
    mixed = pd.concat([scores, search])
    fresh = fresh_only(mixed)
    assert set(fresh["run"]) == set(scores["run"])  # the base model stays, seeds 0 and 2 go
    assert arms(fresh, "horizon2")["ATESD"] == {3: 56.0, 4: 53.0, 5: 51.0}
    assert report(fresh, "horizon2") == report(scores, "horizon2")
    metrics = pd.DataFrame({"run": ["atesd-horizon2-s0", "atesd-horizon2-s3"], "step": [1, 1]})
    assert list(fresh_metrics(metrics)["run"]) == ["atesd-horizon2-s3"]
