"""Base model build (TRL SFT) and the evaluate entry point, on the smoke profile.

python -m pytest -q tests/test_base_eval.py
"""

import json
import subprocess
import sys

from harness.config.settings import compose
from harness.models.base import ensure_base, sft_rows
from harness.models.base_identity import base_key
from harness.models.tiny import build_tokenizer


def test_smoke_base_training_lowers_loss(smoke_base):
    log = json.loads((smoke_base / "sft_log.json").read_text())
    curve = log["loss_curve"]
    assert len(curve) >= 5 and curve[-1] < curve[0] * 0.95
    assert (smoke_base / "config.json").is_file() and (smoke_base / "tokenizer.json").is_file()


def test_base_cached_and_rebuilt_on_change(smoke_cfg, smoke_base):
    assert ensure_base(smoke_cfg) == smoke_base  # reused: same folder, no rebuild
    changed = compose(["profile=smoke", "base.lr=0.001"])
    assert base_key(changed) != base_key(smoke_cfg)
    assert base_key(compose(["profile=smoke", "seed=5", "exposure=0.2"])) == base_key(smoke_cfg)


def test_sft_rows_mix_student_and_teacher_formats(smoke_cfg):
    tok = build_tokenizer()
    rows = sft_rows(smoke_cfg, tok, 400)
    teacher = [r for r in rows if r["prompt"].startswith("ref :")]
    assert 0.35 < len(teacher) / len(rows) < 0.65  # base.student_fraction = 0.5
    assert all(r["completion"].endswith(tok.eos_token) for r in rows)
    assert sft_rows(smoke_cfg, tok, 400) == rows  # deterministic by seed
    other_seed = compose(["profile=smoke", "base.seed=1"])
    assert sft_rows(other_seed, tok, 400) != rows


def test_evaluate_cli_writes_files(tmp_path, smoke_base):
    out = tmp_path / "ev"
    r = subprocess.run([sys.executable, "-m", "harness.evaluate", "--model", str(smoke_base),
                        "--suite", "medium_k4", "--k", "3", "--out", str(out), "profile=smoke"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ev = json.loads((out / "eval.json").read_text())
    assert list(ev["suites"]) == ["medium_k4"] and ev["suites"]["medium_k4"]["k"] == 3
    samples = [json.loads(x) for x in (out / "eval_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 * 3  # smoke suite size 4 x k
    acc = sum(s["correct"] for s in samples) / len(samples)
    assert abs(acc - ev["suites"]["medium_k4"]["average"]) < 1e-9


def test_evaluate_cli_bad_input(tmp_path, smoke_base):
    cases = [(["--suite", "aime24"], "unknown suite 'aime24'"),
             (["--k", "-1"], "eval.k=-1"),
             (["--model", str(tmp_path / "none")], "has no config.json")]
    for extra, msg in cases:
        r = subprocess.run([sys.executable, "-m", "harness.evaluate", "--out", str(tmp_path / "o"),
                            *extra, "profile=smoke"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and msg in r.stderr, (extra, r.stderr[-500:])
        assert not (tmp_path / "o").exists()


def test_sft_rows_warm_phase_then_erring_phase():
    from harness.tasks.synthetic import STEP_TOKENS

    cfg = compose(["base.warmup_ops=[1,2]", "base.warmup_share=0.25", "base.step_error=0.5",
                   "base.error_from=0.5"])
    tok = build_tokenizer()
    rows = sft_rows(cfg, tok, 400)

    def ops(row):  # operations of the row's problem (the text after the reference, if any)
        problem = row["prompt"].split("|")[-1].replace("?", "")
        return len(problem.split()) // 2

    def wrong_steps(row):
        words = row["completion"].replace(tok.eos_token, "").split()
        n = 0
        for i in range(0, len(words) - 2, STEP_TOKENS):
            a, op, b, _, res = words[i:i + 5]
            n += int(res) != {"+": int(a) + int(b), "-": int(a) - int(b), "x": int(a) * int(b)}[op] % 13
        return n

    assert all(1 <= ops(r) <= 2 for r in rows[:100]) and all(2 <= ops(r) <= 5 for r in rows[100:])
    assert sum(wrong_steps(r) for r in rows[:200]) == 0  # the clean phase is clean
    assert sum(wrong_steps(r) for r in rows[200:]) > 50  # then about half the computed steps err
