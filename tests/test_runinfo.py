"""The run-folder reader (harness.runs.runinfo) on hand-written run folders: final mismatch, labels,
run names, states; and the sweep summary and progress bar that read through it.

python -m pytest -q tests/test_runinfo.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from harness.config.schema import run_name
from harness.front.progress import steps_done
from harness.front.summary import print_summary
from harness.runs.naming import method_label
from harness.runs.runinfo import FINAL_FRACTION, final_value, read_run, read_runs


def write_run(folder: Path, config: dict | None = None, status: dict | None = None,
              metrics: list[dict] | None = None, suites: dict | None = None, tail: str = "") -> Path:
    """A run folder as harness.runs.rundir writes it, with only the files given."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))
    if metrics is not None:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics) + tail)
    if suites is not None:
        evaluation = {"suites": {k: {"average": v} for k, v in suites.items()}}
        (folder / "eval.json").write_text(json.dumps(evaluation))
    return folder


def opsd_config(exposure: float, seed: int, tag: str | None = None, steps: int = 8) -> dict:
    return {"method": {"name": "opsd", "exposure_source": "fixed"}, "exposure": exposure, "seed": seed,
            "tag": tag, "name": None, "profile": "smoke", "train": {"steps": steps}}


def train_and_probe_rows(kl: list[float]) -> list[dict]:
    """One train row per step (mismatch kl[i]), with a probe row before each (they must not count)."""
    rows = []
    for step, value in enumerate(kl, start=1):
        rows.append({"step": step, "kind": "probe", "probe_exposure": 1.0, "mismatch_kl_st": 99.0})
        rows.append({"step": step, "kind": "train", "mismatch_kl_st": value, "mismatch_kl_ts": 2 * value})
    return rows


def test_final_mismatch_is_the_mean_of_the_last_quarter(tmp_path):
    kl = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]  # 10 steps: ceil(2.5) = the last 3
    info = read_run(write_run(tmp_path / "opsd-r1-s0", opsd_config(1, 0), {"state": "done"},
                              train_and_probe_rows(kl)))
    assert FINAL_FRACTION == 0.25
    assert info.final_mismatch() == pytest.approx((8 + 9 + 10) / 3)
    assert info.final_mismatch("mismatch_kl_ts") == pytest.approx(2 * (8 + 9 + 10) / 3)
    assert info.train_steps == 10 and info.last_step == 10 and len(info.probe_rows) == 10
    # one row counts alone; no rows, or a key never logged, is None (not 0)
    assert final_value([{"mismatch_kl_st": 0.5}]) == 0.5
    assert final_value([]) is None and final_value([{"loss": 1.0}]) is None


def test_final_mismatch_ignores_a_truncated_last_line(tmp_path):
    folder = write_run(tmp_path / "opsd-r0.5-s1", opsd_config(0.5, 1), {"state": "running"},
                       train_and_probe_rows([0.1, 0.2, 0.3, 0.4]), tail='{"step": 5, "kind": "tra')
    info = read_run(folder)
    assert info.train_steps == 4 and info.final_mismatch() == pytest.approx(0.4)
    assert steps_done(folder, 8) == (4, "running")


@pytest.mark.parametrize("method, source, exposure, seed, tag, label", [
    ("opsd", "fixed", 1.0, 0, None, "OPSD (r = 1)"),
    ("opsd", "fixed", 0.25, 2, None, "Fixed r = 0.25"),
    ("opsd", "fixed", 1.0, 1, "live", "Fixed r = 1 [live]"),
    ("atesd", "controller", 0.0, 0, None, "ATESD"),
    ("atesd", "controller", 0.0, 1, "noctx", "ATESD [noctx]"),
    ("random", "random", 0.0, 0, None, "Random r"),
    ("schedule", "schedule", 0.0, 3, None, "Schedule"),
    ("base", "fixed", 0.0, 0, None, "Base model"),
])
def test_names_round_trip_and_labels(tmp_path, method, source, exposure, seed, tag, label):
    name = run_name(method, source, exposure, seed, tag)
    config = {"method": {"name": method, "exposure_source": source}, "exposure": exposure, "seed": seed,
              "tag": tag, "name": None}
    info = read_run(write_run(tmp_path / name, config, {"state": "done"}))
    assert info.name == info.run == name  # the reader rebuilds the folder name with the one rule
    assert info.label == label
    # the method key is the run name without its seed: seeds of one method share it
    assert info.method == (name if method == "base" else name.removesuffix(f"-s{seed}"))
    assert method_label(method, tag, info.is_fixed, info.exposure) == label


def test_an_explicit_name_wins(tmp_path):
    config = {**opsd_config(1, 0), "name": "my-run"}
    info = read_run(write_run(tmp_path / "my-run", config, {"state": "done"}))
    assert info.name == "my-run" == run_name("opsd", "fixed", 1, 0, None, "my-run")
    assert info.method == "opsd-r1"  # grouped with its seeds all the same


def test_states_of_missing_pending_and_partial_folders(tmp_path):
    missing = read_run(tmp_path / "nothing-here")
    assert missing.state == "missing" and missing.train_steps == 0 and missing.final_mismatch() is None
    assert missing.suite_averages == {} and missing.name is None and missing.method == "unknown"
    pending = read_run(write_run(tmp_path / "opsd-r1-s0", opsd_config(1, 0)))  # waits for a slot
    assert pending.state == "pending" and steps_done(pending.folder, 8) == (0, "pending")
    failed = read_run(write_run(tmp_path / "opsd-r1-s1", opsd_config(1, 1),
                                {"state": "failed", "reason": "CUDA out of memory", "starts": 2},
                                train_and_probe_rows([0.3, 0.2])))
    assert (failed.state, failed.reason, failed.starts, failed.last_step) == \
        ("failed", "CUDA out of memory", 2, 2)
    broken = write_run(tmp_path / "opsd-r0-s0", opsd_config(0, 0), {"state": "running"},
                       [{"step": 1, "kind": "train"}], tail="not json\n{\"step\": 2}\n")
    info = read_run(broken)
    assert info.metrics == [] and "not valid JSON" in info.problem  # recorded, not raised
    bad_yaml = write_run(tmp_path / "x", status={"state": "done"})
    (bad_yaml / "config.yaml").write_text("a: [unclosed")
    assert read_run(bad_yaml).problem.startswith("config.yaml unreadable")
    done = write_run(tmp_path / "done-run", opsd_config(1, 2), {"state": "done"})
    assert steps_done(done, 8) == (8, "done")  # a done run counts all its steps


def test_summary_reads_through_the_reader(tmp_path, capsys):
    write_run(tmp_path / "base", {"method": {"name": "base", "exposure_source": "fixed"}, "exposure": 0,
                                  "seed": 0}, {"state": "done"}, suites={"easy": 0.5})
    write_run(tmp_path / "opsd-r0.5-s0", opsd_config(0.5, 0), {"state": "done"},
              train_and_probe_rows([0.4, 0.4, 0.4, 0.2]), suites={"easy": 0.75})
    rows = print_summary(tmp_path, ["base", "opsd-r0.5-s0", "opsd-r1-s0"])
    by_run = {r["run"]: r for r in rows}
    assert [r["run"] for r in rows] == ["base", "opsd-r0.5-s0", "opsd-r1-s0"]
    assert by_run["opsd-r0.5-s0"]["mismatch"] == pytest.approx(0.2)  # the last quarter of 4 steps
    assert by_run["opsd-r0.5-s0"]["exposure"] == 0.5 and by_run["base"]["exposure"] is None
    assert by_run["opsd-r1-s0"]["state"] == "missing"
    out = capsys.readouterr().out
    assert "0.750 (+0.250)" in out and "opsd-r1-s0 missing: no reason recorded" in out
    assert [i.run for i in read_runs(tmp_path)] == ["base", "opsd-r0.5-s0"]  # folders with status.json
    assert math.isnan(read_run(tmp_path / "base").exposure)
