"""The teacher's leak (harness/trainers/leak.py): references, rollout parsing, the scores, the rows.

python -m pytest -q tests/test_leak.py

Hand-made rollouts on known chains pin down which result tokens are leak tokens (the rollout's own
step and the reference disagree), the scores are checked against a full log-softmax (on a tiny
random Qwen3 through final_hidden, which also pins the position alignment, and at Qwen3's 151,936
vocabulary without any [B, C, V] tensor), and a short OPSD run writes the keys in train and probe rows.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F

from harness.losses.hidden_states import final_hidden
from harness.models.tiny import TinyModelSpec, build_model, build_tokenizer
from harness.prompts.templates import ReferenceCutter
from harness.runs.schema import undocumented
from harness.tasks.gap import leap
from harness.tasks.synthetic import build_problem, erring_solution, parse_problem
from harness.trainers import leak as leak_module
from harness.trainers.leak import (
    KEYS,
    LeakAccumulator,
    LeakTargets,
    TaskVocab,
    leak_stats,
    leak_targets,
    reference_entries,
    reference_values,
)

M = 13
# 1 + 2 = 3 ; 3 x 3 = 9 ; 9 - 4 = 5 ; 5 + 5 = 10 ; ans 10
PROBLEM = build_problem([1, 2, 3, 4, 5], ["+", "x", "-", "+"], M)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def vocab(tok) -> TaskVocab:
    return TaskVocab.of(tok)


def batch(tok, texts: list[str], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded completion ids and mask of rollouts `texts` (each ending in the end token)."""
    rows = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = width or max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, :len(row)], mask[b, :len(row)] = torch.tensor(row), 1
    return ids, mask


def as_words(tok, targets: LeakTargets) -> list[tuple[int, int, str, str]]:
    """(row, position, consistent word, reference word) of each leak token."""
    conv = tok.convert_ids_to_tokens
    return list(zip(targets.row_N.tolist(), targets.pos_N.tolist(), conv(targets.consistent_N.tolist()),
                    conv(targets.reference_N.tolist())))


def targets_of(tok, vocab, texts: list[str], solution: str = PROBLEM.solution) -> LeakTargets:
    ids, mask = batch(tok, texts)
    return leak_targets(ids, mask, [solution] * len(texts), vocab, M)


# ---- reference_values ------------------------------------------------------------------------
def test_reference_values_one_step_per_operation():
    assert reference_values(PROBLEM.solution, M) == {1: 3, 2: 9, 3: 5, 4: 10}


def test_reference_values_of_a_leaped_reference_sit_at_the_op_a_step_ends_at():
    two = leap(PROBLEM, M, 2).solution  # 1 + 2 x 3 = 9 ; 9 - 4 + 5 = 10 ; ans 10
    assert reference_values(two, M) == {2: 9, 4: 10}
    three = leap(PROBLEM, M, 3).solution  # 1 + 2 x 3 - 4 = 5 ; 5 + 5 = 10 ; ans 10
    assert reference_values(three, M) == {3: 5, 4: 10}


def test_a_malformed_reference_is_refused():
    with pytest.raises(ValueError, match="not `a op b"):
        reference_values("1 + 2 3 ; ans 3", M)
    with pytest.raises(ValueError, match="outside"):
        reference_values("1 + 20 = 21 ; ans 21", M)


# ---- leak_targets ----------------------------------------------------------------------------
def test_a_correct_rollout_has_no_leak_token(tok, vocab):
    t = targets_of(tok, vocab, [PROBLEM.solution])
    assert t.row_N.numel() == 0 and t.parsed_B.tolist() == [4]


def test_an_error_leaks_from_the_step_after_it_while_the_chain_stays_off(tok, vocab):
    # step 2 writes 7 (should be 9): its own consistent value is 9 = the reference's, no leak there;
    # step 3 works on from 7: consistent 3, reference 5; step 4: consistent 8, reference 10
    t = targets_of(tok, vocab, ["1 + 2 = 3 ; 3 x 3 = 7 ; 7 - 4 = 3 ; 3 + 5 = 8 ; ans 8"])
    assert as_words(tok, t) == [(0, 16, "3", "5"), (0, 22, "8", "10")]
    assert t.parsed_B.tolist() == [4]


def test_a_chain_that_comes_back_stops_leaking(tok, vocab):
    # step 3 writes 5 (consistent with 7 - 4 is 3): it lands back on the reference's chain
    t = targets_of(tok, vocab, ["1 + 2 = 3 ; 3 x 3 = 7 ; 7 - 4 = 5 ; 5 + 5 = 10 ; ans 10"])
    assert as_words(tok, t) == [(0, 16, "3", "5")]


def test_the_result_position_predicts_the_result_token(tok, vocab):
    """pos indexes completion tokens: the token at pos is the rollout's written result."""
    text = "1 + 2 = 3 ; 3 x 3 = 7 ; 7 - 4 = 3 ; 3 + 5 = 8 ; ans 8"
    ids, _ = batch(tok, [text])
    t = targets_of(tok, vocab, [text])
    assert tok.convert_ids_to_tokens(ids[0, t.pos_N].tolist()) == ["3", "8"]


@pytest.mark.parametrize(("text", "parsed", "leaks"), [
    ("1 + 2 = 3 ; 3 x 3 = 9 ; 9 ? 4 = 5 ; 5 + 5 = 10 ; ans 10", 2, []),  # not an op
    ("1 + 2 = 3 ; 3 x 50 = 7 ; 7 - 4 = 3 ; ans 3", 1, []),  # 50 is no number mod 13
    ("1 + 2 = 3 ; 3 x 3 = x ; 7 - 4 = 3 ; ans 3", 2, []),  # the prefix counts, the bad result stops it
    ("1 + 2 = 3 ; 3 x 3 = 7 7 - 4 = 3 ; ans 3", 2, []),  # no `;`
    ("ans 3 ; 1 + 2 = 3", 0, []),
    ("1 + 2 = 3 ; 3 x 3", 1, []),  # the rollout ended mid-step
    # erring before the malformed step: leak tokens up to it, none after it
    ("1 + 2 = 4 ; 4 x 3 = 12 ; 12 ? 4 = 8 ; 8 + 5 = 0 ; ans 0", 2, [10]),  # 12 vs 9; then not an op
    ("1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4 = x ; 8 + 5 = 0 ; ans 0", 3, [10, 16]),  # step 3's prefix counts
    ("1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4 = 8 8 + 5 = 0 ; ans 0", 3, [10, 16]),  # no `;` after step 3
    ("1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4", 2, [10]),  # ended mid-step 3
])
def test_a_malformed_rollout_stops_at_its_first_malformed_step(tok, vocab, text, parsed, leaks):
    t = targets_of(tok, vocab, [text])
    assert t.parsed_B.tolist() == [parsed]
    assert t.pos_N.tolist() == leaks
    assert (t.pos_N < 6 * parsed).all()  # never past the last parsed step (non-vacuous: leaks above)


def test_masked_tokens_are_never_read(tok, vocab):
    wrong = "1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4 = 8 ; 8 + 5 = 0 ; ans 0"  # step 1 errs, all after leak
    ids, mask = batch(tok, [PROBLEM.solution, wrong], width=40)
    mask[1, 13:] = 0  # row 1 keeps `1 + 2 = 4 ; 4 x 3 = 12 ;` and one more token
    mask[0, 20] = 0  # a hole: row 0 is read up to it
    t = leak_targets(ids, mask, [PROBLEM.solution] * 2, vocab, M)
    assert as_words(tok, t) == [(1, 10, "12", "9")]
    assert t.parsed_B.tolist() == [3, 2]


def test_a_leaped_reference_gives_values_only_where_its_steps_end(tok, vocab):
    wrong = "1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4 = 8 ; 8 + 5 = 0 ; ans 0"
    t = targets_of(tok, vocab, [wrong], leap(PROBLEM, M, 2).solution)
    assert as_words(tok, t) == [(0, 10, "12", "9"), (0, 22, "0", "10")]
    assert t.parsed_B.tolist() == [4]


def test_reference_entries_give_each_values_token_in_the_reference(tok):
    entries = reference_entries(PROBLEM.solution, M)
    assert entries == {1: (3, 4), 2: (9, 10), 3: (5, 16), 4: (10, 22)}
    ids = ReferenceCutter(tok).solution_ids(PROBLEM.solution)  # the cut's own tokenisation
    assert [tok.convert_ids_to_tokens(ids[pos]) for _, pos in entries.values()] == ["3", "9", "5", "10"]
    assert reference_entries(leap(PROBLEM, M, 2).solution, M) == {2: (9, 6), 4: (10, 14)}


def test_a_reference_value_beyond_the_teachers_cut_is_unshown(tok, vocab):
    """The leak tokens at ops 3 and 4 (reference values 5 and 10, reference tokens 16 and 22):
    at r = 0.75 the teacher sees ceil(0.75 * 26) = 20 tokens, so 5 was shown and 10 was not."""
    t = targets_of(tok, vocab, ["1 + 2 = 3 ; 3 x 3 = 7 ; 7 - 4 = 3 ; 3 + 5 = 8 ; ans 8"])
    assert t.ref_pos_N.tolist() == [16, 22] and t.shown_N is None
    cut = ReferenceCutter(tok)
    shown = {r: len(cut.prefix_ids(PROBLEM.solution, PROBLEM.steps, r)[0]) for r in (0.5, 0.75, 1.0)}
    assert shown == {0.5: 13, 0.75: 20, 1.0: 26}
    assert {r: t.with_shown([n]).shown_N.tolist() for r, n in shown.items()} == \
        {0.5: [False, False], 0.75: [True, False], 1.0: [True, True]}
    assert t.with_shown([20]).select(slice(0, 1)).shown_N.tolist() == [True, False]  # carried by select
    with pytest.raises(ValueError, match="shape"):
        t.with_shown([20, 20])


def test_leak_stats_split_by_shown_matches_the_subsets():
    torch.manual_seed(1)
    head = torch.nn.Linear(8, 40)
    h_B_C_H = torch.randn(2, 10, 8)
    t = LeakTargets(torch.tensor([0, 0, 1]), torch.tensor([4, 7, 2]), torch.tensor([5, 6, 7]),
                    torch.tensor([8, 9, 10]), torch.tensor([2, 1]), torch.tensor([4, 16, 10]))
    marked = t.with_shown([10, 11])  # row 0: ref tokens 4 (shown), 16 (not); row 1: 10 (shown)
    assert marked.shown_N.tolist() == [True, False, True]
    got = leak_stats(h_B_C_H, head, marked, block=2)
    logits = head(h_B_C_H).detach()[t.row_N, t.pos_N]
    p_c, p_r = (torch.softmax(logits.double(), -1).gather(-1, ids[:, None])[:, 0]
                for ids in (t.consistent_N, t.reference_N))
    assert got["tokens_shown"] == 2
    assert got["p_reference_shown"] == pytest.approx(float(p_r[0] + p_r[2]), rel=1e-5)
    acc = LeakAccumulator()
    acc.add(got)
    means = acc.means()
    assert means["leak_p_reference_unshown"] == pytest.approx(float(p_r[1]), rel=1e-5)
    assert means["leak_p_consistent_shown"] == pytest.approx(float(p_c[0] + p_c[2]) / 2, rel=1e-5)
    assert means["leak_tokens_shown"] == 2 and means["leak_tokens"] == 3
    assert "tokens_shown" not in leak_stats(h_B_C_H, head, t)  # no shown flags: no split


def test_select_renumbers_rows(tok, vocab):
    wrong = "1 + 2 = 4 ; 4 x 3 = 12 ; 12 - 4 = 8 ; 8 + 5 = 0 ; ans 0"
    t = targets_of(tok, vocab, [PROBLEM.solution, wrong, wrong])
    assert t.select(slice(1, 2)).row_N.tolist() == [0] * 3  # steps 2-4 of row 1
    assert t.select(slice(0, 1)).row_N.numel() == 0
    picked = t.select(torch.tensor([2, 0]))
    assert picked.row_N.tolist() == [0] * 3 and picked.parsed_B.tolist() == [4, 4]


# ---- leak_stats ------------------------------------------------------------------------------
def brute_force(logits_N_V: torch.Tensor, t: LeakTargets) -> tuple[float, float]:
    """(sum p(consistent), sum p(reference)) from the full softmax of the leak tokens' logits."""
    p_N_V = torch.softmax(logits_N_V.double(), -1)
    return (float(p_N_V.gather(-1, t.consistent_N[:, None]).sum()),
            float(p_N_V.gather(-1, t.reference_N[:, None]).sum()))


def test_leak_stats_matches_a_full_log_softmax_on_a_random_head():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 40, bias=True)
    h_B_C_H = torch.randn(3, 10, 8)
    t = LeakTargets(torch.tensor([0, 2, 2]), torch.tensor([4, 1, 9]), torch.tensor([5, 6, 7]),
                    torch.tensor([8, 9, 39]), torch.tensor([2, 0, 3]))
    got = leak_stats(h_B_C_H, head, t, block=2)  # blocks of 2 rows: the last one short
    want = brute_force(head(h_B_C_H).detach()[t.row_N, t.pos_N], t)
    assert got["tokens"] == 3 and got["parsed"] == 5
    assert (got["p_consistent"], got["p_reference"]) == pytest.approx(want, rel=1e-5)


def test_leak_stats_through_final_hidden_scores_the_token_the_model_predicts(tok, vocab):
    """Alignment: the trainer's layout (left-padded prompt, right-padded rollout) through
    final_hidden gives the model's own logits at the token before each result."""
    model = build_model(tok, TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                                           intermediate_size=64), seed=0).eval()
    texts = ["1 + 2 = 3 ; 3 x 3 = 7 ; 7 - 4 = 3 ; 3 + 5 = 8 ; ans 8", "1 + 2 = 4 ; 4 x 3 = 12 ; ans 12"]
    comp, cmask = batch(tok, texts)
    prompts = [tok("ref : 1 | 1 + 2 x 3 - 4 + 5 ?")["input_ids"], tok("1 ?")["input_ids"]]
    width = max(map(len, prompts))
    p_ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    p_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    ids, mask = torch.cat([p_ids, comp], 1), torch.cat([p_mask, cmask], 1)
    t = leak_targets(comp, cmask, [PROBLEM.solution] * 2, vocab, M)
    assert t.row_N.tolist() == [0, 0, 1]
    with torch.no_grad():
        got = leak_stats(final_hidden(model, ids, mask, comp.shape[1]), model.lm_head, t)
        logits = model(input_ids=ids, attention_mask=mask).logits
    # logits at sequence index width + pos - 1 predict completion token pos
    want = brute_force(logits[:, width - 1:-1][t.row_N, t.pos_N], t)
    assert (got["p_consistent"], got["p_reference"]) == pytest.approx(want, rel=1e-4)


def test_leak_stats_at_qwen3_vocab_holds_no_batch_wide_logits(monkeypatch):
    """At V = 151,936 only [N, V] blocks reach the head: a [B, C, V] here would be 9.3 GB."""
    V, B, C, H = 151_936, 16, 1024, 8
    torch.manual_seed(0)
    head = torch.nn.Linear(H, V, bias=False)
    h_B_C_H = torch.randn(B, C, H)
    t = LeakTargets(torch.tensor([0, 3, 15, 15, 7]), torch.tensor([4, 100, 1023, 0, 10]),
                    torch.tensor([1, 2, 3, 151_935, 5]), torch.tensor([6, 7, 8, 9, 10]),
                    torch.full((B,), 2))
    shapes: list[tuple[int, ...]] = []
    real_linear = F.linear

    def spy(x, *args):
        shapes.append(tuple(x.shape))
        return real_linear(x, *args)

    monkeypatch.setattr(leak_module.F, "linear", spy)
    got = leak_stats(h_B_C_H, head, t, block=4)
    monkeypatch.undo()
    assert shapes == [(4, H), (1, H)]
    want = brute_force(head(h_B_C_H[t.row_N, t.pos_N]).detach(), t)  # [N, V] only: N = 5
    assert (got["p_consistent"], got["p_reference"]) == pytest.approx(want, rel=1e-5)


NO_SPLIT = {"leak_p_consistent_shown": None, "leak_p_reference_shown": None, "leak_tokens_shown": 0,
            "leak_p_consistent_unshown": None, "leak_p_reference_unshown": None}


def test_the_accumulator_gives_null_means_without_a_leak_token():
    acc = LeakAccumulator()
    assert acc.means() == {"leak_p_consistent": None, "leak_p_reference": None, "leak_tokens": 0,
                           "leak_share": None, **NO_SPLIT}
    acc.add({"tokens": 0, "parsed": 4, "p_consistent": 0.0, "p_reference": 0.0, "tokens_shown": 0,
             "p_consistent_shown": 0.0, "p_reference_shown": 0.0})
    assert acc.means()["leak_share"] == 0.0 and acc.means()["leak_p_reference"] is None
    acc.add({"tokens": 2, "parsed": 4, "p_consistent": 0.5, "p_reference": 1.5, "tokens_shown": 1,
             "p_consistent_shown": 0.1, "p_reference_shown": 0.9})
    assert acc.means() == pytest.approx({
        "leak_p_consistent": 0.25, "leak_p_reference": 0.75, "leak_tokens": 2, "leak_share": 0.25,
        "leak_p_consistent_shown": 0.1, "leak_p_reference_shown": 0.9, "leak_tokens_shown": 1,
        "leak_p_consistent_unshown": 0.4, "leak_p_reference_unshown": 0.6})
    assert tuple(acc.means()) == KEYS
    assert json.loads(json.dumps(LeakAccumulator().means()))["leak_p_consistent"] is None
    acc.add({"tokens": 1, "parsed": 1, "p_consistent": 0.5, "p_reference": 0.5, "shown_unknown": 1})
    unknown = acc.means()  # a block scored without shown flags: the split is unknown, not wrong
    assert unknown["leak_tokens_shown"] is None and unknown["leak_p_reference_unshown"] is None
    assert unknown["leak_tokens"] == 3


# ---- a short OPSD run --------------------------------------------------------------------------
def scripted_rollouts(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """OPSDTrainer._generate's stand-in: the smoke base writes no chains yet, so each rollout is
    its prompt's solution with each step erring at rate 0.5 (seeded by the problem), cut to the
    rollout length: leak tokens in every step's batch, and the rest of the step is the trainer's."""
    tok, width = self._tokenizer, self.run_cfg.train.max_completion_length
    out = []
    for ids in prompt_ids:
        text = tok.decode(ids, skip_special_tokens=True).removesuffix("?").strip()
        problem = build_problem(*parse_problem(text), self.run_cfg.task.modulus)
        written = erring_solution(problem, self.run_cfg.task.modulus, 0.5, random.Random(text))
        out.append((tok(written, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])[:width])
    return prompt_ids, out


def check_leak_keys(row: dict) -> None:
    assert set(KEYS) <= set(row) and not undocumented(row)
    assert isinstance(row["leak_tokens"], int) and row["leak_tokens"] >= 0
    for key in ("leak_p_consistent", "leak_p_reference", "leak_share", "leak_p_reference_shown",
                "leak_p_reference_unshown", "leak_p_consistent_shown", "leak_p_consistent_unshown"):
        assert row[key] is None or 0.0 <= row[key] <= 1.0, (key, row[key])
    assert (row["leak_p_consistent"] is None) == (row["leak_tokens"] == 0)
    shown, n = row["leak_tokens_shown"], row["leak_tokens"]
    assert isinstance(shown, int) and 0 <= shown <= n  # the trainer always knows the cut
    if 0 < shown < n:  # the two parts recombine into the whole
        whole = (shown * row["leak_p_reference_shown"] + (n - shown) * row["leak_p_reference_unshown"]) / n
        assert whole == pytest.approx(row["leak_p_reference"], rel=1e-6)


def test_an_opsd_run_writes_the_leak_in_train_and_probe_rows(smoke_base, tmp_path, monkeypatch):
    from harness.config.settings import compose_resolved
    from harness.run import run
    from harness.trainers.opsd import OPSDTrainer

    monkeypatch.setattr(OPSDTrainer, "_generate", scripted_rollouts)
    # micro-batches of 2 of the step's 4 rollouts: the train row merges two of them
    cfg, yaml_text = compose_resolved(["profile=smoke", "method=opsd", "exposure=0.5", f"results={tmp_path}",
                                       "train.steps=2", "probe.every=1", "train.micro_batch=2",
                                       "train.checkpoint_every=0", "eval.k=1"])
    run(cfg, yaml_text)
    rows = [json.loads(x) for x in (tmp_path / cfg.run_name / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    probe = [r for r in rows if r["kind"] == "probe"]
    assert len(train) == 2 and len(probe) == 2 * len(cfg.probe.exposures)
    for row in train + probe:
        check_leak_keys(row)
    first = train[0]
    assert first["leak_tokens"] > 0 and 0 < first["leak_share"] < 1
    # the probe's cut: at r = 0 no reference value is shown, at r = 1 every one is
    at = {r["probe_exposure"]: r for r in probe if r["step"] == 1}
    assert at[0.0]["leak_tokens_shown"] == 0 and at[0.0]["leak_p_reference_shown"] is None
    assert at[1.0]["leak_tokens_shown"] == at[1.0]["leak_tokens"] > 0
    assert at[0.0]["leak_tokens_shown"] <= at[0.5]["leak_tokens_shown"] <= at[1.0]["leak_tokens_shown"]
    # step 1: the probe at the train exposure sees the same rollouts and the same teacher weights,
    # so the merged micro-batches must give its numbers
    same = next(r for r in probe if r["step"] == 1 and r["probe_exposure"] == 0.5)
    assert same["leak_tokens"] == first["leak_tokens"] and same["leak_share"] == first["leak_share"]
    assert same["leak_tokens_shown"] == first["leak_tokens_shown"]  # train and probe cut alike
    for key in ("leak_p_consistent", "leak_p_reference", "leak_p_reference_shown",
                "leak_p_reference_unshown"):
        assert same[key] == pytest.approx(first[key], abs=1e-4)
