"""The shipped base model: files committed with the code, tied to their config by a manifest.

python -m harness.models.shipped            # verifies the shipped files and prints the manifest's key

Every machine starts from the same weights (a base model re-trained on another CPU came
out 17 points worse: float differences change a long SFT trajectory). The manifest
beside the weights holds the base-config key and the config that shapes the model
(harness/models/base.py base_shaping), a sha256 per file, the student/teacher table the model
was shipped with, and reference check numbers (tests/test_shipped_base.py).
`python -m harness.models.base --ship` writes a new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "base_default"
MANIFEST = "manifest.json"
# Files a saved model folder needs; everything else (reports, logs) is not checksummed.
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json")


class ShippedBaseError(RuntimeError):
    """The shipped files do not match their manifest."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path = SHIPPED_DIR) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def verify(folder: Path = SHIPPED_DIR) -> dict[str, Any]:
    """The manifest, after checking every model file against its sha256 (one-line error)."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise ShippedBaseError(f"{folder} has no {MANIFEST}")
    for name, digest in manifest["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            raise ShippedBaseError(f"shipped base file {path} is missing")
        if sha256(path) != digest:
            raise ShippedBaseError(f"shipped base file {path} fails its sha256 check "
                                   f"(changed since it was shipped; git checkout it or re-ship)")
    return manifest


def ship(built: Path, dest: Path, key: str, shaping: dict, extra: dict[str, Any]) -> dict:
    """Copy a built base into dest (replacing it) and write its manifest; returns it."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copy2(Path(built) / name, tmp / name)
    manifest = {"key": key, "shaping": shaping,
                "files": {name: sha256(tmp / name) for name in MODEL_FILES}, **extra}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return manifest


if __name__ == "__main__":
    m = verify(Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED_DIR)
    print(f"shipped base OK: key {m['key']}, {len(m['files'])} files match their sha256")
