"""Methods in table order, with the labels readers see (the labels come from harness.runs.runinfo).

python -c "import analysis.labels as m; help(m.methods)"

A method is the run name without its seed (harness.runs.runinfo.method_key): one table row,
one legend entry, whatever the number of seeds.
"""

from __future__ import annotations

import pandas as pd


def method_sort_key(row: pd.Series) -> tuple:
    """Table order: base, fixed exposures by r (OPSD r = 1 among them), ATESD, its variants,
    random, schedule, then the RL rows: GRPO, AntiSD and SDAR (fixed r), their compositions
    with an exposure source (`atesd_antisd`, ...), others."""
    name, tag = row["method_name"], row["tag"] if isinstance(row["tag"], str) else ""
    fixed = row["exposure_source"] == "fixed" and name != "base"
    if name == "base":
        rank = 0
    elif fixed and name == "opsd":
        rank = 1
    else:
        rank = {"atesd": 2 if not tag else 3, "random": 4, "schedule": 5, "grpo": 6, "antisd": 7,
                "sdar": 8}.get(name, 9)
    return (rank, tag, row["exposure"] if fixed else 0.0, str(row["method"]))


def methods(info: pd.DataFrame) -> pd.DataFrame:
    """One row per method (method, label, method_name, tag, exposure_source, exposure), in table order."""
    first = info[info["has_config"]].drop_duplicates("method")
    cols = ["method", "label", "method_name", "tag", "exposure_source", "exposure"]
    order = sorted(first.index, key=lambda i: method_sort_key(first.loc[i]))
    return first.loc[order, cols].reset_index(drop=True)
