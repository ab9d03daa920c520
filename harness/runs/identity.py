"""A run's identity, built once from its validated config: name, method key, method name,
label, run folder, lock file. Stored in status.json (key "identity") from the run's first
status write, so readers (harness/runs/runinfo.py) take it as written instead of deriving it.

python -m pytest -q tests/test_identity.py      # stored by a run, read back, old folders derived

DEFAULT_RESULTS is the results root every command defaults to (the config's `results`
default, harness/config/schema.py; the Makefile's RESULTS ?= repeats it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.config.schema import RunConfig
from harness.runs.rundir import run_folder
from harness.runs.runinfo import RunInfo
from harness.runs.runlock import lock_path

# The config's own default (harness/config/schema.py `results`), declared once there.
DEFAULT_RESULTS: str = next(f.default for f in fields(RunConfig) if f.name == "results")


@dataclass(frozen=True)
class RunIdentity:
    name: str  # the run folder's name (harness.config.schema.run_name)
    method: str  # the method key: the run name without its seed (runinfo.method_key)
    method_name: str  # cfg.method.name (method_of the two axes, or base)
    label: str  # what tables and legends show (runinfo.method_label)
    folder: Path  # <results>/<name>
    lock: Path  # <results>/.locks/<name>.lock (harness/runs/runlock.py)

    @classmethod
    def of(cls, cfg: RunConfig) -> RunIdentity:
        """cfg's identity, derived as the run-folder reader derives an old folder's from its
        config.yaml (RunInfo: runinfo.method_key, runinfo.method_label), so both agree."""
        folder = run_folder(cfg)
        info = RunInfo.of_config(folder, asdict(cfg))
        return cls(name=cfg.run_name, method=info.method, method_name=cfg.method.name,
                   label=info.label, folder=folder, lock=lock_path(Path(cfg.results), cfg.run_name))

    def to_json(self) -> dict[str, Any]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunIdentity:
        return cls(**{f.name: Path(d[f.name]) if f.name in ("folder", "lock") else d[f.name]
                      for f in fields(cls)})
