"""Run the benchmarks, write one json per ratio and the README table: `make bench`.

python -m harness.bench [--only step,probe,memory,memory_real_vocab,eval,parallel,kernel] [--rounds N]
                        [--quick]
                        [--out results/bench] [hydra overrides, e.g. profile=smoke]

--rounds sets every benchmark's timed rounds (default: each its own, see BENCHMARKS);
--quick shrinks the benchmarks' own sizes (rollout counts, problems, run length) and
runs one round, for tests. A missed target is printed (MISS ...) and kept in the json;
the command still exits 0, having measured what it was asked to.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
from pathlib import Path

from harness.bench.record import BenchArgs, write, write_readme

# name -> module with DEFAULT_ROUNDS and run(BenchArgs) -> list[Result]
BENCHMARKS = {"step": "harness.bench.step", "probe": "harness.bench.probe",
              "memory": "harness.bench.memory", "memory_real_vocab": "harness.bench.memory_real_vocab",
              "eval": "harness.bench.eval_speed", "parallel": "harness.bench.parallel",
              "kernel": "harness.bench.kernel"}


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHMARKS),
                    help=f"comma-separated benchmarks, of {', '.join(BENCHMARKS)}")
    ap.add_argument("--rounds", type=int, help="timed rounds of every benchmark (default: its own)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and one round (tests)")
    ap.add_argument("--out", default="results/bench", help="folder of the json files and README.md")
    ap.add_argument("overrides", nargs="*", help="hydra overrides, e.g. profile=smoke")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.only.split(",") if n.strip()]
    return a, names


def check(a: argparse.Namespace, names: list[str]) -> None:
    from harness.config.schema import ConfigError

    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise ConfigError(f"--only={a.only!r} is invalid: one or more of {', '.join(BENCHMARKS)}")
    if a.rounds is not None and a.rounds < 1:
        raise ConfigError(f"--rounds={a.rounds} is invalid: >= 1")


def main(argv: list[str]) -> None:
    from harness.config.settings import compose, fail

    a, names = parse(argv)
    try:
        check(a, names)
        cfg = compose(a.overrides)
    except ValueError as err:
        fail(err)
    import torch  # after the input is known good: a bad flag answers in a second

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(cfg.train.threads)
    rounds = 1 if a.quick and a.rounds is None else a.rounds
    args = BenchArgs(cfg, list(a.overrides), rounds, a.quick)
    command = "python -m harness.bench " + shlex.join(argv)
    out = Path(a.out)
    for name in names:
        t0 = time.time()
        print(f"== {name} ==", flush=True)
        results = importlib.import_module(BENCHMARKS[name]).run(args)
        context = {"benchmark": name, "command": command, "overrides": list(a.overrides),
                   "quick": a.quick, "profile": cfg.profile, "seconds": round(time.time() - t0, 1)}
        for r in results:
            write(out, r, context)
            print(r.line(), flush=True)
    print(f"results: {write_readme(out, command)}")


if __name__ == "__main__":
    main(sys.argv[1:])
