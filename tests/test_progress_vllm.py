"""ATESD's progress measure samples on the run's colocated vLLM engine; rollouts follow the run's seed.

python -m pytest -q tests/test_progress_vllm.py

No vLLM runs on this CPU machine: TRL's colocated engine (trl/generation/vllm_generation.py
VLLMGeneration: `mode`, `model`, `llm`, `sync_weights`, `enable_sleep_mode`, `max_model_length`)
is stood in for by a recorder with those attributes; everything around it is the harness's real
code, with the smoke base model and the synthetic task's grader.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import harness.compute.vllm_backend as vb
from harness.config.settings import compose
from harness.models.tiny import load
from harness.sources.learning_progress import val_accuracy
from harness.tasks.datasets import TaskData


class RecordedEngine:
    """TRL's VLLMGeneration as far as the harness uses it; answers `ans <answer>` to the first
    `right` prompts and nonsense to the others."""

    def __init__(self, model, answers: list[str], right: int, sleep: bool = True, max_len: int = 4096):
        self.mode, self.model, self.tensor_parallel_size = "colocate", model, 1
        self.enable_sleep_mode, self.max_model_length = sleep, max_len
        self.events: list[str] = []
        self.seeds: list[int] = []
        self.answers, self.right = answers, right
        self.llm = SimpleNamespace(generate=self.generate, wake_up=lambda tags: self.events.append("wake"),
                                   sleep=lambda level: self.events.append(f"sleep{level}"))

    def sync_weights(self) -> None:
        self.events.append("sync")

    def generate(self, prompts, params, use_tqdm=False):
        self.events.append("generate")
        self.seeds += [p.seed for p in params]
        texts = [f"ans {a}" if i < self.right else "no idea" for i, a in enumerate(self.answers)]
        return [SimpleNamespace(outputs=[SimpleNamespace(text=t)] * p.n) for t, p in zip(texts, params)]


@pytest.fixture()
def adopted(smoke_base, monkeypatch):
    cfg = compose(["profile=smoke", "method=atesd"])
    model, tok = load(smoke_base, cfg.model)
    problems = TaskData(cfg.task).validation
    engine = RecordedEngine(model, [p.answer for p in problems], right=3)
    monkeypatch.setattr(vb, "_vllm", lambda: (None, lambda **kw: SimpleNamespace(**kw)))
    trainer = SimpleNamespace(vllm_generation=engine, args=SimpleNamespace(seed=7),
                              accelerator=SimpleNamespace(process_index=1))
    assert vb.adopt_rollout_engine(trainer)
    yield cfg, model, tok, problems, engine
    monkeypatch.setattr(vb, "_ROLLOUT_ENGINE", None)


def test_progress_is_sampled_on_the_rollout_engine_with_its_own_seeds(adopted, monkeypatch):
    cfg, model, tok, problems, engine = adopted
    monkeypatch.setattr(model, "generate", lambda *a, **k: pytest.fail("HF generate was used"))
    acc = val_accuracy(model, tok, cfg, problems)
    cc = cfg.controller
    assert acc == 3 / len(problems)  # 3 problems right, every one of their samples
    assert engine.seeds == [cc.progress_seed + i for i in range(len(problems))]
    # weights pushed and woken first, back to sleep after (TRL's next generate pushes them again)
    assert engine.events == ["sync", "wake", "generate", "sleep2"]


def test_the_engine_is_only_used_for_the_model_it_trains_and_a_server_is_not_adopted(adopted, smoke_base):
    cfg, model, *_ = adopted
    other, _ = load(smoke_base, cfg.model)
    assert vb.rollout_engine(model) is not None and vb.rollout_engine(other) is None
    server = SimpleNamespace(vllm_generation=SimpleNamespace(mode="server"))
    assert not vb.adopt_rollout_engine(server) and not vb.adopt_rollout_engine(SimpleNamespace())


def test_a_prompt_past_the_engines_context_falls_back_to_hf_generate(adopted):
    cfg, model, tok, problems, engine = adopted
    engine.max_model_length = 8  # shorter than any prompt + controller.progress_max_new_tokens
    acc = val_accuracy(model, tok, cfg, problems)
    assert engine.events == [] and 0.0 <= acc <= 1.0  # HF generate drew these


def test_rollout_seeds_follow_the_runs_seed_and_rank():
    assert vb.rollout_seed(0, 0) != vb.rollout_seed(1, 0) != vb.rollout_seed(1, 1)
    assert len({vb.rollout_seed(s, r) for s in range(10) for r in range(8)}) == 80
