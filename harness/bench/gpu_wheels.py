"""python -m harness.bench.gpu_check --wheels DIR     # make gpu-wheels

The pinned pure-python wheels the GPU machine lacks: GPU_WHEELS at pyproject.toml's pins (else
the version installed here), downloaded for its Python 3.12 (`make gpu-check` installs them there
with `pip install --no-index --no-deps --target`).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Missing on the GPU machine (harness/DESIGN.md "Real sizes", the device's package list), or there
# at another version than pyproject.toml pins (transformers 5.17, peft): carried as wheels.
GPU_WHEELS = ("trl", "transformers", "peft", "datasets", "dill", "multiprocess", "hydra-core", "omegaconf",
              "antlr4-python3-runtime", "hydra-submitit-launcher", "submitit", "math-verify",
              "latex2sympy2_extended")
# Published as a source archive only (pure python): built into a wheel here.
SDIST_ONLY = ("antlr4-python3-runtime",)
# The GPU machine's interpreter (device KINDS.md: Python 3.12, x86-64): multiprocess ships per-version wheels.
WHEEL_TARGET = ["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_17_x86_64",
                "--platform", "any"]


def pins() -> dict[str, str]:
    """name -> version pinned in pyproject.toml."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split(";")[0].strip().split("==") for d in deps if "==" in d)


def wheel_specs() -> list[str]:
    """name==version of each GPU_WHEELS package: pyproject's pin, else the version installed here
    (the transitive ones: dill, omegaconf, ...), so the GPU runs what the tests ran."""
    pinned = pins()
    return [f"{n}=={pinned.get(n) or metadata.version(n)}" for n in GPU_WHEELS]


def download_wheels(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    for spec in wheel_specs():
        if spec.split("==")[0] in SDIST_ONLY:
            cmd = [*pip, "wheel", "-q", "--no-deps", "-w", str(folder), spec]
        else:
            cmd = [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", *WHEEL_TARGET,
                   "-d", str(folder), spec]
        subprocess.run(cmd, check=True)
    return sorted(folder.glob("*.whl"))
