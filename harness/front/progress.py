"""A progress bar over a sweep's runs, read from their run folders while the launcher works.

python -m harness.run -m exposure=0,1 profile=smoke      # harness/front/grid_sweeper.py shows it

The jobs' own bars go to the launcher's log files (submitit), so the sweep itself
shows one bar: optimiser steps done over all runs of the group, and how many runs
are done or failed. It only reads status.json and metrics.jsonl.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from harness.runs.runinfo import read_run


def steps_done(folder: Path, steps: int) -> tuple[int, str]:
    """(optimiser steps finished, state) of one run folder; a done run counts all its steps.

    Read through harness.runs.runinfo: state as the summary and analysis see it (pending, missing,
    running, done, failed), steps the last train row's step.
    """
    info = read_run(folder)
    if info.state == "done":
        return steps, info.state
    return info.last_step, info.state


def watch(is_running: Callable[[], bool], runs: list[tuple[Path, int]], every_s: float = 2.0) -> None:
    """Show steps done over `runs` ((folder, steps) pairs) until is_running() turns false."""
    total = sum(steps for _, steps in runs)
    already = sum(steps_done(folder, steps)[0] for folder, steps in runs)  # rate counts new steps only
    with tqdm(total=total, initial=already, unit="step", desc=f"{len(runs)} runs",
              dynamic_ncols=True) as bar:
        while True:
            running = is_running()
            states = [steps_done(folder, steps) for folder, steps in runs]
            bar.n = sum(n for n, _ in states)
            bar.set_postfix(done=sum(s == "done" for _, s in states),
                            failed=sum(s == "failed" for _, s in states), refresh=False)
            bar.refresh()
            if not running:
                return
            time.sleep(every_s)
