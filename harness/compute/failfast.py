"""Any rank's failure ends the whole run within seconds, with the failing rank and its reason.

python -m pytest -q tests/test_failfast.py   # rank 1 fails: both processes exit non-zero, fast

A run of several processes (harness/compute/distributed.py) used to print a rank's exception
and leave the others blocked in a collective until the process group's timeout (hours on the
paper presets). Here, in a run of several processes:
- a rank whose run raises writes a marker file `rank-<r>.json` (rank, host, error, traceback)
  into a folder shared by the attempt (`<results>/.failfast/<attempt>/`, on the shared results
  file system), then leaves with exit code 1 (os._exit: a normal exit would wait in the
  process group's teardown for ranks that never answer);
- every rank runs a watchdog thread that polls that folder; on another rank's marker it
  ends its own process with exit code 1. Rank 0's watchdog first marks the run folder's
  status.json failed, naming the rank and its error (rank 0 alone writes the folder).
A SystemExit (submitit's requeue at a time limit or preemption) is no failure: no marker,
and the requeued job resumes. With one process nothing here runs: errors propagate as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.compute.distributed import share_from_main, world
from harness.runs.rundir import write_json
from harness.runs.runlock import process_alive

POLL_S = 1.0  # how often a watchdog looks; the job ends within a few polls of a failure
ACK_WAIT_S = 20.0  # how long a failing rank other than 0 waits for rank 0 to record its failure


class Attempt:
    """One start of a run of several processes: its marker folder and its watchdog."""

    def __init__(self, folder: Path, run_status: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.folder = folder
        self.rank = world()[0]
        self.run_status = run_status  # rank 0: writes the run folder's status.json
        self._stop = threading.Event()

    @classmethod
    def start(cls, results: Path) -> Attempt:
        """Every rank: the attempt's folder (rank 0 names it; a collective), watched from now on."""
        token = share_from_main(f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}")
        attempt = cls(Path(results) / ".failfast" / token)
        attempt.folder.mkdir(parents=True, exist_ok=True)
        attempt._write(f"alive-{attempt.rank}.json", {"rank": attempt.rank, "host": socket.gethostname(),
                                                      "pid": os.getpid()})
        threading.Thread(target=attempt._watch, name="failfast-watchdog", daemon=True).start()
        return attempt

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        """Complete or absent to the readers (harness/runs/rundir.py write_json: tmp + rename)."""
        write_json(self.folder / name, payload)

    def dead_peers(self) -> list[dict[str, Any]]:
        """Ranks on this host whose process is gone without a marker or a clean close: killed
        (SIGKILL, the OOM killer). Another host's processes are SLURM's to watch: the launcher
        sets SLURM_KILL_BAD_EXIT (sweeps/launcher/slurm.yaml)."""
        host, dead = socket.gethostname(), []
        for path in self.folder.glob("alive-*.json"):
            try:
                peer = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            r = peer["rank"]
            if (r == self.rank or peer["host"] != host or (self.folder / f"closed-{r}").exists()
                    or (self.folder / f"rank-{r}.json").exists()):  # closed, or failed with a reason
                continue
            if not process_alive(peer["pid"]) and not (self.folder / f"closed-{r}").exists():
                dead.append({"rank": r, "host": host, "error": "its process died without an "
                             "exception (killed: SIGKILL or out of memory?)"})
        return dead

    def markers(self) -> list[dict[str, Any]]:
        """Failure markers of the other ranks, lowest rank first."""
        found = []
        for path in sorted(self.folder.glob("rank-*.json")):
            try:
                marker = json.loads(path.read_text())
            except (OSError, ValueError):  # being written: read at the next poll
                continue
            if marker.get("rank") != self.rank:
                found.append(marker)
        return found

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            failed = self.dead_peers() or sorted(self.markers(), key=lambda m: m["time"])
            if failed and not self._stop.is_set():
                self._end_for(failed[0])

    def _end_for(self, marker: dict[str, Any]) -> None:
        msg = f"rank {marker['rank']} failed: {marker['error']}"
        print(f"[rank {self.rank}] ending: {msg}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):  # an exit on purpose: no peer may take it for the cause
            (self.folder / f"closed-{self.rank}").touch()
        if self.run_status is not None:
            self.run_status(msg, {"failed_rank": marker["rank"], "failed_host": marker.get("host"),
                                  "traceback": marker.get("traceback", "")})
        os._exit(1)

    def fail(self, err: BaseException) -> None:
        """This rank failed: leave a marker for the others, record the first cause (rank 0), exit 1.

        A rank's error is often the echo of another's: gloo raises "connection closed by peer"
        the moment a peer dies. So the marker goes out first, then, after a few polls, the
        cause recorded is the earliest: a peer that died without a marker, or the earliest
        marker (this rank's own when it failed first)."""
        error = f"{type(err).__name__}: {err}".splitlines()[0]
        tb = "".join(traceback.format_exception(err))[-4000:]
        print(tb, file=sys.stderr, flush=True)
        mine = {"rank": self.rank, "host": socket.gethostname(), "pid": os.getpid(),
                "error": error, "traceback": tb, "time": time.time()}
        self._write(f"rank-{self.rank}.json", mine)
        self._stop.set()  # this thread decides from here on
        time.sleep(2 * POLL_S)
        dead = self.dead_peers()
        cause = dead[0] if dead else min([mine, *self.markers()], key=lambda m: m["time"])
        if self.run_status is not None:
            self.run_status(f"rank {cause['rank']} failed: {cause['error']}",
                            {"failed_rank": cause["rank"], "failed_host": cause.get("host"),
                             "traceback": cause.get("traceback", "")})
        else:  # give rank 0's watchdog the time to write status.json before this rank's exit
            time.sleep(min(ACK_WAIT_S, 3 * POLL_S))
        os._exit(1)

    def close(self) -> None:
        """The run ended well on every rank: stop watching; rank 0 removes the folder."""
        self._stop.set()
        with contextlib.suppress(OSError):  # rank 0 may have removed the folder already
            (self.folder / f"closed-{self.rank}").touch()
        if self.rank == 0:
            shutil.rmtree(self.folder, ignore_errors=True)


def guarded(attempt: Attempt | None, body: Callable[[], Any]) -> Any:
    """body() on this rank; an exception (not a requeue's SystemExit) ends the whole run."""
    if attempt is None:
        return body()
    from harness.compute.distributed import MainRankFailed
    from harness.config.fields import ConfigError

    try:
        return body()
    except (SystemExit, ConfigError):  # a requeue; a refusal every rank reaches (its one line)
        raise
    except MainRankFailed as err:  # rank 0 failed at a decision and reports it itself
        print(f"[rank {attempt.rank}] {err}", file=sys.stderr, flush=True)
        os._exit(1)
    except BaseException as err:  # KeyboardInterrupt included: the other ranks must not wait
        attempt.fail(err)
        raise  # not reached: fail() exits
