"""The numbers of the gap map: runs by competence-gap level and reference control, their scores,
mismatch and teacher leak.

python -c "from analysis.gap_data import level_name; print(level_name('horizon', 2))"

A run's level is its `gap` config (harness/config/gap.py; runs older than it are gap 0) and its
control its `reference`. The map's runs are the fixed-exposure OPSD runs without a user tag;
the leak is the teacher's probability of the rollout-consistent and of the reference's value
where the two differ (harness/trainers/leak.py), from the train rows (last quarter of each
run, at its own r) and from the probe rows of each run's first probed step (the base model's
own rollouts, every exposure on the same rollouts); p_T(reference value) also split by whether
the value lay inside the reference prefix the teacher was shown (runs logged before that split
have no such keys: their cells read "-").
"""

from __future__ import annotations

import pandas as pd

from analysis.claim_data import quarter_means, run_scores
from analysis.collect import run_info
from harness.config.gap import effective_tag
from harness.runs.runinfo import ST

GAP0 = "gap 0"
LEAK_KEYS = ("leak_p_consistent", "leak_p_reference", "leak_p_reference_shown", "leak_p_reference_unshown")
LEAK_LABEL = {"leak_p_consistent": "p_T(rollout-consistent value)",
              "leak_p_reference": "p_T(reference value)",
              # split by whether that value lies inside the reference prefix the teacher was shown
              "leak_p_reference_shown": "p_T(reference value), value shown",
              "leak_p_reference_unshown": "p_T(reference value), value past the cut"}


def level_name(kind: object, level: object) -> str:
    """`gap 0` without a gap, else the gap's label (`horizon2`)."""
    if not isinstance(kind, str) or kind in ("", "none") or pd.isna(level) or int(level) == 0:
        return GAP0
    return f"{kind}{int(level)}"


def level_order(levels) -> list[str]:
    """gap 0 first, then by mechanism and level."""
    return sorted(set(levels), key=lambda s: (s != GAP0, s.rstrip("0123456789"), s))


def with_levels(info: pd.DataFrame) -> pd.DataFrame:
    """info plus `level`, `reference` and `user_tag` (the tag the user set, without the gap's)."""
    out = info.copy()
    kind = out.get("cfg.gap.kind", pd.Series("none", index=out.index)).fillna("none")
    lvl = out.get("cfg.gap.level", pd.Series(0, index=out.index)).fillna(0)
    out["level"] = [level_name(k, v) for k, v in zip(kind, lvl)]
    out["reference"] = out.get("cfg.reference", pd.Series("own", index=out.index)).fillna("own")
    user = out.get("cfg.tag", pd.Series(None, index=out.index))
    out["user_tag"] = [t if isinstance(t, str) and t else None for t in user]
    return out


def map_scores(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(one row per finished run with its scores, level, reference, user_tag, suites)."""
    scores, suites = run_scores(runs)
    info = with_levels(run_info(runs))[["run", "level", "reference", "user_tag", f"final_{ST}"]]
    return scores.merge(info, on="run", how="left"), suites


def fixed_opsd(frame: pd.DataFrame, reference: str = "own") -> pd.DataFrame:
    """The map's runs: fixed-exposure OPSD, no user tag, the given reference."""
    return frame[(frame["method_name"] == "opsd") & (frame["exposure_source"] == "fixed")
                 & frame["user_tag"].isna() & (frame["reference"] == reference)
                 & frame["exposure"].notna()]


def tag_at(level: str, user_tag: str | None = None, reference: str = "own") -> str | None:
    """The effective tag (harness/config/gap.py) of a run at this level: what Select matches."""
    kind, lvl = (level.rstrip("0123456789"), int(level[len(level.rstrip("0123456789")):])) \
        if level != GAP0 else ("none", 0)
    return effective_tag(user_tag, {"kind": kind, "level": lvl}, reference)


def train_leak(info: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per finished map run: level, exposure and the last-quarter mean of each leak key."""
    runs = fixed_opsd(with_levels(info[info["state"] == "done"]))
    rows = []
    train = metrics[metrics["kind"] == "train"] if len(metrics) else metrics
    for _, run in runs.iterrows():
        mine = train[train["run"] == run["run"]] if len(train) else train
        row = {"run": run["run"], "level": run["level"], "exposure": run["exposure"]}
        for key in LEAK_KEYS:
            row[key] = quarter_means(mine, key)[-1] if key in mine.columns else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", "level", "exposure", *LEAK_KEYS])


def probe_leak(info: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The first probed step per level and seed: level, seed, probe_exposure, KL, leak.

    At step 1 every run of one level and seed probes the same rollouts (the base model's, on
    the same training problems, whatever its own r), so its runs are averaged into one row per
    seed and exposure: the seeds, not the runs, are the samples."""
    runs = fixed_opsd(with_levels(info[info["state"] == "done"]))[["run", "level", "seed"]]
    cols = ["level", "seed", "probe_exposure", ST, *LEAK_KEYS]
    if not len(metrics) or "probe_exposure" not in metrics.columns:
        return pd.DataFrame(columns=cols)
    rows = metrics[(metrics["kind"] == "probe") & metrics["run"].isin(runs["run"])]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    first = rows[rows["step"] == rows.groupby("run")["step"].transform("min")].merge(runs, on="run")
    for key in LEAK_KEYS:
        if key not in first.columns:
            first[key] = float("nan")
    first[[ST, *LEAK_KEYS]] = first[[ST, *LEAK_KEYS]].astype(float)
    return first.groupby(["level", "seed", "probe_exposure"], as_index=False)[[ST, *LEAK_KEYS]].mean()[cols]
