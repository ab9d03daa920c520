"""The run lock and the tune study lock against a second, real process holding them.

python -m pytest -q tests/test_locks.py

A child process takes the lock and holds it for a moment; this process then tries: the run
lock prints one line naming the holder and waits for it, the study lock refuses at once with
a one-line ConfigError naming the file. A lock left by a dead process is free.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config.schema import ConfigError
from harness.runs.runlock import exclusive, hold
from harness.tune.study import study_lock

ROOT = Path(__file__).resolve().parent.parent


def holder(path: Path, seconds: float) -> subprocess.Popen:
    """A child holding `path` through runlock.exclusive for `seconds`; returns once it holds it."""
    code = (f"import time; from pathlib import Path; from harness.runs.runlock import exclusive\n"
            f"with exclusive(Path({str(path)!r}), on_busy=print):\n"
            f"    print('held', flush=True); time.sleep({seconds})\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_run_lock_waits_for_the_live_holder_then_takes_it(tmp_path, capsys):
    lock = tmp_path / ".locks" / "opsd-r0.5-s0.lock"
    child = holder(lock, 1.5)
    t0 = time.monotonic()
    with hold(tmp_path, "opsd-r0.5-s0"):
        waited = time.monotonic() - t0
        assert json.loads(lock.read_text())["pid"] != child.pid  # now names this process
    child.wait(timeout=10)
    out = capsys.readouterr().out
    assert f"wait {tmp_path / 'opsd-r0.5-s0'}: held by a live run" in out
    assert f'"pid": {child.pid}' in out  # the line names the holder
    assert waited > 0.5


def test_study_lock_refuses_a_second_tune_at_once(tmp_path):
    lock = tmp_path / "tune" / "fixed_smoke.lock"
    child = holder(lock, 5)
    try:
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=r"fixed_smoke\.lock: study held by a live make tune") as err:
            with study_lock(lock):
                pass
        assert time.monotonic() - t0 < 2
        assert str(child.pid) in str(err.value) and err.value.__context__ is None
    finally:
        child.kill()
        child.wait()


def test_a_dead_holders_lock_is_free(tmp_path):
    lock = tmp_path / "x.lock"
    child = holder(lock, 30)
    child.kill()
    child.wait()
    busy: list[str] = []
    with exclusive(lock, on_busy=busy.append):
        pass
    assert busy == []
