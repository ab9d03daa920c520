"""Every registered source and loss runs on the smoke profile, and every key it writes is documented.

python -m pytest -q -m slow tests/test_schema_true.py      # or: make test-slow

harness/runs/schema.py documents each key of metrics.jsonl and eval.json once; the analysis
reads those names. One short run per registered source (with loss=opsd, or grpo for the
source without a teacher) and per registered loss (at a fixed r), each in its own process
as a launcher would start it; a key a component writes and the schema lacks fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.registry import components
from harness.runs.schema import EVAL_JSON, undocumented


def axes() -> list[tuple[str, str]]:
    """(source, loss): every registered source once, then every other registered loss once."""
    out = [(s.option or s.name, "opsd" if s.has_teacher else "grpo") for s in components("source")]
    out += [("fixed", c.name) for c in components("loss") if c.has_teacher and c.name != "opsd"]
    return out


@pytest.mark.slow  # one run per registered component (~1.5 min in all): make test-slow
@pytest.mark.parametrize(("source", "loss"), axes())
def test_every_key_a_component_writes_is_documented(source, loss, smoke_base, tmp_path):
    cmd = [sys.executable, "-m", "harness.run", "profile=smoke", f"source={source}", f"loss={loss}",
           f"results={tmp_path}", "train.steps=2", "probe.every=1", "controller.hold=1", "eval.every=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} >= {"train", "eval"}
    if loss == "opsd":  # the OPSD trainer probes the mismatch (the RL trainers do not)
        assert "probe" in {r["kind"] for r in rows}
    for row in rows:
        assert not undocumented(row), (row["kind"], undocumented(row))
    assert set(json.loads((folder / "eval.json").read_text())) <= set(EVAL_JSON)
