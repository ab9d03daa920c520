"""`make bench`: every benchmark runs (--quick, smoke profile), writes its json and a README row.

python -m pytest -q tests/test_bench.py
"""

import json
import subprocess
import sys

import pytest

from harness.bench.record import ORDER, Result, Target, table, write
from harness.bench.timing import interleave, paired_median

FIELDS = ("name", "what", "ratio", "ratio_of", "target", "verdict", "rounds", "unit", "medians",
          "samples", "details", "machine", "command", "profile")
MACHINE = ("cpu", "cpu_count", "torch_threads", "torch", "date")


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory, smoke_base):
    out = tmp_path_factory.mktemp("bench")
    r = subprocess.run([sys.executable, "-m", "harness.bench", "--quick", "--out", str(out), "profile=smoke"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stdout


@pytest.mark.slow  # every benchmark once (~80 s): make test-slow
def test_every_benchmark_writes_its_json(quick_bench):
    out, stdout = quick_bench
    for name in ORDER:
        d = json.loads((out / f"{name}.json").read_text())
        assert all(k in d for k in FIELDS), (name, sorted(d))
        assert all(k in d["machine"] for k in MACHINE), d["machine"]
        assert d["ratio"] > 0 and d["rounds"] == 1, (name, d["ratio"])
        assert all(v > 0 for v in d["medians"].values()), (name, d["medians"])
        expected = "info" if d["target"] is None else ("pass" if Target(**d["target_parts"]).met(d["ratio"])
                                                       else "miss")
        assert d["verdict"] == expected, (name, d["verdict"], d["ratio"], d["target"])
        assert f"{name}:" in stdout  # printed, MISS or not
    assert json.loads((out / "probe_share.json").read_text())["target"] == "<= 0.15"


@pytest.mark.slow  # shares the benchmarks' run (~80 s): make test-slow
def test_readme_table_lists_every_benchmark(quick_bench):
    out, _ = quick_bench
    readme = (out / "README.md").read_text()
    rows = [line.split("|")[1].strip() for line in readme.splitlines()
            if line.startswith("| ") and "---" not in line]
    assert rows[1:] == list(ORDER), rows


@pytest.mark.slow  # shares the benchmarks' run (~80 s): make test-slow
def test_probe_batching_both_ways_agree(quick_bench):
    out, _ = quick_bench
    by = json.loads((out / "probe_batching.json").read_text())["details"]["by_rollouts"]
    assert set(by) == {"2", "4"}  # --quick's rollout counts (smoke: 4 prompts a step)
    assert all(v["max_abs_mismatch_difference"] < 1e-5 for v in by.values()), by


@pytest.mark.parametrize("args,names", [(["--only", "nope"], "--only='nope'"),
                                        (["--rounds", "0"], "--rounds=0"),
                                        (["no_such_key=1"], "no_such_key")])
def test_bad_input_is_one_line(args, names):
    r = subprocess.run([sys.executable, "-m", "harness.bench", *args, "profile=smoke"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and names in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missed_target_is_reported_and_table_keeps_other_rows(tmp_path):
    ctx = {"command": "test", "profile": "smoke"}
    write(tmp_path, Result("opsd_vs_sdft", "a", 1.3, "x / y", Target("<=", 1.1), {"x": [1.3]}), ctx)
    write(tmp_path, Result("eval_batched", "b", 6.0, "x / y", Target(">=", 5.0), {"x": [6.0]}), ctx)
    miss = Result("parallel_jobs", "c", 1.5, "x / y", Target(">=", 1.7), {"x": [1.5]})
    assert miss.verdict == "miss" and miss.line().startswith("MISS parallel_jobs: 1.5")
    text = table(tmp_path)
    assert "| opsd_vs_sdft | 1.3 (x / y) | <= 1.1 | miss |" in text
    assert "| eval_batched | 6 (x / y) | >= 5 | pass |" in text


def test_interleave_rotates_the_order_and_times_every_round():
    calls = []
    times = interleave({"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}, 3)
    assert calls == [("a", -1), ("b", -1), ("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert [len(v) for v in times.values()] == [3, 3]
    assert paired_median([3.0, 5.0, 4.0], [1.0, 1.0, 3.0]) == 2.0


def test_probe_count_of_a_default_run():
    from harness.bench.probe import run_probes

    assert run_probes(10, 150) == 16  # step 1, then 10, 20, ..., 150
    assert run_probes(0, 150) == 0 and run_probes(2, 4) == 3
