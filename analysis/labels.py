"""Methods in table order, with the labels readers see (the labels come from harness.runs.runinfo).

python -c "import analysis.labels as m; help(m.methods)"

A method is the run name without its seed (harness.runs.runinfo.method_key): one table row,
one legend entry, whatever the number of seeds.
"""

from __future__ import annotations

import pandas as pd

from harness.registry import components, find


def method_sort_key(row: pd.Series) -> tuple:
    """Table order: base, fixed exposures by r (OPSD r = 1 among them), then each registered
    source's rows and each loss's by the components' ranks (harness/registry.py: ATESD and its
    tagged variants, random, schedule, GRPO, AntiSD and SDAR at a fixed r), then compositions
    of a source with a loss (`atesd_antisd`, ...) and anything else."""
    name, tag = row["method_name"], row["tag"] if isinstance(row["tag"], str) else ""
    source = find("source", row["exposure_source"])
    fixed = (source.fixed_exposure if source else row["exposure_source"] == "fixed") and name != "base"
    if name == "base":
        rank = -2
    elif fixed and name == "opsd":
        rank = -1
    else:
        rank = part_ranks().get(name, OTHERS)
    return (rank, tag, row["exposure"] if fixed else 0.0, str(row["method"]))


OTHERS = 10_000  # compositions and methods no registered component names


def part_ranks() -> dict[str, int]:
    """method-name part -> table rank: sources first, then losses (each kind by its rank)."""
    ranks: dict[str, int] = {}
    for offset, kind in ((0, "source"), (1000, "loss")):
        ranks.update({c.part: offset + c.rank for c in components(kind) if c.part})
    return ranks


def methods(info: pd.DataFrame) -> pd.DataFrame:
    """One row per method (method, label, method_name, tag, exposure_source, exposure), in table order."""
    first = info[info["has_config"]].drop_duplicates("method")
    cols = ["method", "label", "method_name", "tag", "exposure_source", "exposure"]
    order = sorted(first.index, key=lambda i: method_sort_key(first.loc[i]))
    return first.loc[order, cols].reset_index(drop=True)
