"""Which runs are not finished, and which of the `running` ones have lost their process.

python -m analysis.collect --results results/runs      # prints these lines for a results root

A run killed hard (SIGKILL, out of memory) never writes status.json again, so its state
stays `running`; on the host that ran it we can tell by its pid. Computed at every load,
never cached: a process can die without touching any file.
"""

from __future__ import annotations

import os

import pandas as pd


def mark_stalled(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy with `stalled`: status says running but its process is gone, on this very host."""
    here = os.uname().nodename

    def gone(row: pd.Series) -> bool:
        if row["state"] != "running" or row["host"] != here or pd.isna(row["pid"]):
            return False
        try:
            os.kill(int(row["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by someone else
            return False
        return False

    runs = runs.copy()
    runs["stalled"] = runs.apply(gone, axis=1).astype(bool) if len(runs) else pd.Series(dtype=bool)
    return runs


def state_text(row: pd.Series) -> str:
    if row["state"] == "running" and row["stalled"]:
        return "running (process gone)"
    return str(row["state"])


def describe(info: pd.DataFrame) -> str:
    """'9 runs: 6 done, 1 failed, 1 running (process gone)' - marks what is not finished."""
    counts = info.apply(state_text, axis=1).value_counts()
    parts = [f"{n} {state}" for state, n in counts.items()]
    return f"{len(info)} run{'s' * (len(info) != 1)}: " + ", ".join(parts)


def unfinished_lines(info: pd.DataFrame) -> list[str]:
    """One line per run that is not done (or could not be read), with the reason."""
    lines = []
    for _, row in info.iterrows():
        if row["state"] != "done" or row["problem"]:
            why = row["problem"] or row["reason"] or ""
            steps = f"{row['train_steps']}/{row['planned_steps']} steps" if row["has_config"] else ""
            lines.append(f"  {row['run']}: {state_text(row)}" + "".join(f"; {x}" for x in (steps, why) if x))
    return lines
