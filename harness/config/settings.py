"""Compose the sweeps/ config outside a Hydra app (base build, evaluate, sweep preflight).

python -c "from harness.config.settings import compose; print(compose(['profile=smoke']).run_name)"
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

import harness.config.hydra_store  # noqa: F401 - registers run_defaults (the dataclass defaults)
from harness.config.schema import ConfigError, RunConfig, to_run_config, unused_sections

CONFIG_DIR = Path(__file__).resolve().parents[2] / "sweeps"


def compose_raw(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        try:
            cfg = hydra_compose(config_name="config", overrides=overrides)
        except HydraException as err:
            raise ConfigError(str(err).splitlines()[0]) from None
    OmegaConf.set_struct(cfg, False)
    cfg.pop("hydra", None)
    return cfg


def compose(overrides: list[str]) -> RunConfig:
    """The validated RunConfig for these overrides; ConfigError names any bad value."""
    return to_run_config(compose_raw(overrides))


def compose_resolved(overrides: list[str]) -> tuple[RunConfig, str]:
    """The validated RunConfig and the resolved YAML a run folder stores as config.yaml."""
    raw = compose_raw(overrides)
    cfg = to_run_config(raw)
    return cfg, stored_yaml(raw, cfg)


def stored_yaml(raw: DictConfig, cfg: RunConfig) -> str:
    """The config.yaml of cfg's run folder from its composed config: the method named as the
    run name names it (harness.config.schema.method_of), only the sections the run uses."""
    raw = raw.copy()
    with open_dict(raw):
        raw.method.name = cfg.method.name
        for key in unused_sections(cfg):
            raw.pop(key, None)
    return OmegaConf.to_yaml(raw, resolve=True)


def fail(err: Exception) -> None:
    """One line on stderr and exit 2: how every entry point reports bad input."""
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2)
