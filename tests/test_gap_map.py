"""The gap map's analysis on hand-made run folders: the regime map finds the best r per level,
the claims per level and the content claim come out as the numbers say, the leak table and the
figure are written, and a results root without map runs is one error line.

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
from analysis.gap_report import best_fixed_r, claim_b_levels, claim_content
from harness.config.settings import compose_raw

SUITES = ["easy_k3", "medium_k4", "hard_k5"]
NOISE = {0: -0.01, 1: 0.0, 2: 0.01}
# gap 0: full exposure wins; horizon2: r = 0.5 wins; the shuffled control loses to own at gap 0.
SCORES = {(GAP0, "own"): {0.5: 0.6, 1.0: 0.9}, ("horizon2", "own"): {0.5: 0.5, 1.0: 0.3},
          (GAP0, "shuffled"): {0.5: 0.4, 1.0: 0.5}}
GAPS = {GAP0: {"gap.kind": "none", "gap.level": 0}, "horizon2": {"gap.kind": "horizon", "gap.level": 2}}


def rows(r: float, leak: float) -> list[dict]:
    train = [{"step": i, "kind": "train", "mismatch_kl_st": 0.1 * r, "leak_p_consistent": 1 - leak,
              "leak_p_reference": leak, "leak_tokens": 3} for i in range(1, 9)]
    probe = [{"step": 1, "kind": "probe", "probe_exposure": x, "mismatch_kl_st": 0.1 * x,
              "leak_p_consistent": 1 - leak * x, "leak_p_reference": leak * x, "leak_tokens": 3}
             for x in (0.0, 0.5, 1.0)]
    return train + probe


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gapmap")
    raw = compose_raw(["profile=smoke", "method=opsd"])
    for (level, reference), by_r in SCORES.items():
        for r, score in by_r.items():
            for seed, noise in NOISE.items():
                cfg = at(raw, exposure=r, seed=seed, reference=reference, **GAPS[level])
                leak = 0.8 if level == "horizon2" else 0.2
                run_folders.write_run(root, cfg, dict.fromkeys(SUITES, score + noise), metrics=rows(r, leak))
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


def test_report_leak_table_and_figure_are_written(results: Path, tmp_path: Path) -> None:
    col = collect(str(results))
    probe = probe_leak(col.info, col.metrics)
    assert set(probe["level"]) == {GAP0, "horizon2"}
    assert len(probe) == 2 * 3 * 3  # per level, seed and probed r: the runs of a seed averaged
    paths = write(col.runs, col.metrics, tmp_path, str(results), "")
    md = (tmp_path / "tables" / "gap_map.md").read_text()
    assert "| horizon2 | 1 | 0.200" in md  # p_T(rollout-consistent) at the step-1 probe, r = 1
    assert "(g-ref) The reference's content matters" in md
    assert "| horizon2 | r = 0.5: 50.0 ± 2.5 (n=3) |" in md  # the regime map's best r and its CI
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_no_map_runs_is_one_error(tmp_path: Path) -> None:
    raw = compose_raw(["profile=smoke", "method=base"])
    run_folders.write_run(tmp_path, raw, dict.fromkeys(SUITES, 0.5))
    col = collect(str(tmp_path))
    with pytest.raises(AnalysisError, match="no finished fixed-exposure OPSD run"):
        write(col.runs, col.metrics, tmp_path, str(tmp_path), "")
