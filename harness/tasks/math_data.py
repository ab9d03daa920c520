"""Math datasets: rows of a hub dataset or a local JSON/JSONL/parquet file -> Problems.

python -m harness.run task=math task.train_data.path=train.jsonl model.path=MODEL   # reads these

A source (harness/config/schema.py DataSource) names a hub id (`datasets.load_dataset`) or a
local file by its suffix, and the fields holding problem, solution, answer and id in
that dataset's own schema (sweeps/task/math.yaml maps the public ones). `check_source`
runs when the config is built, so a missing file or field is one ConfigError line
before launch; hub sources are checked when loaded (nothing can be downloaded here).

Reasoning steps of a math solution are its paragraphs (blank-line separated): the unit
of `exposure_unit=steps`, joined back with STEP_SEP.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.tasks.grading import extract_boxed
from harness.tasks.problem import Problem

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")
STEP_SEP = "\n\n"
_PARAGRAPH_RE = re.compile(r"\n\s*\n")


def is_local(path: str) -> bool:
    return path.endswith(LOCAL_SUFFIXES) or Path(path).is_file()


def split_steps(solution: str) -> tuple[str, ...]:
    """The solution's paragraphs, stripped; a one-paragraph solution falls back to lines
    (so a step cut is never all-or-nothing on a solution written without blank lines)."""
    steps = tuple(s.strip() for s in _PARAGRAPH_RE.split(solution) if s.strip())
    if len(steps) <= 1:
        steps = tuple(s.strip() for s in solution.splitlines() if s.strip())
    return steps


def read_rows(path: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local .json (a list of objects, or {"data": [...]}) / .jsonl / .parquet
    file, or of a hub dataset's split."""
    if not is_local(path):
        from datasets import load_dataset  # hub ids only: needs network or the HF cache

        return [dict(r) for r in load_dataset(path, split=split)]
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    text = p.read_text()
    if p.suffix == ".jsonl":
        return [_json_line(line, p, i) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{p} is not valid JSON ({err})") from None
    return data["data"] if isinstance(data, dict) and "data" in data else list(data)


def _json_line(line: str, path: Path, number: int) -> Any:
    """One jsonl row; a broken line fails naming the file and line (json's own error names neither)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"{path}:{number} is not valid JSON") from None


def _columns(path: str) -> list[str]:
    """Field names of a local file (parquet: its schema; json/jsonl: the first row's)."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(p).names)
    if p.suffix == ".jsonl":  # the first row only: this runs every time a config is built
        with p.open() as f:
            first = next((line for line in f if line.strip()), "")
        return list(json.loads(first)) if first else []
    rows = read_rows(path)
    return list(rows[0]) if rows else []


def mapped_fields(src) -> dict[str, str]:
    """role -> field name of the dataset, for the roles the source maps."""
    roles = {"problem": src.problem, "solution": src.solution, "answer": src.answer, "id": src.id}
    return {role: name for role, name in roles.items() if name}


def check_source(src) -> str | None:
    """None when a local source's file exists and has every mapped field, else the one-line
    reason. Hub ids (no local suffix) pass: they are checked when loaded."""
    if not src.path:
        return f"task data {src.name}: path is empty (a hub dataset id or a local file)"
    if not is_local(src.path):
        return None
    if not Path(src.path).is_file():
        return f"task data {src.name}: file {src.path!r} does not exist"
    try:
        cols = _columns(src.path)
    except (ValueError, OSError) as err:
        return f"task data {src.name}: cannot read {src.path!r}: {str(err).splitlines()[0]}"
    if not cols:
        return f"task data {src.name}: {src.path!r} has no rows"
    missing = [f"{role}={name!r}" for role, name in mapped_fields(src).items() if name not in cols]
    if missing:
        return (f"task data {src.name}: {src.path!r} lacks field(s) {', '.join(missing)}; "
                f"it has {cols}")
    return None


_LOADED: dict[tuple, list[Problem]] = {}  # TaskData is built per evaluation: read a source once


def load_problems(src) -> list[Problem]:
    """The source's rows as Problems (answer: the mapped field, or the last \\boxed{} of the
    solution); a row without an answer fails naming its index."""
    key = (src.name, src.path, src.split, src.problem, src.solution, src.answer, src.id, src.limit,
           Path(src.path).stat().st_mtime if is_local(src.path) else None)
    if key not in _LOADED:
        _LOADED[key] = _load(src)
    return list(_LOADED[key])


def _load(src) -> list[Problem]:
    rows = read_rows(src.path, src.split)
    if src.limit:
        rows = rows[: src.limit]
    fields = mapped_fields(src)
    out = []
    for i, row in enumerate(rows):
        # Every row, not only the first (check_source's): a later row without a field was a KeyError.
        if missing := [n for n in fields.values() if n not in row]:
            raise ValueError(f"task data {src.name}: row {i} of {src.path!r} lacks field(s) {missing}")
        solution = str(row[src.solution]) if src.solution else ""
        answer = row[src.answer] if src.answer else extract_boxed(solution)
        if answer is None or str(answer).strip() == "":
            raise ValueError(f"task data {src.name}: row {i} of {src.path!r} has no answer")
        pid = f"{src.name}-{row[src.id]}" if src.id else f"{src.name}-{i}"
        out.append(Problem(id=pid, problem=str(row[src.problem]), solution=solution,
                           answer=str(answer).strip(), steps=split_steps(solution)))
    return out


def train_stream(rows: list[Problem], seed: int) -> Iterator[Problem]:
    """Endless training problems: the rows in a seeded order, reshuffled every pass."""
    rng = random.Random(seed * 7919 + 17)
    while True:
        order = list(rows)
        rng.shuffle(order)
        yield from order
