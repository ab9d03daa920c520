"""Fault injection for tests: make one named run die or go non-finite at a given step.

HARNESS_FAULT="opsd-r1-s0:kill@3" python -m harness.run profile=smoke exposure=1

HARNESS_FAULT holds comma-separated `<run name>:<kind>@<step>[/<rank>]` items; a run acts only
on items with its own name, so one run of a sweep can fail while its siblings go on, and
with `/<rank>` only on that rank of a run of several processes (no suffix: every rank).
Kinds: `kill` - SIGKILL the run's own process once that step's metrics rows are
written (a hard crash: no handler runs); `raise` - raise InjectedFault there (an ordinary
error on one rank: harness/compute/failfast.py must end the others); `nan` - that step's
loss becomes NaN (the non-finite check must stop the run); `slow` - here the number is
seconds: every optimiser step takes that much longer (a run that outlasts a SLURM time
limit, for the requeue test). Unset, this module does nothing.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "HARNESS_FAULT"
KINDS = ("kill", "raise", "nan", "slow")


class InjectedFault(RuntimeError):
    """The error a `raise` item injects."""


def planned(run_name: str, kind: str) -> set[int]:
    """Steps at which `kind` is injected into this run (on this rank)."""
    steps = set()
    rank = os.environ.get("RANK", "0")
    for item in filter(None, (x.strip() for x in os.environ.get(ENV, "").split(","))):
        name, _, what = item.rpartition(":")
        k, _, at = what.partition("@")
        step, _, on_rank = at.partition("/")
        if k not in KINDS or not step.isdigit() or not name or not (on_rank == "" or on_rank.isdigit()):
            raise ValueError(f"{ENV} item {item!r} is not <run name>:<kill|raise|nan|slow>@<step or "
                             "seconds>[/<rank>]")
        if name == run_name and k == kind and on_rank in ("", rank):
            steps.add(int(step))
    return steps


def maybe_kill(run_name: str, step: int) -> None:
    if step in planned(run_name, "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    if step in planned(run_name, "raise"):
        raise InjectedFault(f"injected fault at step {step} (HARNESS_FAULT)")


def maybe_slow(run_name: str) -> None:
    seconds = max(planned(run_name, "slow"), default=0)
    if seconds:
        time.sleep(seconds)


def poison(run_name: str, step: int) -> bool:
    return step in planned(run_name, "nan")
