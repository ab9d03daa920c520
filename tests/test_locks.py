"""The run lock and the tune study lock against a second, real process holding them.

python -m pytest -q tests/test_locks.py

A child process takes the lock and holds it for a moment; this process then tries: the run
lock prints one line naming the holder and waits for it, the study lock refuses at once with
a one-line ConfigError naming the file. A lock left by a dead process is free.
The same again where flock fails as on Lustre without `-o flock` (ENOSYS, in every process here):
the heartbeat lockfile stands in, excludes, and a dead or silent holder's lockfile is taken over.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config.schema import ConfigError
from harness.runs import runlock
from harness.runs.runlock import exclusive, held_path, hold
from harness.tune.study import study_lock

ROOT = Path(__file__).resolve().parent.parent


# What fcntl.flock does on Lustre mounted without -o flock.
NO_FLOCK = ("import errno, fcntl\n"
            "def no_flock(*a): raise OSError(errno.ENOSYS, 'Function not implemented')\n"
            "fcntl.flock = no_flock\n")


def holder(path: Path, seconds: float, flock: bool = True) -> subprocess.Popen:
    """A child holding `path` through runlock.exclusive for `seconds`; returns once it holds it.
    It prints the time it leaves the lock (flock=False: a filesystem without flock)."""
    code = ("" if flock else NO_FLOCK) + (
        f"import time; from pathlib import Path; from harness.runs.runlock import exclusive\n"
        f"with exclusive(Path({str(path)!r}), on_busy=print):\n"
        f"    print('held', flush=True); time.sleep({seconds}); print(time.time(), flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    first = child.stdout.readline()
    if first.startswith("note: flock does not work"):  # the fallback says so first
        first = child.stdout.readline()
    assert first.strip() == "held"
    return child


@pytest.fixture
def no_flock(monkeypatch):
    """This process's flock fails as on Lustre without -o flock; waiters poll fast."""
    def fail(*_):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(runlock.fcntl, "flock", fail)
    monkeypatch.setattr(runlock, "POLL_S", 0.05)


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


def test_without_flock_a_second_process_waits_for_the_holder(tmp_path, capsys, no_flock):
    lock = tmp_path / ".locks" / "opsd-r0.5-s0.lock"
    child = holder(lock, 1.5, flock=False)
    with hold(tmp_path, "opsd-r0.5-s0"):
        entered = time.time()
        assert json.loads(held_path(lock).read_text())["pid"] == os.getpid()
    left = float(child.stdout.readline())
    child.wait(timeout=10)
    assert entered >= left  # mutual exclusion: this process got in only after the child left
    out = capsys.readouterr().out
    assert "flock does not work" in out
    assert f"wait {tmp_path / 'opsd-r0.5-s0'}: held by a live run" in out and f'"pid": {child.pid}' in out
    assert not held_path(lock).exists()  # released


def test_without_flock_the_study_lock_refuses_a_second_tune_at_once(tmp_path, no_flock):
    lock = tmp_path / "tune" / "fixed_smoke.lock"
    child = holder(lock, 5, flock=False)
    try:
        with pytest.raises(ConfigError, match=r"fixed_smoke\.lock: study held by a live make tune") as err:
            with study_lock(lock):
                pass
        assert str(child.pid) in str(err.value)
    finally:
        child.kill()
        child.wait()


def test_without_flock_a_dead_holders_lock_is_taken_over(tmp_path, no_flock):
    lock = tmp_path / "x.lock"
    child = holder(lock, 30, flock=False)
    child.kill()  # SIGKILL: its lockfile stays behind, naming a dead pid on this host
    child.wait()
    assert json.loads(held_path(lock).read_text())["pid"] == child.pid
    busy: list[str] = []
    with exclusive(lock, on_busy=busy.append):
        assert json.loads(held_path(lock).read_text())["pid"] == os.getpid()
    assert busy == []


def test_without_flock_another_hosts_lock_is_stale_only_without_heartbeat(tmp_path, no_flock):
    lock = tmp_path / "x.lock"
    held = held_path(lock)
    held.write_text(json.dumps({"host": f"not-{socket.gethostname()}", "pid": 1, "token": "t"}))

    def refuse(holder: str) -> None:
        raise ConfigError(holder)

    with pytest.raises(ConfigError, match="not-"):  # touched just now: a live holder elsewhere
        with exclusive(lock, on_busy=refuse):
            pass
    old = time.time() - runlock.STALE_S - 5
    os.utime(held, (old, old))
    with exclusive(lock, on_busy=refuse):
        assert json.loads(held.read_text())["pid"] == os.getpid()


def test_without_flock_the_holder_keeps_its_lockfile_fresh(tmp_path, no_flock, monkeypatch):
    monkeypatch.setattr(runlock, "HEARTBEAT_S", 0.05)
    lock = tmp_path / "x.lock"
    with exclusive(lock, on_busy=print):
        old = time.time() - 100
        os.utime(held_path(lock), (old, old))
        time.sleep(0.3)
        assert time.time() - held_path(lock).stat().st_mtime < 5
