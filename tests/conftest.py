"""Shared fixtures: the repo root, a composed smoke config, the smoke base model (built once).

python -m pytest -q
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)  # configs and the base-model cache are resolved from the repo root
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smoke_cfg():
    from harness.config.settings import compose

    return compose(["profile=smoke"])


@pytest.fixture(scope="session")
def smoke_base(smoke_cfg) -> Path:
    from harness.models.base import ensure_base

    return ensure_base(smoke_cfg)


@pytest.fixture(scope="session")
def analysis_results(tmp_path_factory, smoke_base) -> Path:
    """Real smoke runs for the analysis tests, built once (tests/analysis_runs.py)."""
    from analysis_runs import build_results

    return build_results(tmp_path_factory.mktemp("analysis") / "runs", smoke_base)
