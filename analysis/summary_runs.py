"""Per-run values from committed run tables (a sweep's summary.txt, make reproduce's log), for
results whose run folders are not committed: the same columns the claims read from run folders.

python -c "from analysis.summary_runs import read_summaries as r; \
    print(r(['results/reference/gap_map/summary.txt']))"

A table row is `run state [r] seed KL(S||T) suite (Δ) suite (Δ) ...` (harness/front/summary.py):
Average@k as a fraction per suite, KL(S||T) the mean mismatch of the run's last 10 steps (the
run-folder claims use the last quarter of its train rows instead). The run name carries the
method, the effective tag and r (`opsd-horizon2_ref_shuffled-r0.5-s0`): the gap level, the
reference control and the user's tag are read back from the tag (harness/config/gap.py writes
them in that order). A run that appears twice (a log repeats a stage's table) is kept once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.gap_data import GAP0
from analysis.tables import MEAN
from harness.runs.runinfo import ST

# method, tag (never the `r<r>` part itself), r, seed
NAME = re.compile(r"^(?P<method>[a-z_]+?)(?:-(?!r[0-9.]+-s\d+$)(?P<tag>[A-Za-z0-9_.]+?))?"
                  r"(?:-r(?P<r>[0-9.]+))?-s(?P<seed>\d+)$")
LEVEL = re.compile(r"(?:^|_)(?P<level>(?:horizon|leap)\d+)(?:_|$)")
REFERENCE = re.compile(r"(?:^|_)ref_(?P<ref>shuffled|corrupted|answer_only)(?:_|$)")
FINAL_KL = f"final_{ST}"


def _number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def split_tag(tag: str | None) -> tuple[str, str, str | None]:
    """(gap level, reference, user tag) of an effective tag: `paper_reward_horizon2` ->
    ('horizon2', 'own', 'paper_reward')."""
    if not tag:
        return GAP0, "own", None
    level_m, ref_m = LEVEL.search(tag), REFERENCE.search(tag)
    rest = tag
    if level_m:
        rest = rest.replace(level_m.group("level"), "")
    if ref_m:
        rest = rest.replace(f"ref_{ref_m.group('ref')}", "")
    rest = rest.strip("_")
    return (level_m.group("level") if level_m else GAP0, ref_m.group("ref") if ref_m else "own",
            rest or None)


def parse_row(line: str, suites: Sequence[str]) -> dict | None:
    """One run's values from a table line, or None for any other line."""
    words = [w for w in line.split() if not w.startswith("(")]  # drop the (Δ vs base) columns
    if len(words) < 2 or words[1] != "done":
        return None
    name = NAME.match(words[0])
    if name is None:
        return None
    values = words[2:]
    has_r = name.group("r") is not None
    expected = (3 if has_r else 2) + len(suites)  # [r] seed KL suites...
    if len(values) != expected:
        return None
    scores = [_number(v) for v in values[-len(suites):]]
    if None in scores:
        return None
    kl = _number(values[-len(suites) - 1])
    tag = name.group("tag")
    level, reference, user_tag = split_tag(tag)
    row = {"run": words[0], "method_name": name.group("method"), "tag": tag,
           "exposure": float(name.group("r")) if has_r else None, "seed": int(name.group("seed")),
           FINAL_KL: kl, "level": level, "reference": reference, "user_tag": user_tag}
    row.update({s: 100 * v for s, v in zip(suites, scores)})
    row[MEAN] = 100 * sum(scores) / len(scores)
    return row


def read_summaries(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Every finished run row of the tables in `paths` (each table's header names its suites)."""
    rows: dict[str, dict] = {}
    for path in paths:
        suites: list[str] = []
        for line in Path(path).read_text().splitlines():
            words = line.split()
            if words[:4] == ["run", "state", "r", "seed"]:
                suites = words[5:]
                continue
            row = parse_row(line, suites) if suites else None
            if row is not None:
                rows.setdefault(row["run"], row)
    return pd.DataFrame(list(rows.values()))
