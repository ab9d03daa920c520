"""One live process per run folder: an exclusive file lock held for the whole run.

python -m harness.run profile=smoke    # every run holds its lock; a second launch waits

Two sweeps on one results root must not train the same run twice at once. A job
takes `<results>/.locks/<run name>.lock` before it looks at the folder; a second
job for that run prints one line and waits, then finds the run done (skip) or
unfinished (resume). The OS drops the lock of a dead process, so a folder left
`running` by a crash is simply resumed by the next launch. The lock lives outside
the run folder so that force=true can move the folder away while holding it.
A SLURM job requeued at its time limit (README: requeue) finds the lock free: SLURM
ends the old instance's processes before the new one starts, and the OS drops their lock.
In a run of several processes (harness/compute/distributed.py) rank 0 alone holds it.
`exclusive` is the lock itself; `make tune`'s study lock (harness/tune/study.py) uses it too, refusing
instead of waiting.

Where `flock` does not work (Lustre mounted without `-o flock` raises ENOSYS, NFS without lockd
ENOLCK) the lock falls back to a lockfile created with O_EXCL next to it (`<name>.lock.held`),
naming its holder (host, pid) and kept fresh by a heartbeat thread that touches it every
HEARTBEAT_S. A lockfile is stale, and taken over, when its holder is a dead pid on this host
or its heartbeat is older than STALE_S (another host; clocks are assumed to agree within
minutes). Lustre's `localflock` cannot be detected: it excludes only within one node, so
results roots shared by several nodes need `-o flock` (or a filesystem without flock, which
takes the fallback).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

HEARTBEAT_S = 30.0  # how often a fallback lock's holder touches its lockfile
STALE_S = 600.0  # a fallback lock untouched this long is a dead holder's (a frozen node's)
POLL_S = 1.0  # how often a waiter looks at a fallback lock again
BREAKER_STALE_S = 60.0  # a takeover marker this old was left by a process that died taking over


@contextlib.contextmanager
def hold(results: Path, run_name: str) -> Iterator[None]:
    """The run's lock; a second holder prints one line and waits for it."""
    def wait(holder: str) -> None:
        print(f"wait {Path(results) / run_name}: held by a live run ({holder or '?'})", flush=True)

    with exclusive(lock_path(results, run_name), on_busy=wait):
        yield


def lock_path(results: Path, run_name: str) -> Path:
    """`<results>/.locks/<run name>.lock` (harness.runs.identity.RunIdentity.lock)."""
    return Path(results) / ".locks" / f"{run_name}.lock"


def holder_text() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


@contextlib.contextmanager
def exclusive(path: Path, on_busy: Callable[[str], None]) -> Iterator[None]:
    """An exclusive lock on `path`, which then names its holder (host, pid). When another
    process holds it, on_busy(that holder's text) runs first: it raises to refuse, or
    returns to wait for the lock. flock where the filesystem has it, else a lockfile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        got = try_lock(fh)
        if got is not None:
            with flocked(fh, got, on_busy):
                yield
            return
    print(f"note: flock does not work on {path.parent}: a heartbeat lockfile stands in", flush=True)
    with lockfile(held_path(path), on_busy):
        yield


def try_lock(fh) -> bool | None:
    """True: this process holds fh's flock now; False: another does; None: no flock here."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOSYS (Lustre without -o flock), ENOLCK (NFS without lockd), EOPNOTSUPP
        return None
    return True


@contextlib.contextmanager
def flocked(fh, got: bool, on_busy: Callable[[str], None]) -> Iterator[None]:
    """fh's flock (got: already taken), then fh names this process."""
    if not got:
        fh.seek(0)
        on_busy(fh.read().strip())  # outside any except: a refusal carries no chained error
        fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(holder_text()))
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)


# --- the fallback: an O_EXCL lockfile with a heartbeat -------------------------------------------

def held_path(path: Path) -> Path:
    return path.with_name(path.name + ".held")


@contextlib.contextmanager
def lockfile(held: Path, on_busy: Callable[[str], None]) -> Iterator[None]:
    """`held` created with O_EXCL (the holder's host, pid and a token inside), touched every
    HEARTBEAT_S while held, removed on release. A stale one is taken over."""
    me = {**holder_text(), "token": uuid.uuid4().hex}
    told = False
    while not create_excl(held, me):
        if is_stale(held):
            break_stale(held)
            continue
        if not told:
            on_busy(read_text(held))
            told = True
        time.sleep(POLL_S)
    stop = threading.Event()
    beat = threading.Thread(target=heartbeat, args=(held, stop), daemon=True, name="lock-heartbeat")
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        if holder_of(held).get("token") == me["token"]:  # never remove a lock taken over from us
            held.unlink(missing_ok=True)


def create_excl(held: Path, me: dict[str, object]) -> bool:
    """Create `held` naming me; False when it exists (atomic on local disks, NFSv3+ and Lustre)."""
    try:
        fd = os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(me))
    return True


def heartbeat(held: Path, stop: threading.Event) -> None:
    """Touch `held` until stop; its mtime is the holder's sign of life to other hosts."""
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(held)
        except FileNotFoundError:  # taken over as stale (this process froze longer than STALE_S)
            return


def read_text(held: Path) -> str:
    try:
        return held.read_text().strip()
    except OSError:
        return ""


def holder_of(held: Path) -> dict:
    """The lockfile's holder, {} when it is gone or not written yet."""
    try:
        got = json.loads(read_text(held))
    except ValueError:
        return {}
    return got if isinstance(got, dict) else {}


def age_s(held: Path) -> float:
    try:
        return time.time() - held.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def is_stale(held: Path) -> bool:
    """A dead pid on this host, or no heartbeat for STALE_S (another host, or no holder written:
    a process that died between creating the file and writing it)."""
    h = holder_of(held)
    pid = h.get("pid")
    if h.get("host") == socket.gethostname() and isinstance(pid, int) and not process_alive(pid):
        return True
    return age_s(held) > STALE_S


def process_alive(pid: int) -> bool:
    """Whether pid runs on this host: a zombie (dead, its parent has not reaped it yet) counts as
    dead, as it holds nothing any more (harness/compute/failfast.py's watchdog reads this too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):  # no procfs (macOS): kill(pid, 0) said alive
        return True
    return state != "Z"


def break_stale(held: Path) -> None:
    """Remove `held` if it is still the stale one. Two waiters may both find it stale: the
    takeover itself is exclusive (an O_EXCL marker), and the holder is read again under it,
    so a waiter never removes the lock another has just taken."""
    breaker = held.with_name(held.name + ".breaking")
    stale = holder_of(held)
    if not create_excl(breaker, holder_text()):
        if age_s(breaker) > BREAKER_STALE_S:  # a process died inside this very function
            breaker.unlink(missing_ok=True)
        time.sleep(POLL_S / 10)
        return
    try:
        if holder_of(held) == stale and is_stale(held):
            held.unlink(missing_ok=True)
    finally:
        breaker.unlink(missing_ok=True)
