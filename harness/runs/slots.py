"""Cap how many local jobs train at once: each job holds one of N file-lock slots.

python -c "from harness.runs.slots import slot; import pathlib; \
    print(slot(pathlib.Path('/tmp/s'), 2).__enter__())"

submitit's local executor starts every job of a sweep at once; on a 2-core laptop
that thrashes. A job blocks here until one of `max_parallel` flock slots under the
results root is free (0 = no cap, as on SLURM). The OS releases a dead job's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def slot(root: Path, max_parallel: int, poll_s: float = 0.5) -> Iterator[int | None]:
    if max_parallel <= 0:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(max_parallel):
            f = open(root / f"slot-{i}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield i
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
            return
        time.sleep(poll_s)
