"""The regime search table: labels, the GRPO and base rows a candidate is held against, the ordering.

python -m pytest -q tests/test_regime.py
"""

from __future__ import annotations

import pandas as pd

from analysis.regime import candidate_rows, gap_label, ordering, student_label


def test_labels_name_the_gap_and_what_the_student_trains_on():
    assert gap_label("horizon", 1, 0.5) == "horizon1mix50" and gap_label("noisy", 2, float("nan")) == "noisy2"
    assert gap_label(None, None, None) == "" and gap_label("none", 0, 1.0) == ""
    # a noisy reference leaves the student's problems as at gap 0; horizon changes them
    assert student_label("noisy", 2, 1.0) == "" and student_label("horizon", 1, 0.5) == "horizon1mix50"


def test_the_ordering_names_each_broken_link():
    assert ordering(50, 80, 90, 92) == "holds"
    assert ordering(50, 80, 90, 90) == "no: best r<1 <= r=1"
    assert ordering(50, 95, 90, 70) == "no: r=1 <= GRPO, best r<1 <= r=1"
    assert ordering(50, 40, 90, 95) == "no: GRPO <= base"
    assert ordering(50, float("nan"), 90, 95) == "incomplete"


def row(candidate: str, student: str, tag: str, arm: str, score: float, seed: int = 0) -> dict:
    return {"candidate": candidate, "student": student, "tag": tag, "arm": arm, "score": score, "seed": seed,
            "root": "r"}


def test_a_candidate_is_held_against_its_own_students_grpo_and_its_recipes_base():
    means = pd.DataFrame([
        row("gap 0", "gap 0", "", "base", 50.0), row("gap 0", "gap 0", "", "grpo", 87.0),
        row("horizon1", "horizon1", "", "grpo", 70.0),
        *[row("noisy2", "gap 0", "", f"r={r:g}", s) for r, s in ((0.25, 60), (0.5, 70), (0.75, 91),
                                                                (1.0, 89))],
        *[row("horizon1", "horizon1", "", f"r={r:g}", s) for r, s in ((0.25, 55), (0.5, 60), (0.75, 65),
                                                                      (1.0, 72))],
        row("noisy2", "gap 0", "", "r=0.75", 93.0, seed=1),
    ])
    rows = {r["candidate"]: r for r in candidate_rows(means)}
    assert set(rows) == {"noisy2", "horizon1"}  # gap 0 has no OPSD arm here: no row
    noisy = rows["noisy2"]
    assert (noisy["base"], noisy["GRPO"]) == ("50.0", "87.0")
    assert (noisy["r=0.75"], noisy["best r<1"]) == ("92.0 (n=2)", "0.75")
    assert noisy["ordering"] == "holds"  # 50 < 87 < 89 < 92
    assert rows["horizon1"]["GRPO"] == "70.0" and rows["horizon1"]["ordering"] == "no: best r<1 <= r=1"


def test_a_candidate_with_its_own_base_is_held_against_its_roots_base_and_grpo():
    """Exposure by steps with the answer kept has its own base model: its own root, its own base."""
    means = pd.DataFrame([
        row("gap 0", "gap 0", "", "base", 50.0), row("gap 0", "gap 0", "", "grpo", 87.0),
        {**row("stepsans", "stepsans", "stepsans", "base", 40.0), "root": "s"},
        {**row("stepsans", "stepsans", "stepsans", "grpo", 70.0), "root": "s"},
        *[{**row("stepsans", "stepsans", "stepsans", f"r={r:g}", v), "root": "s"}
          for r, v in ((0.5, 80.0), (0.75, 95.0), (1.0, 90.0))],
    ])
    (only,) = candidate_rows(means)
    assert (only["candidate"], only["base"], only["GRPO"]) == ("stepsans", "40.0", "70.0")
    assert only["r=0.25"] == "-"
    assert only["best r<1"] == "0.75" and only["ordering"] == "holds"
