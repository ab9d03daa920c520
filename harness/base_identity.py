"""What makes a base model what it is: the config keys that shape its weights, and their hash.

python -m harness.base   # its cache folder: base.cache_dir/<profile>-<base_key(cfg)>

The key names the cache folder of a build (harness/base.py) and is compared with
the shipped model's manifest (harness/shipped.py, harness/basecheck.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from harness.config import RunConfig

BASE_VERSION = 2  # bump when the recipe in harness/base.py changes meaning
# base.* keys that say where or whether a model is built, not what it is.
NOT_SHAPING = ("cache_dir", "build_missing")


def base_shaping(cfg: RunConfig) -> dict:
    """Everything that shapes the base model's weights (the key is its hash)."""
    base = {k: v for k, v in asdict(cfg.base).items() if k not in NOT_SHAPING}
    return {"v": BASE_VERSION, "model": asdict(cfg.model), "base": base,
            "task": asdict(cfg.task), "unit": cfg.exposure_unit}


def base_key(cfg: RunConfig) -> str:
    return hashlib.sha1(json.dumps(base_shaping(cfg), sort_keys=True).encode()).hexdigest()[:12]
