"""The shipped base model: its files match their checksums and the default base config,
its check numbers reproduce, and a changed base config without a build is refused.

python -m pytest -q tests/test_shipped_base.py
"""

import shutil
import subprocess
import sys

import pytest

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.models.base_identity import base_key, resolve_base
from harness.models.basecheck import check_numbers
from harness.models.shipped import MODEL_FILES, SHIPPED_DIR, ShippedBaseError, read_manifest, verify
from harness.models.tiny import load

# Check tolerances. ref_nll is a deterministic forward pass: CPU kernels (AVX2 vs AVX-512,
# another thread count) change float32 sums by ~1e-6 relative, far below 1e-4. The
# Average@4 of 80 seeded samples is bit-identical on the CPU type it was made on; on
# another one a last-bit logit change can flip a sampled token only when the uniform
# draw lands within ~1e-6 of a bucket edge, so we allow 2 of the 80 samples to differ.
NLL_ABS_TOL = 1e-4
AVERAGE_TOL = 2 / 80


def test_shipped_files_match_their_checksums_and_the_default_config():
    manifest = verify(SHIPPED_DIR)
    assert set(manifest["files"]) == set(MODEL_FILES)
    cfg = compose([])
    assert manifest["key"] == base_key(cfg)  # the default base config is the shipped model's
    assert resolve_base(cfg) == SHIPPED_DIR


def test_shipped_model_reproduces_its_check_numbers():
    stored = read_manifest(SHIPPED_DIR)["check"]
    model, tok = load(SHIPPED_DIR)
    got = check_numbers(model, tok, compose([]))
    assert got["ref_nll"] == pytest.approx(stored["ref_nll"], abs=NLL_ABS_TOL)
    assert abs(got["average"] - stored["average"]) <= AVERAGE_TOL + 1e-9, (got, stored)


def test_shipped_model_meets_the_base_spec():
    from test_default_base import assert_spec, medium_by_exposure

    cfg = compose(["eval.k=4"])
    assert_spec(medium_by_exposure(SHIPPED_DIR, cfg))


def test_changed_file_fails_its_checksum(tmp_path):
    copy = tmp_path / "base"
    shutil.copytree(SHIPPED_DIR, copy)
    verify(copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ShippedBaseError, match="model.safetensors fails its sha256 check"):
        verify(copy)


def test_changed_base_config_without_a_build_is_refused_in_one_line(tmp_path):
    cfg = compose(["base.lr=0.00123", f"base.cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(ConfigError, match=r"base.lr: 0.001 -> 0.00123.*make base"):
        resolve_base(cfg)
    res = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "harness.front.sweep", "--exposures", "1", "--results",
                        str(res), "--", "base.lr=0.00123", f"base.cache_dir={tmp_path / 'cache'}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "base.lr: 0.001 -> 0.00123" in r.stderr
    assert not res.exists() and not (tmp_path / "cache").exists()


def test_make_base_comparison_with_the_shipped_model(tmp_path):
    from harness.models.basecheck import compare_with_shipped, describe

    manifest = read_manifest(SHIPPED_DIR)
    same = compare_with_shipped(SHIPPED_DIR, compose([]), manifest["table"])
    assert "bit-identical to the shipped model: yes" in same
    assert "student (no reference): easy_k3 +0.0, medium_k4 +0.0, hard_k5 +0.0" in same
    moved = {row: {s: [v[0] + 0.05, v[1]] for s, v in cells.items()}
             for row, cells in manifest["table"].items()}
    other = tmp_path / "other"
    shutil.copytree(SHIPPED_DIR, other)
    (other / "model.safetensors").write_bytes(b"not the same weights")
    text = compare_with_shipped(other, compose([]), moved)
    assert "bit-identical to the shipped model: no" in text and "medium_k4 +5.0" in text
    assert "another base config (base.lr: 0.001 -> 0.002)" in compare_with_shipped(
        other, compose(["base.lr=0.002"]), moved)
    assert describe(manifest["table"], 12).splitlines()[2].startswith("| student (no reference) | 0.575")
