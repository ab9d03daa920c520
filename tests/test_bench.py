"""The probe benchmark runs, times both ways side by side, and both ways agree.

python -m pytest -q tests/test_bench.py
"""

import re
import subprocess
import sys


def test_probe_bench_prints_ratio_and_both_ways_agree():
    r = subprocess.run([sys.executable, "-m", "harness.bench", "--rollouts", "4", "--repeats", "2",
                        "profile=smoke"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "one forward" in r.stdout and "one per exposure" in r.stdout
    ratio = re.search(r"= ([0-9.]+)x; max \|mismatch difference\| = ([0-9.e+-]+)", r.stdout)
    assert ratio, r.stdout
    assert float(ratio.group(1)) > 0 and float(ratio.group(2)) < 1e-5


def test_probe_bench_bad_input_is_one_line():
    r = subprocess.run([sys.executable, "-m", "harness.bench", "--rollouts", "0", "profile=smoke"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--rollouts=0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
