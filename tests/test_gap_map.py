"""The gap map's analysis on hand-made run folders: the regime map finds the best r per level,
the claims per level ((g-a), (g-b), ATESD and GRPO at horizon2 for (g-c), both rules) and the
content claim come out as the numbers say, the probe leak averages a seed's runs at its first
probed step, the leak table and the figure are written, and a results root without map runs is
one error line.

python -m pytest -q tests/test_gap_map.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import run_folders
from run_folders import at

from analysis.cli import AnalysisError
from analysis.collect import collect
from analysis.gap_data import GAP0, map_scores, probe_leak, tag_at
from analysis.gap_map import write
from analysis.gap_report import best_fixed_r, claim_a_levels, claim_b_levels, claim_c_levels, claim_content
from harness.config.settings import compose_raw

SUITES = ["easy_k3", "medium_k4", "hard_k5"]
NOISE = {0: -0.01, 1: 0.0, 2: 0.01}
# gap 0: full exposure wins; horizon2: r = 0.5 wins; the shuffled control loses to own at gap 0.
SCORES = {(GAP0, "own"): {0.5: 0.6, 1.0: 0.9}, ("horizon2", "own"): {0.5: 0.5, 1.0: 0.3},
          (GAP0, "shuffled"): {0.5: 0.4, 1.0: 0.5}}
GAPS = {GAP0: {"gap.kind": "none", "gap.level": 0}, "horizon2": {"gap.kind": "horizon", "gap.level": 2}}


# The step-1 probe's p_T(rollout-consistent) at probed r = x: 1 - leak * x + 0.01 * seed + 0.001 * r (r:
# the run's own exposure). Runs of one seed differ (by 0.001 * r) and are averaged; seeds differ
# (by 0.01) and are the samples; the probe at step 5 (PROBE_LATER below) must not be read.
PROBE_LATER = 0.5


def rows(r: float, leak: float, seed: int = 0) -> list[dict]:
    train = [{"step": i, "kind": "train", "mismatch_kl_st": 0.1 * r, "leak_p_consistent": 1 - leak,
              "leak_p_reference": leak, "leak_tokens": 3} for i in range(1, 9)]
    probe = [{"step": 1, "kind": "probe", "probe_exposure": x, "mismatch_kl_st": 0.1 * x,
              "leak_p_consistent": 1 - leak * x + 0.01 * seed + 0.001 * r, "leak_p_reference": leak * x,
              "leak_tokens": 3, "leak_p_reference_shown": leak, "leak_p_reference_unshown": 0.0}
             for x in (0.0, 0.5, 1.0)]
    later = [{**row, "step": 5, "leak_p_consistent": PROBE_LATER} for row in probe]
    return train + probe + later


# ATESD (both rewards) and GRPO at horizon2, where r = 0.5 (50) beats r = 1 (30): ATESD at 45 is
# within the 3-point margin of neither, GRPO (70) is above it; the paper reward's ATESD is at 20.
METHODS = {("atesd", None): 0.45, ("atesd", "paper_reward"): 0.2, ("grpo", None): 0.7}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gapmap")
    raw = compose_raw(["profile=smoke", "method=opsd"])
    for (level, reference), by_r in SCORES.items():
        for r, score in by_r.items():
            for seed, noise in NOISE.items():
                cfg = at(raw, exposure=r, seed=seed, reference=reference, **GAPS[level])
                leak = 0.8 if level == "horizon2" else 0.2
                run_folders.write_run(root, cfg, dict.fromkeys(SUITES, score + noise),
                                      metrics=rows(r, leak, seed))
    for (method, tag), score in METHODS.items():
        method_raw = compose_raw(["profile=smoke", f"method={method}"])
        for seed, noise in NOISE.items():
            # a per-arm spread (x 1, 2, 3 by seed order): unequal variances across arms
            cfg = at(method_raw, seed=seed, tag=tag, **GAPS["horizon2"])
            run_folders.write_run(root, cfg, dict.fromkeys(SUITES, score + 3 * noise * (seed + 1)))
    return root


def test_levels_and_controls_are_read_from_the_config(results: Path) -> None:
    scores, _ = map_scores(collect(str(results)).runs)
    assert set(scores["level"]) == {GAP0, "horizon2"}
    assert set(scores["reference"]) == {"own", "shuffled"}
    assert "opsd-horizon2-r0.5-s0" in set(scores["run"]) and "opsd-ref_shuffled-r1-s2" in set(scores["run"])
    assert tag_at("horizon2") == "horizon2" and tag_at(GAP0, "paper_reward") == "paper_reward"


def test_regime_map_finds_the_best_r_per_level(results: Path) -> None:
    scores, suites = map_scores(collect(str(results)).runs)
    assert best_fixed_r(scores, GAP0) == 1.0 and best_fixed_r(scores, "horizon2") == 0.5
    claim = claim_b_levels(scores, suites)
    text = "\n".join(claim.body)
    assert f"{GAP0}: **does not hold**" in text and "horizon2: **holds**" in text
    assert claim.verdict == "holds"  # it holds at some level


def test_content_claim_reads_own_against_shuffled(results: Path) -> None:
    scores, _ = map_scores(collect(str(results)).runs)
    claim = claim_content(scores)
    assert claim.verdict == "holds"
    assert any("shuffled" in line and "+20.0" in line for line in claim.body)  # 0.6 - 0.4 at r = 0.5


def test_probe_leak_averages_a_seeds_runs_at_the_first_probed_step(results: Path) -> None:
    col = collect(str(results))
    probe = probe_leak(col.info, col.metrics)
    assert set(probe["level"]) == {GAP0, "horizon2"}
    assert len(probe) == 2 * 3 * 3  # per level, seed and probed r: the runs of a seed averaged
    h2 = probe[(probe["level"] == "horizon2") & (probe["probe_exposure"] == 1.0)].set_index("seed")
    # the seed's own runs (r = 0.5 and 1) averaged: 1 - 0.8 + 0.01 * seed + 0.001 * 0.75
    assert h2["leak_p_consistent"].to_dict() == pytest.approx({s: 0.20075 + 0.01 * s for s in (0, 1, 2)})
    assert (probe["leak_p_consistent"] != PROBE_LATER).all()  # never the later probe step
    assert h2["leak_p_reference_shown"].tolist() == pytest.approx([0.8] * 3)  # the shown split is carried


def test_report_leak_table_and_figure_are_written(results: Path, tmp_path: Path) -> None:
    col = collect(str(results))
    paths = write(col.runs, col.metrics, tmp_path, str(results), "")
    md = (tmp_path / "tables" / "gap_map.md").read_text()
    # p_T(rollout-consistent) at the step-1 probe, r = 1: mean 0.21075 over the seeds' 0.20075 /
    # 0.21075 / 0.22075, half-width t(0.975, 2) * 0.01 / sqrt(3) = 0.0248; then the shown split
    assert "| horizon2 | 1 | 0.211 ± 0.025 (n=3) | 0.800 ± 0.000 (n=3) | 0.800 ± 0.000 (n=3) | 0.000" in md
    assert "(g-ref) The reference's content matters" in md
    assert "| horizon2 | r = 0.5: 50.0 ± 2.5 (n=3) |" in md  # the regime map's best r and its CI
    assert md.index("pre-registered verdict (tests)") < md.index("verdict (Welch rule)")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_mismatch_claim_per_level(results: Path) -> None:
    scores, _ = map_scores(collect(str(results)).runs)
    claim = claim_a_levels(scores)
    # KL = 0.1 r at every level and seed, 2 exposures a level: paired by seed it rises by exactly
    # 0.05 (holds, one test a level, Holm over 2); the Welch rule's Spearman over 3 + 3 tied runs
    # cannot reach p < 0.05 (the smallest permutation p is 0.1), so it stays inconclusive
    assert claim.prereg.verdict == "holds" and (claim.prereg.n_deciding, claim.prereg.n_tests) == (2, 2)
    assert claim.verdict == "inconclusive" and "**horizon2** (inconclusive)" in "\n".join(claim.body)


def test_atesd_claim_at_a_level_reads_both_rewards_and_its_baselines(results: Path) -> None:
    scores, _ = map_scores(collect(str(results)).runs)
    claims = {c.key: c for c in claim_c_levels(scores)}
    assert set(claims) == {"g-c1 horizon2", "g-c2 horizon2"}  # gap 0 has no ATESD runs: none there
    val, paper = claims["g-c1 horizon2"], claims["g-c2 horizon2"]
    text = "\n".join(val.body)
    assert "best fixed r of the map (r = 0.5)" in text and "GRPO" in text
    # Welch: ATESD 45 vs GRPO 70 is below 0 (does not hold); vs r = 1 (30) above; vs r = 0.5 (50) unclear
    assert "−25.0" in text.replace("-", "−") and val.verdict == "does not hold"
    # pre-registered, per seed: ATESD 42 / 45 / 54 against r = 0.5's 49 / 50 / 51: d = -7 / -5 / +3,
    # mean -3.0, exactly the non-inferiority margin: t = 0, neither way
    deciding = val.prereg.tests[0]
    assert deciding.mean == pytest.approx(-3.0) and val.prereg.verdict == "inconclusive"
    assert (val.prereg.n_deciding, val.prereg.n_tests) == (1, 3)
    # paper reward 17 / 20 / 29: d = -32 / -30 / -22, t = (-28 + 3) / (sqrt(28) / sqrt(3)) = -8.18,
    # p = 0.0073; Holm over 3 (GRPO's p is 0, OPSD r = 1's 0.06): 2 x 0.0073 = 0.0146 < 0.025
    assert paper.prereg.tests[0].p_against_holm == pytest.approx(0.0146, abs=2e-4)
    assert paper.prereg.verdict == "does not hold"
    assert "atesd-paper_reward_horizon2" in "\n".join(r["run"] for _, r in scores.iterrows())


def test_no_map_runs_is_one_error(tmp_path: Path) -> None:
    raw = compose_raw(["profile=smoke", "method=base"])
    run_folders.write_run(tmp_path, raw, dict.fromkeys(SUITES, 0.5))
    col = collect(str(tmp_path))
    with pytest.raises(AnalysisError, match="no finished fixed-exposure OPSD run"):
        write(col.runs, col.metrics, tmp_path, str(tmp_path), "")
