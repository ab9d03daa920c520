"""A requeue in the middle of an evaluation resumes without redrawing finished batches.

python -m pytest -q tests/test_eval_resume.py

harness/evaluation/progress.py logs each finished sampling batch with the RNG state after it;
an interrupted evaluation (SystemExit, as submitit's requeue raises) is started again on the
same log: it draws only the batches not yet finished, and its eval.json numbers and samples
equal an uninterrupted evaluation's.
"""

from __future__ import annotations

import json

import pytest

from harness.config.settings import compose
from harness.evaluation.suites import evaluate
from harness.models.tiny import load

OVERRIDES = ["profile=smoke", "eval.batch_size=4", "eval.k=2"]  # 3 suites x 2 batches of 4 sequences


@pytest.fixture(scope="module")
def model_tok(smoke_base):
    return load(smoke_base, compose(OVERRIDES).model)


def counting(model, monkeypatch, stop_at: int | None = None) -> list[int]:
    """Count model.generate calls; raise SystemExit at call number stop_at."""
    calls: list[int] = []
    real = model.generate

    def generate(*args, **kwargs):
        calls.append(1)
        if stop_at is not None and len(calls) == stop_at:
            raise SystemExit(-1)  # as submitit's USR2 handler does after requeueing
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", generate)
    return calls


def strip(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("seconds", "resumed_batches")}


def test_an_interrupted_evaluation_resumes_where_it_stopped(model_tok, tmp_path, monkeypatch):
    model, tok = model_tok
    cfg = compose(OVERRIDES)
    whole_calls = counting(model, monkeypatch)
    whole, whole_samples = evaluate(model, tok, cfg, progress_path=tmp_path / "whole.jsonl")
    assert len(whole_calls) == 6 and whole["resumed_batches"] == 0
    monkeypatch.undo()

    log = tmp_path / "eval_progress.jsonl"
    counting(model, monkeypatch, stop_at=4)
    with pytest.raises(SystemExit):
        evaluate(model, tok, cfg, progress_path=log)
    monkeypatch.undo()
    assert len(log.read_text().splitlines()) == 1 + 3  # the key line and 3 finished batches

    again = counting(model, monkeypatch)
    resumed, resumed_samples = evaluate(model, tok, cfg, progress_path=log)
    assert len(again) == 3 and resumed["resumed_batches"] == 3  # only the unfinished batches
    assert strip(resumed) == strip(whole)
    assert resumed_samples == whole_samples
    assert resumed["sampling"]["top_p"] == cfg.eval.top_p and resumed["sampling"]["seed"] == cfg.eval.seed


def test_a_log_of_other_settings_is_set_aside(model_tok, tmp_path, monkeypatch):
    model, tok = model_tok
    log = tmp_path / "eval_progress.jsonl"
    counting(model, monkeypatch, stop_at=2)
    with pytest.raises(SystemExit):
        evaluate(model, tok, compose(OVERRIDES), progress_path=log)
    monkeypatch.undo()
    calls = counting(model, monkeypatch)
    summary, _ = evaluate(model, tok, compose([*OVERRIDES, "eval.temperature=0.7"]), progress_path=log)
    assert len(calls) == 6 and summary["resumed_batches"] == 0
    assert (tmp_path / "eval_progress.jsonl.stale").is_file()
    assert json.loads(log.read_text().splitlines()[0])["run_key"]  # a fresh log of the new settings


def test_a_line_cut_by_a_kill_is_drawn_again(model_tok, tmp_path, monkeypatch):
    model, tok = model_tok
    cfg = compose(OVERRIDES)
    log = tmp_path / "eval_progress.jsonl"
    counting(model, monkeypatch, stop_at=3)
    with pytest.raises(SystemExit):
        evaluate(model, tok, cfg, progress_path=log)
    monkeypatch.undo()
    text = log.read_text()
    log.write_text(text[:-40])  # the second batch's line cut mid-way (a SIGKILL while writing)
    calls = counting(model, monkeypatch)
    summary, _ = evaluate(model, tok, cfg, progress_path=log)
    assert len(calls) == 5 and summary["resumed_batches"] == 1
