"""What every config dataclass is made of: F (a default with its help text), range checks
that raise one ConfigError line naming the bad value, and the shared value lists.

python -c "from harness.config.fields import require; require(False, 'train.lr', -1, '> 0')"
"""

from __future__ import annotations

import importlib.util
from dataclasses import field
from typing import Any

from harness.prompts.cut import check_exposure

TEACHER_MODES = ("base", "live", "ema")
SUPPORTS = ("full", "topk")
UNITS = ("tokens", "steps")
LR_SCHEDULES = ("cosine", "linear", "constant_with_warmup")
TRACKERS = ("tensorboard", "wandb", "mlflow")  # harness/trainers/trackers.py
# train.generation: harness/compute/vllm_backend.py (auto: vllm on CUDA when importable, else hf)
GENERATIONS = ("hf", "vllm", "auto")
VLLM_MODES = ("colocate", "server")
EVAL_BACKENDS = ("auto", "hf", "vllm")



class ConfigError(ValueError):
    """A config value is out of range; the message names it."""


def F(default: Any, help: str) -> Any:  # noqa: A002 - mirrors dataclasses' metadata key
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def require(ok: bool, what: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{what}={value!r} is invalid: {rule}")


def in_unit(what: str, value: float) -> None:
    """A value in [0, 1] (exposures, shares, rates): the exposure cut's own check, so one
    rule and one wording serve the config, the sweep and the cut."""
    try:
        check_exposure(value, what)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def parse_report_to(value: str) -> list[str]:
    """The trackers named by train.report_to ('none' -> []); ConfigError for an unknown
    name or one whose package is not installed (before the run starts, not at its end)."""
    names = [n.strip() for n in str(value).split(",") if n.strip() and n.strip() != "none"]
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"train.report_to={value!r} is invalid: {name!r} is not one of "
                              f"none, {', '.join(TRACKERS)} (comma-separated)")
        if name != "tensorboard" and importlib.util.find_spec(name) is None:
            raise ConfigError(f"train.report_to={value!r} is invalid: {name} is not installed "
                              f"(pip install {name}, or leave it out of train.report_to)")
    return names


def require_vllm(what: str, value: Any) -> None:
    """ConfigError when `what=value` asks for vLLM and the package is not installed (the
    sweep checks every point before it launches; CUDA is checked in the job, whose node
    has the GPU: harness/compute/vllm_backend.py)."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{what}={value!r} is invalid: vllm is not installed "
                          f"(pip install -e '.[vllm]' on the GPU nodes, or {what}=hf)")
