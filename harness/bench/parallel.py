"""Two runs at the same time against the same two runs one after the other (the sweep's speed-up).

python -m harness.bench --only parallel [--rounds 3] [overrides]

A job of a local sweep is one `python -m harness.run` process holding one of
launcher.max_parallel training slots (harness/runs/slots.py), train.threads=1 each. This
starts two short identical runs (exposure 0.5 and 1.0, fresh results folders) as real
subprocesses: `serial` waits for the first before starting the second, `parallel` starts
both at once (launcher.max_parallel=2, the default). Wall time of each way from the
first start to the last exit, process start-up and evaluation included, as a sweep
pays them; rounds alternate the order. Sizes: RUN_OVERRIDES, after the command line's
overrides (they win, so that e.g. a long train.steps meant for another benchmark does
not stretch this one). Target (harness/DESIGN.md): serial / parallel >= 1.7 on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import interleave, median

DEFAULT_ROUNDS = 3
EXPOSURES = ("0.5", "1.0")
RUN_OVERRIDES = ["train.steps=20", "train.checkpoint_every=0", "eval.k=1"]
QUICK_OVERRIDES = ["train.steps=2", "train.checkpoint_every=0", "eval.k=1"]


def command(exposure: str, results: str, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "harness.run", f"exposure={exposure}", f"results={results}",
            "launcher.max_parallel=2", "train.threads=1", *overrides]


def start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"bench run failed (exit {p.returncode}): {' '.join(p.args)}\n{err[-1500:]}")


def runs(overrides: list[str], together: bool):
    def call(_: int) -> None:
        with tempfile.TemporaryDirectory(prefix="bench_parallel_") as tmp:
            cmds = [command(r, tmp, overrides) for r in EXPOSURES]
            if together:
                for p in [start(c) for c in cmds]:
                    finish(p)
            else:
                for c in cmds:
                    finish(start(c))
    return call


def run(b: BenchArgs) -> list[Result]:
    from harness.bench.trainers import base_path

    rounds = b.rounds or DEFAULT_ROUNDS
    base_path(b.cfg)  # a smoke base is built here once, not by two runs racing for it
    overrides = [*b.overrides, *(QUICK_OVERRIDES if b.quick else RUN_OVERRIDES)]
    times = interleave({"serial": runs(overrides, together=False),
                        "parallel": runs(overrides, together=True)}, rounds, warmup=0)
    serial_s, parallel_s = median(times["serial"]), median(times["parallel"])
    details = {"runs": [f"exposure={r}" for r in EXPOSURES], "run_overrides": overrides,
               "cpu_count": os.cpu_count()}
    return [Result("parallel_jobs", f"2 runs at once vs one after the other ({' '.join(overrides)})",
                   serial_s / parallel_s, "serial / parallel", Target(">=", 1.7), times, details=details,
                   limits=f"{serial_s:.0f} s vs {parallel_s:.0f} s; the ideal is 2.0 on 2 free cores: "
                          "other load on the machine and shared memory bandwidth take from it")]
