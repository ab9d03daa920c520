"""Comparability: one table or figure per task/eval config, never a silent mix of two.

python -m analysis.figures --results DIR --group-by task.val_size      # one output per value

Two runs' Average@k are comparable only if they were scored on the same task the same
way: every `cfg.task.*` and `cfg.eval.*` key must agree (speed and logging knobs aside).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis.cli import AnalysisError
from analysis.collect import run_info

COMPARED_PREFIXES = ("cfg.task.", "cfg.eval.")
NOT_COMPARED = {"cfg.eval.batch_size", "cfg.eval.every"}  # speed/logging knobs: same numbers


def _short(value: Any, width: int = 50) -> str:
    text = "missing" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def compared_columns(info: pd.DataFrame) -> list[str]:
    return [c for c in info.columns if c.startswith(COMPARED_PREFIXES) and c not in NOT_COMPARED]


def differing(info: pd.DataFrame, cols: Sequence[str]) -> list[str]:
    """Columns among cols whose value is not the same for every run (missing counts as a value)."""
    return [c for c in cols if info[c].astype(str).nunique() > 1]


def _normalise_key(key: str, info: pd.DataFrame) -> str:
    col = key if key.startswith("cfg.") else f"cfg.{key}"
    if col not in info.columns:
        known = ", ".join(c.removeprefix("cfg.") for c in compared_columns(info)[:8])
        raise AnalysisError(f"--group-by {key!r} is not a config key of these runs (e.g. {known}, ...)")
    return col


def split_comparable(runs: pd.DataFrame, group_by: Sequence[str] = ()) -> list[tuple[str, pd.DataFrame]]:
    """[(label, runs of one task config)]: refuses to mix task/eval configs unless grouped by them.

    Runs without a config.yaml cannot be placed and are left out (collect still lists them).
    """
    info = run_info(runs)
    info = info[info["has_config"]]
    if info.empty:
        raise AnalysisError("no run folder has a config.yaml: nothing to compare")
    keys = [_normalise_key(k, info) for k in group_by]
    groups = [("", info)] if not keys else [
        (", ".join(f"{k.removeprefix('cfg.')}={_short(v, 30)}" for k, v in zip(keys, vals)), g)
        for vals, g in info.groupby([info[k].astype(str) for k in keys], sort=True)]
    out = []
    for label, g in groups:
        diff = differing(g, compared_columns(g))
        if diff:
            detail = "; ".join(
                f"{c.removeprefix('cfg.')}: " + ", ".join(
                    f"{_short(v)} ({', '.join(sorted(rs)[:3])}{', ...' if len(rs) > 3 else ''})"
                    for v, rs in g.groupby(g[c].astype(str))["run"]) for c in diff[:3])
            where = f" within {label}" if label else ""
            keys = ",".join(c.removeprefix("cfg.") for c in diff)
            raise AnalysisError(
                f"runs under one table differ in task/eval config{where}: {detail}. Refusing to mix "
                f"them; pass --group-by {keys} for one output per value "
                f"(make figures ARGS='--group-by {keys}'), or move the runs apart")
        out.append((label, runs[runs["run"].isin(g["run"])]))
    return out


def slug(label: str) -> str:
    """A file-name suffix for a group label ('' for the only group)."""
    if not label:
        return ""
    text = "".join(ch if ch.isalnum() or ch in "._=" else "-" for ch in label)[:40].strip("-")
    return f"-{text}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"
