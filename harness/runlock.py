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
In a run of several processes (harness/distributed.py) rank 0 alone holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def hold(results: Path, run_name: str) -> Iterator[None]:
    path = Path(results) / ".locks" / f"{run_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            print(f"wait {Path(results) / run_name}: held by a live run ({fh.read().strip() or '?'})",
                  flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
