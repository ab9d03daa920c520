"""The claims report on hand-made run folders: every verdict comes out each way, missing runs say
"not run", the Welch interval matches scipy's, the CLI writes the Markdown.

python -m pytest -q tests/test_claims.py

Run folders are written here, not trained (as tests/test_difficulty.py does): the real
composed config.yaml of each run (smoke profile) with its method, r, seed and tag set,
status.json, eval.json with chosen averages, and metrics.jsonl train (and probe) rows with a
chosen KL(S||T). Three worlds: one where every claim holds, one where every claim fails, one
where the numbers cannot tell.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import run_folders
from run_folders import at
from scipy import stats

import analysis.verdicts as v
from analysis.claims import STAGES, claims_of, render
from analysis.collect import collect
from harness.config.settings import compose_raw

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["easy_k3", "medium_k4", "hard_k5"]
SEEDS = [0, 1, 2]
NOISE = {0: -0.01, 1: 0.0, 2: 0.01}
STEPS = 8


@pytest.fixture(scope="module")
def raws():
    return {m: compose_raw(["profile=smoke", f"method={m}"]) for m in ("opsd", "atesd", "base", "grpo")}


def write_run(root: Path, raw, score: float | None, kl: float = 0.01, probe: dict | None = None,
              **values) -> str:
    """A run folder minus the training; score: every suite's Average@k (fraction); train rows at
    KL(S||T) kl, probe rows {r: KL} at step 1."""
    rows = [{"step": i, "kind": "train", "mismatch_kl_st": kl, "teacher_entropy": 0.5}
            for i in range(1, STEPS + 1)]
    rows += [{"step": 1, "kind": "probe", "probe_exposure": r, "mismatch_kl_st": v}
             for r, v in (probe or {}).items()]
    averages = None if score is None else dict.fromkeys(SUITES, score)
    return run_folders.write_run(root, at(raw, **values), averages, metrics=rows)


# Per world: KL(S||T) per r, score per r (fraction), ATESD, tuned, GRPO, live at r = 0.5 / 1, base model.
WORLDS = {
    "holds": dict(kl={0.0: 0.01, 0.5: 0.05, 1.0: 0.10}, score={0.0: 0.5, 0.5: 0.8, 1.0: 0.6},
                  atesd=0.9, tuned=0.7, grpo=0.55, live=0.05, base=0.5),
    "fails": dict(kl={0.0: 0.10, 0.5: 0.05, 1.0: 0.01}, score={0.0: 0.5, 0.5: 0.6, 1.0: 0.9},
                  atesd=0.4, tuned=0.7, grpo=0.6, live=0.95, base=0.5),
    "unclear": dict(kl={0.0: 0.05, 0.5: 0.05, 1.0: 0.05}, score={0.0: 0.7, 0.5: 0.7, 1.0: 0.7},
                    atesd=0.7, tuned=0.7, grpo=0.7, live=0.5, base=0.5),
}


def build_world(root: Path, raws, w: dict) -> Path:
    """Fixed grid, base, ATESD (val-accuracy only), tuned fixed r, GRPO, live teacher at r = 0.5, 1."""
    opsd, wide = raws["opsd"], w["kl"][0.0] == w["kl"][1.0]  # the unclear world: noise far above the signal
    noise = {s: (n * 30 if wide else n) for s, n in NOISE.items()}
    probe = {r: v * 3 for r, v in w["kl"].items()}
    for r in w["kl"]:
        for s in SEEDS:
            kl_noise = noise[s] / 10 if wide else noise[s] / 100
            write_run(root, opsd, w["score"][r] + noise[s], kl=w["kl"][r] + kl_noise,
                      probe=probe if r == 1.0 else None, exposure=r, seed=s)
    write_run(root, raws["base"], w["base"])
    for s in SEEDS:
        write_run(root, raws["atesd"], w["atesd"] + noise[s], seed=s)
        write_run(root, opsd, w["tuned"] + noise[s], exposure=0.37, seed=s, tag="tuned")
        write_run(root, raws["grpo"], w["grpo"] + noise[s], seed=s)
        for r in (0.5, 1.0):
            write_run(root, opsd, w["live"] + noise[s], exposure=r, seed=s, tag="live",
                      **{"teacher.mode": "live"})
    return root


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, raws) -> dict[str, dict[str, str]]:
    out = {}
    for world, w in WORLDS.items():
        root = build_world(tmp_path_factory.mktemp(world) / "runs", raws, w)
        col = collect(root, refresh=True)
        claims = claims_of(col.runs, col.metrics)
        out[world] = {c.key: c.verdict for c in claims}
        out[world]["_prereg"] = {c.key: c.prereg.verdict for c in claims if c.prereg}
        out[world]["_tests"] = {c.key: (c.prereg.n_deciding, c.prereg.n_tests) for c in claims if c.prereg}
        out[world]["_text"] = render(claims, str(root))
    return out


@pytest.mark.parametrize("world,want", [("holds", v.HOLDS), ("fails", v.FAILS), ("unclear", v.INCONCLUSIVE)])
def test_each_claim_comes_out_each_way(verdicts, world, want):
    got = {k: v for k, v in verdicts[world].items() if not k.startswith("_")}
    new = {f"e{i}": v.NOT_RUN for i in (1, 2, 3)}  # the worlds hold no run of the new sources
    assert got == {"a": want, "b": want, "c1": want, "c2": v.NOT_RUN, "d": want, **new}, got


# The pre-registered rules (analysis/prereg.py). Every arm of a world shares one noise per seed,
# so the seed-paired differences are exact: the unclear world's (a) and (b) differences are 0
# (neither direction), and its ATESD equals the tuned r, which is non-inferior within 3 points.
PREREG = {"holds": {"a": v.HOLDS, "b": v.HOLDS, "c1": v.HOLDS, "c2": v.NOT_RUN},
          "fails": {"a": v.FAILS, "b": v.FAILS, "c1": v.FAILS, "c2": v.NOT_RUN},
          "unclear": {"a": v.INCONCLUSIVE, "b": v.INCONCLUSIVE, "c1": v.HOLDS, "c2": v.NOT_RUN}}


@pytest.mark.parametrize("world", list(PREREG))
def test_pre_registered_verdicts_and_their_test_counts(verdicts, world):
    assert verdicts[world]["_prereg"] == PREREG[world]
    # (a): 2 adjacent pairs of r = 0, 0.5, 1; (b): r = 0.5 - r = 1 only (r = 0 is left out);
    # (c1): the tuned r decides, OPSD r = 1 and GRPO are Holm-counted secondaries
    assert verdicts[world]["_tests"] == {"a": (2, 2), "b": (1, 1), "c1": (1, 3), "c2": (0, 0)}
    text = verdicts[world]["_text"]
    assert text.index("pre-registered verdict (tests)") < text.index("verdict (Welch rule)")


def test_missing_runs_are_reported_not_dropped(verdicts):
    text = verdicts["holds"]["_text"]
    assert "not run (no finished atesd-paper_reward-s<seed> run)" in text  # c2: every row kept
    assert text.count("ATESD (paper reward) − ") == 6  # 3 Welch rows and 3 pre-registered ones
    assert "tuned fixed r (r = 0.37)" in text and "| ema | - | - |" in text
    assert "ATESD (val-accuracy reward) − GRPO | 90.0 ± 2.5 (n=3) | 55.0 ± 2.5 (n=3)" in text  # GRPO read
    assert "not run (no finished per_problem_antisd-s<seed> run)" in text


def test_the_report_states_rule_and_command_per_claim(verdicts):
    text = verdicts["fails"]["_text"]
    for key in ("a", "b", "c1", "c2", "d", "e1", "e2", "e3"):
        section = text.split(f"### ({key})")[1].split("### (")[0]
        assert "**Statement:**" in section and "Rule:" in section and "**Verdict (Welch rule):" in section
        assert key in ("d", "e1", "e2", "e3") or "**Pre-registered verdict" in section
        assert "python -m harness.front.reproduce --results" in section
        assert "python -m analysis.claims" in section
    assert "The probe at step 1" in text


def test_claim_stages_are_reproduce_stages():
    from harness.front.reproduce import STAGES as REPRO

    assert {s for stages in STAGES.values() for s in stages} <= {s.name for s in REPRO}


def test_welch_interval_matches_scipy():
    a, b = [70.0, 72.5, 71.0, 69.0], [60.0, 65.0, 61.0]
    d = v.welch_diff(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert np.isnan(v.welch_diff([1.0], [2.0, 3.0]).half) and not v.welch_diff([], [1.0]).run


def test_rules_on_numbers():
    up, down, zero = v.Diff(2, 1, 3, 3), v.Diff(-2, 1, 3, 3), v.Diff(0.5, 1, 3, 3)
    one = v.Diff(2, float("nan"), 1, 3)
    assert [v.diff_verdict(d) for d in (up, down, zero, one, v.Diff(0, 0, 0, 3))] == \
        [v.HOLDS, v.FAILS, v.INCONCLUSIVE, v.INCONCLUSIVE, v.NOT_RUN]
    assert v.monotone_verdict([1, 2, 3], 0.9, 0.01, [up]) == v.HOLDS
    assert v.monotone_verdict([1, 2, 3], 0.9, 0.2, [up]) == v.INCONCLUSIVE  # rises, not significant
    assert v.monotone_verdict([1, 3, 2], 0.5, 0.01, [up, down]) == v.FAILS  # a significant drop
    assert v.monotone_verdict([3, 2, 1], -0.9, 0.01, []) == v.FAILS
    assert v.full_not_best_verdict([down, up]) == v.HOLDS and v.full_not_best_verdict([down, down]) == v.FAILS
    assert v.full_not_best_verdict([down, zero]) == v.INCONCLUSIVE
    assert v.any_view_verdict([v.FAILS, v.HOLDS]) == v.HOLDS
    assert v.any_view_verdict([v.FAILS, v.NOT_RUN]) == v.FAILS
    assert v.collapse_verdict(down, 10, 2, 50) == v.HOLDS
    # worse than the base teacher, better than untrained
    assert v.collapse_verdict(down, 60, 2, 50) == v.FAILS
    assert v.collapse_verdict(zero, 40, 2, 50) == v.INCONCLUSIVE  # not below the base teacher for sure
    assert v.collapse_verdict(down, 55, 10, 50) == v.INCONCLUSIVE  # above untrained, but not surely
    assert v.all_verdict([v.HOLDS, v.NOT_RUN]) == v.HOLDS
    assert v.all_verdict([v.HOLDS, v.INCONCLUSIVE]) == v.INCONCLUSIVE
    assert v.all_verdict([v.HOLDS, v.FAILS]) == v.FAILS and v.all_verdict([v.NOT_RUN]) == v.NOT_RUN


def test_cli_writes_the_markdown(tmp_path, raws):
    root = build_world(tmp_path / "runs", raws, WORLDS["holds"])
    out = tmp_path / "claims.md"
    r = subprocess.run([sys.executable, "-m", "analysis.claims", "--results", str(root), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("## The paper's claims") and "**holds**" in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "analysis.claims", "--results", str(tmp_path / "none")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
