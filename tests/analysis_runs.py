"""Real smoke runs for the analysis tests, and the helpers they share (imported by
tests/test_analysis.py, tests/test_analysis_commands.py, tests/test_controller_plot.py).

python -m pytest -q tests/test_analysis.py tests/test_analysis_commands.py tests/test_controller_plot.py

build_results makes the results folder once a session (tests/conftest.py analysis_results): a
Hydra multirun (exposure 0 and 1 x seeds 0 and 1, submitit local launcher), the base model's
evaluation, a run that fails (its model folder is broken), and a run killed with SIGKILL
mid-training (its status stays "running", its metrics stop mid-way; a truncated last line is
then appended, as a writer killed mid-row leaves it). It has no ATESD run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.config.schema import to_run_config
from harness.config.settings import compose_raw
from harness.run import run
from harness.runs.rundir import read_json, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
DONE = ["opsd-r0-s0", "opsd-r0-s1", "opsd-r1-s0", "opsd-r1-s1", "base"]
FAILED, KILLED = "opsd-r1-s2", "opsd-r0.5-s0"
SUITES = ["easy_k3", "medium_k4", "hard_k5"]


def run_in_process(*overrides: str) -> None:
    """One run exactly as `python -m harness.run` makes it (resolved config.yaml included)."""
    raw = compose_raw(["profile=smoke", *overrides])
    run(to_run_config(raw), OmegaConf.to_yaml(raw, resolve=True))


def train_rows(folder: Path) -> int:
    return sum(1 for r in read_jsonl(folder / "metrics.jsonl") if r.get("kind") == "train")


def start_killable(root: Path) -> subprocess.Popen:
    # A long run outside the slot cap, so it trains alongside the sweep until it is killed.
    cmd = [sys.executable, "-m", "harness.run", "profile=smoke", "exposure=0.5", "seed=0",
           "train.steps=400", "launcher.max_parallel=0", f"results={root}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after_two_steps(proc: subprocess.Popen, folder: Path, timeout: float = 240) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if (folder / "metrics.jsonl").exists() and train_rows(folder) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run to kill ended on its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def build_results(root: Path, smoke_base: Path) -> Path:
    """The session's results folder at root (see the module docstring)."""
    killable = start_killable(root)
    sweep = subprocess.Popen([sys.executable, "-m", "harness.run", "-m", "profile=smoke", "exposure=0,1",
                              "seed=0,1", f"results={root}"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    kill_after_two_steps(killable, root / KILLED)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:]
    with open(root / KILLED / "metrics.jsonl", "a") as f:
        f.write('{"step": 999, "kind": "tra')  # a writer killed mid-row
    run_in_process("method=base", f"results={root}")
    broken = root.parent / "broken_model"
    shutil.copytree(smoke_base, broken)  # passes the checks before launch (config, tokenizer) ...
    (broken / "model.safetensors").write_bytes(b"not safetensors")  # ... and fails to load
    with pytest.raises(Exception):  # noqa: B017 - whichever error loading raises; status is what matters
        run_in_process("exposure=1", "seed=2", f"model.path={broken}", f"results={root}")
    return root


def eval_average(results: Path, run_name: str, suite: str) -> float:
    return read_json(results / run_name / "eval.json")["suites"][suite]["average"]


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def copy_runs(src: Path, dst: Path, names: list[str]) -> Path:
    for n in names:
        shutil.copytree(src / n, dst / n, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


def nonempty(path: Path, magic: bytes) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes().startswith(magic)


def one_error_line(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr

