"""The parquet cache of the runs and metrics tables, keyed by a fingerprint of the run files.

python -m analysis.collect --results results/runs --refresh      # rebuilds it

<results>/runs.parquet and <results>/metrics.parquet carry, in their schema metadata, a
fingerprint of every run folder's files (size and mtime): a run file that is written,
appears or disappears changes it, and the tables are then rebuilt from the run folders.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Bump when the tables' columns change meaning: old caches are then rebuilt.
# 2: rows come from harness.runs.runinfo (adds starts, final_mismatch_kl_st/_ts).
CACHE_VERSION = 2
RUN_FILES = ("config.yaml", "status.json", "metrics.jsonl", "eval.json")
CACHE_FILES = {"runs": "runs.parquet", "metrics": "metrics.parquet"}
FINGERPRINT_KEY = b"analysis_fingerprint"


def fingerprint(folders: Sequence[Path]) -> str:
    """Changes whenever a run file is written, added or removed (size and mtime of each)."""
    items: list[Any] = [CACHE_VERSION]
    for folder in folders:
        for name in RUN_FILES:
            p = folder / name
            st = p.stat() if p.exists() else None
            items.append([folder.name, name, st.st_size if st else None, st.st_mtime_ns if st else None])
    return hashlib.sha1(json.dumps(items).encode()).hexdigest()


def arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns parquet can store: a column mixing value types (say bool and str) becomes text."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        values = out[col].dropna()
        kinds = {type(v) for v in values}
        if kinds and kinds <= {int, float}:
            out[col] = pd.to_numeric(out[col])
        elif len(kinds) > 1:
            out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v))
                                    else str(v))
    return out


def through_arrow(df: pd.DataFrame) -> pd.DataFrame:
    """df as a cache load would return it: a fresh build then has exactly the cached dtypes."""
    return pa.Table.from_pandas(arrow_safe(df), preserve_index=False).to_pandas()


def write_cache(tables: dict[str, pd.DataFrame], root: Path, fp: str) -> None:
    for key, name in CACHE_FILES.items():
        table = pa.Table.from_pandas(arrow_safe(tables[key]), preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), FINGERPRINT_KEY: fp.encode()})
        path = root / name
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # atomic: a reader never sees half a cache


def read_cache(root: Path, fp: str) -> dict[str, pd.DataFrame] | None:
    """Both tables if the cache holds this fingerprint, else None."""
    paths = {k: root / v for k, v in CACHE_FILES.items()}
    try:
        if not all((pq.read_schema(p).metadata or {}).get(FINGERPRINT_KEY) == fp.encode()
                   for p in paths.values()):
            return None
        return {k: pd.read_parquet(p) for k, p in paths.items()}
    except (OSError, pa.ArrowException):  # missing or unreadable cache: rebuild
        return None
