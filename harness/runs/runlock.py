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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path


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


@contextlib.contextmanager
def exclusive(path: Path, on_busy: Callable[[str], None]) -> Iterator[None]:
    """An exclusive flock on `path`, which then names its holder (host, pid). When another
    process holds it, on_busy(that holder's text) runs first: it raises to refuse, or
    returns to wait for the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        if not try_lock(fh):
            fh.seek(0)
            on_busy(fh.read().strip())  # outside the except: a refusal carries no chained error
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def try_lock(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
