"""make gpu-check's CPU variant: the same path as on a GPU, at a tiny width and the real vocabulary.

python -m pytest -q tests/test_gpu_check.py
"""

from __future__ import annotations

import json

from harness.gpu_check import check, eval_file


def test_gpu_check_runs_on_cpu_and_reports(tmp_path):
    result = check(tmp_path, "tiny")
    assert result["device"] == "cpu" and result["shape"] == "tiny" and result["micro_batch"] == 1
    assert result["probe_rows"] == 2 * 5  # step 1 and step 3, five exposures each
    assert result["step_s"] > 0 and result["tokens_per_s"] > 0 and result["predicted_gb"] > 0
    ev = json.loads((tmp_path / "runs" / "gpu_check" / "eval.json").read_text())
    assert "check8" in ev["suites"]
    samples = (tmp_path / "runs" / "gpu_check" / "eval_samples.jsonl").read_text().splitlines()
    assert len(samples) == 8 * 2  # 8 problems x eval.k = 2
    assert len(eval_file(tmp_path).read_text().splitlines()) == 8
