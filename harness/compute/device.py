"""Where a run computes and in which precision: the one decision every path uses.

python -m harness.compute.device [model.dtype=bfloat16 ...]   # prints the choice for this machine

CUDA when there is one, the CPU otherwise; `model.dtype` picks the precision (`auto`:
bf16 on CUDA, fp32 on the CPU). Full fine-tuning (no LoRA) on CUDA keeps fp32 master
weights under bf16 / fp16 autocast; with LoRA the frozen base is loaded in the half
dtype. The trainer's args (`train_flags`), model loading (`Precision.weights_dtype`) and
evaluation (the model's own device) all read this, so
the only GPU-only code path is here: a GPU run exercises it first.

The rule for GPUs: a run with `launcher.gpus_per_node` > 0 refuses to start where CUDA is not
usable, and `launcher.gpus_per_node=0` is how a run asks for the CPU (`require_cuda`, called by
every job before it writes anything, harness/front/preflight.py `check_job`). Its one line names
torch, torch's CUDA build and the NVIDIA driver this machine has: a CUDA 13 wheel (vllm 0.30's
torch) under a driver older than 580 is the usual cause. Without the refusal such a run silently
trained on the CPU until its time limit.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.config.model import DTYPES
from harness.config.schema import ConfigError


@dataclass(frozen=True)
class Precision:
    """The device a run uses and its dtypes."""

    device: str  # "cuda" or "cpu"
    compute: str  # float32, bfloat16 or float16: what the forward runs in
    lora: bool = False

    @property
    def weights_dtype(self) -> torch.dtype:
        """The dtype the weights are loaded in. Full fine-tuning in half precision on CUDA
        keeps fp32 master weights and autocasts the forward (train_flags' bf16 / fp16): in
        pure bf16 an update below a weight's rounding step (lr 5e-6 on a weight near 1)
        is lost, and the GradScaler cannot unscale fp16 gradients. With LoRA only the
        adapters train and peft keeps those in fp32, so the frozen base stays in half
        precision. On a CPU an explicit half dtype is taken as asked (pure; see note())."""
        if self.compute == "float16" and not self.lora:
            return torch.float32
        if self.compute == "bfloat16" and not self.lora and self.device == "cuda":
            return torch.float32
        return getattr(torch, self.compute)

    def note(self) -> str | None:
        """One line when full fine-tuning trains in pure bf16 (the CPU with model.dtype=bfloat16)."""
        if self.compute == "bfloat16" and not self.lora and self.weights_dtype == torch.bfloat16:
            return ("full fine-tuning trains in pure bf16 on this CPU (no fp32 master weights: "
                    "small updates round away; model.dtype=float32 keeps them)")
        return None

    def train_flags(self) -> dict[str, bool]:
        """The TrainingArguments keys that pick device and mixed precision."""
        return {"use_cpu": self.device == "cpu", "bf16": self.compute == "bfloat16",
                "fp16": self.compute == "float16"}


def choose(dtype: str = "auto", lora: bool = False, cuda: bool | None = None) -> Precision:
    """The device and precision for `model.dtype`; cuda=None asks torch (tests pass it)."""
    if dtype not in DTYPES:
        raise ConfigError(f"model.dtype={dtype!r} is invalid: one of {DTYPES}")
    on_cuda = torch.cuda.is_available() if cuda is None else cuda
    device = "cuda" if on_cuda else "cpu"
    compute = ("bfloat16" if on_cuda else "float32") if dtype == "auto" else dtype
    if compute == "float16" and not on_cuda:
        # transformers refuses fp16 mixed precision without a GPU; say so before loading.
        raise ConfigError("model.dtype='float16' is invalid: it needs CUDA (bfloat16 or float32 on a CPU)")
    return Precision(device, compute, lora)


def cuda_usable() -> tuple[bool, str]:
    """(CUDA works here, torch's reason when not): torch reports a failed initialisation, such as
    a driver too old for its CUDA build, as a warning from is_available()."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = torch.cuda.is_available()
    reasons = [str(w.message).strip().splitlines()[0] for w in caught if "CUDA" in str(w.message)]
    return ok, (reasons[0] if reasons else "")


def driver_version() -> str:
    """The NVIDIA kernel driver's version, or why none is seen (/proc first: no subprocess)."""
    try:
        # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ..."
        line = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
        return "NVIDIA driver " + line.split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        pass
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver found (no /proc/driver/nvidia, no nvidia-smi)"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"nvidia-smi failed ({type(err).__name__})"
    first = (out.stdout.strip() or out.stderr.strip() or "no output").splitlines()[0]
    return f"NVIDIA driver {first}" if out.returncode == 0 else f"nvidia-smi failed: {first}"


def torch_build() -> str:
    """torch's version and the CUDA it was built for ("none": a CPU wheel)."""
    return f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none: a CPU-only wheel'})"


def require_cuda(gpus_per_node: int, usable: tuple[bool, str] | None = None) -> None:
    """ConfigError (one line) when the run asks for GPUs and CUDA is not usable here;
    usable=None asks torch (tests pass it)."""
    if gpus_per_node <= 0:
        return
    ok, reason = cuda_usable() if usable is None else usable
    if ok:
        return
    raise ConfigError(f"launcher.gpus_per_node={gpus_per_node} asks for GPUs, but CUDA is not usable here: "
                      f"{torch_build()}, {driver_version()}" + (f" ({reason})" if reason else "")
                      + f"; {remedy()}, or set launcher.gpus_per_node=0 to run on the CPU")


def remedy() -> str:
    """What usually fixes it, from torch's CUDA build."""
    if not torch.version.cuda:
        return "install a CUDA build of torch into this .venv (make venv GPU=1)"
    if int(torch.version.cuda.split(".")[0]) >= 13:
        return f"torch's CUDA {torch.version.cuda} build needs an NVIDIA driver >= 580 (README: GPU cluster)"
    return "check the driver against torch's CUDA build and CUDA_VISIBLE_DEVICES"


def cpu_name() -> str:
    """The CPU's model name (recorded with timings and builds: numbers are per CPU type)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    from harness.config.settings import compose

    m = compose(sys.argv[1:]).model
    print(choose(m.dtype, m.lora.r > 0))
    print(f"{torch_build()}, {driver_version()}, CUDA usable: {cuda_usable()[0]}")
