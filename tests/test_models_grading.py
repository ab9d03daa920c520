"""Tokenizer round-trip, save/load through from_pretrained, graders incl. math-verify.

python -m pytest -q tests/test_models_grading.py
"""

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.models.tiny import TinyModelSpec, build_model, build_tokenizer, count_params, load, save
from harness.tasks.grading import extract_boxed, grade


def test_tokenizer_round_trip_one_token_per_number():
    tok = build_tokenizer()
    text = "ref : 12 x 3 = 10 ; ans 10 | 12 x 3 ?"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.split())  # one token per number and symbol
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_save_and_load_through_from_pretrained(tmp_path):
    tok = build_tokenizer()
    model = build_model(tok, TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2,
                                           num_kv_heads=1, intermediate_size=64), seed=0)
    save(model, tok, tmp_path)
    m2 = AutoModelForCausalLM.from_pretrained(tmp_path)
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    assert type(m2).__name__ == "Qwen3ForCausalLM"
    assert count_params(m2) == count_params(model)
    ids = t2("1 + 2 ?", return_tensors="pt")["input_ids"]
    assert (m2(ids).logits - model(ids).logits).abs().max() < 1e-5
    assert TinyModelSpec() and 0.8e6 < count_params(build_model(tok, TinyModelSpec(), 0)) < 3e6


def test_load_missing_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load(tmp_path / "missing")


def test_synthetic_grader():
    assert grade("synthetic", "1 + 2 = 3 ; ans 3", "3") == ("3", True)
    assert grade("synthetic", "1 + 2 = 3 ; ans 4", "3") == ("4", False)
    assert grade("synthetic", "1 + 2 = 3 ;", "3") == (None, False)
    assert grade("synthetic", "ans 2 ; ans 3", "3")[1]  # the last answer counts


@pytest.mark.parametrize("pred,gold,ok", [
    ("\\frac{1}{2}", "0.5", True),
    ("0.5", "\\frac{1}{2}", True),
    ("\\sqrt{4}", "2", True),
    ("3", "\\frac{1}{2}", False),
    ("x^2+2x+1", "(x+1)^2", True),
])
def test_math_verify_grader(pred, gold, ok):
    assert grade("math", f"so the answer is \\boxed{{{pred}}}.", gold)[1] is ok


def test_boxed_extraction_nested_and_missing():
    assert extract_boxed("a \\boxed{1} b \\boxed{\\frac{3}{4}}") == "\\frac{3}{4}"
    assert extract_boxed("no box") is None
    assert grade("math", "no box", "1") == (None, False)
    with pytest.raises(ValueError, match="unknown grader"):
        grade("nope", "", "")


def test_hub_ids_are_left_to_load_time_and_local_paths_are_checked(tmp_path):
    from harness.config.model import is_hub_id

    assert is_hub_id("Qwen/Qwen3-1.7B")
    assert not is_hub_id("/abs/model") and not is_hub_id("./rel/model") and not is_hub_id("plain")
    (tmp_path / "org").mkdir()
    assert not is_hub_id(str(tmp_path / "org"))  # an existing folder is a local path


def test_lora_adapter_config_from_model_lora():
    from harness.config.model import LoraConfig
    from harness.models.tiny import lora_adapter_config

    assert lora_adapter_config(LoraConfig()) is None  # r = 0: all weights train
    peft_cfg = lora_adapter_config(LoraConfig(r=4, target_modules=["q_proj"]))
    assert (peft_cfg.r, peft_cfg.lora_alpha, set(peft_cfg.target_modules)) == (4, 8, {"q_proj"})
    assert lora_adapter_config(LoraConfig(r=64, alpha=128.0)).lora_alpha == 128.0


def test_math_grader_from_threads_gives_the_main_thread_answers():
    """math-verify's own timeout is SIGALRM (main thread only): the grader must not care."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [("\\frac{1}{2}", "0.5", True), ("3", "\\frac{1}{2}", False), ("\\sqrt{4}", "2", True),
             ("x^2+2x+1", "(x+1)^2", True)]
    with ThreadPoolExecutor(max_workers=3) as ex:
        got = list(ex.map(lambda c: grade("math", f"\\boxed{{{c[0]}}}", c[1])[1], cases))
    assert got == [ok for _, _, ok in cases]


def test_a_sample_past_its_deadline_is_wrong_and_the_next_one_is_graded():
    import threading
    import time

    from harness.tasks import safe_verify

    # A huge power makes sympy work for far longer than the deadline.
    out = {}

    def slow():
        t0 = time.time()
        out["ok"] = safe_verify.verify_answer("2", "9^{9^{9^{9}}}", deadline_s=0.5)
        out["took"] = time.time() - t0

    th = threading.Thread(target=slow)
    th.start()
    th.join(60)
    assert out["ok"] is False and out["took"] < 30
    assert safe_verify.verify_answer("0.5", "\\frac{1}{2}")  # a fresh worker after the kill
