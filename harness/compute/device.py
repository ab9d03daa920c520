"""Where a run computes and in which precision: the one decision every path uses.

python -m harness.compute.device [model.dtype=bfloat16 ...]   # prints the choice for this machine

CUDA when there is one, the CPU otherwise; `model.dtype` picks the precision (`auto`:
bf16 on CUDA, fp32 on the CPU). Full fine-tuning (no LoRA) on CUDA keeps fp32 master
weights under bf16 / fp16 autocast; with LoRA the frozen base is loaded in the half
dtype. The trainer's args (`train_flags`), model loading (`Precision.weights_dtype`) and
evaluation (the model's own device) all read this, so
the only GPU-only code path is here: a GPU run exercises it first.
"""

from __future__ import annotations

import platform
import sys
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


if __name__ == "__main__":
    from harness.config.settings import compose

    m = compose(sys.argv[1:]).model
    print(choose(m.dtype, m.lora.r > 0))


def cpu_name() -> str:
    """The CPU's model name (recorded with timings and builds: numbers are per CPU type)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
