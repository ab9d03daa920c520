"""The teacher's leak on the synthetic task: does it predict the rollout's own value or the reference's?

python -m pytest -q tests/test_leak.py      # the train and probe rows carry leak_* (harness/runs/schema.py)

Every result token of a rollout step `acc op b = r ;` has two values known exactly: the one that
follows from the step as the rollout wrote it (apply(op, acc, b) mod M, with the rollout's acc, op
and b) and the reference's running value after the same number of operations. While the rollout's
chain is right they agree; once it went off they differ, and the teacher's probability of each at
the result position says whether it grades the rollout's own reasoning or pulls it toward the
reference it was shown. Only positions where both values exist and differ are "leak tokens".

- `reference_values` reads the reference (one step per op, or a leaped `a op b op c = r ;`: its
  result belongs to the op index it ends at, the ops inside it have no value; `ans` adds nothing);
  `reference_entries` also gives where each value stands in the reference (its token index: the
  task's tokenizer has one token per word, harness/models/tiny.py).
- Shown or not: below r = 1 the teacher sees only the first tokens of the reference, so a
  reference value past the cut is one it could not copy. `LeakTargets.with_shown(shown_B)` marks
  each leak token whose reference value lies inside its row's shown prefix (shown_B: the cut's
  length in reference tokens at the row's r; the trainer's, harness/trainers/hooks.py), and the
  logged means split by it (`leak_p_*_shown`, `leak_p_*_unshown`, `leak_tokens_shown`). A
  task.max_teacher_tokens budget that cuts the reference further is not counted (the synthetic
  task sets none), nor the keep_answer suffix's boxed answer.
- `leak_targets` parses rollouts token by token (one token per number and symbol, as in
  harness/models/tiny.py) into a LeakTargets: row, position, the two token ids of each leak token,
  and how many result tokens each row parsed.
- `leak_stats` scores them from final hidden states (harness/losses/hidden_states.py: h[:, t]
  predicts completion token t): only the N selected rows reach the LM head, an [N, V] block at a
  time, never a [B, C, V] tensor. It returns sums so micro-batches and row blocks add up
  (LeakAccumulator turns them into the logged means).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from harness.tasks.synthetic import MAX_MODULUS, OPS, _apply

RESULT_OFFSET = 4  # `acc op b = r ;`: the result is token 4 of its step
STEP_LEN = 6
KEYS = ("leak_p_consistent", "leak_p_reference", "leak_tokens", "leak_share",
        "leak_p_consistent_shown", "leak_p_reference_shown", "leak_tokens_shown",
        "leak_p_consistent_unshown", "leak_p_reference_unshown")


def reference_entries(solution: str, modulus: int) -> dict[int, tuple[int, int]]:
    """{op index (1-based, after that many operations): (the reference's running value, the
    index of that value's token in the reference)}."""
    out: dict[int, tuple[int, int]] = {}
    ops_done, word_index = 0, 0
    for step in solution.split(";"):
        words = step.split()
        start, word_index = word_index, word_index + len(words) + 1  # the `;` after the step
        if not words or words[0] == "ans":
            continue
        if "=" not in words or words.index("=") != len(words) - 2:
            raise ValueError(f"reference step {step.strip()!r} is not `a op b ... = r`")
        ops_done += sum(w in OPS for w in words[:-2])
        value = int(words[-1])
        if not 0 <= value < modulus:
            raise ValueError(f"reference value {value} is outside [0, {modulus})")
        out[ops_done] = (value, start + len(words) - 1)
    return out


def reference_values(solution: str, modulus: int) -> dict[int, int]:
    """{op index (1-based, after that many operations): the reference's running value}."""
    return {ops: value for ops, (value, _) in reference_entries(solution, modulus).items()}


@dataclass(frozen=True)
class TaskVocab:
    """The task's words and their token ids in the model's tokenizer (words it lacks left out)."""

    word_to_id: dict[str, int]

    @classmethod
    def of(cls, tokenizer) -> TaskVocab:
        words = [*OPS, "=", ";", "ans", *map(str, range(MAX_MODULUS))]
        ids = tokenizer.convert_tokens_to_ids(words)
        # a word the tokenizer maps to its unknown token is not one of its tokens
        return cls({w: i for w, i in zip(words, ids, strict=True)
                    if i is not None and i != tokenizer.unk_token_id})

    @property
    def id_to_word(self) -> dict[int, str]:
        return {i: w for w, i in self.word_to_id.items()}


@dataclass(frozen=True)
class ResultToken:
    """One parsed result position of a rollout: after `ops` operations, with its consistent value."""

    ops: int
    position: int
    consistent: int


def _number(word: str | None, modulus: int) -> int | None:
    if word is None or not word.isdigit() or int(word) >= modulus:
        return None
    return int(word)


def parse_results(words: Sequence[str | None], modulus: int) -> Iterator[ResultToken]:
    """The result tokens of one rollout's words, until its first malformed step or `ans`.

    A step counts once `acc op b =` is well-formed and its result position exists: the teacher's
    prediction there is conditioned on that prefix only, whatever the rollout wrote as the result.
    Parsing goes on only if that result is a number and `;` follows it."""
    t, ops = 0, 0
    while t + RESULT_OFFSET < len(words):
        acc, op, b, eq = (_number(words[t], modulus), words[t + 1], _number(words[t + 2], modulus),
                          words[t + 3])
        if acc is None or b is None or op not in OPS or eq != "=":
            return
        ops += 1
        yield ResultToken(ops, t + RESULT_OFFSET, _apply(op, acc, b, modulus))
        end = t + STEP_LEN - 1
        if _number(words[t + RESULT_OFFSET], modulus) is None or end >= len(words) or words[end] != ";":
            return
        t += STEP_LEN


@dataclass(frozen=True)
class LeakTargets:
    """Leak tokens of a batch of rollouts (CPU tensors): row_N, pos_N (completion positions),
    consistent_N / reference_N (token ids of the two values), parsed_B (result tokens per row),
    ref_pos_N (where the reference value stands in its reference, in tokens; None: unknown) and
    shown_N (whether the teacher was shown it: set by with_shown; None: not known)."""

    row_N: torch.Tensor
    pos_N: torch.Tensor
    consistent_N: torch.Tensor
    reference_N: torch.Tensor
    parsed_B: torch.Tensor
    ref_pos_N: torch.Tensor | None = None
    shown_N: torch.Tensor | None = None

    def with_shown(self, shown_B: Sequence[int] | torch.Tensor) -> LeakTargets:
        """These targets with shown_N: the reference value's token lies inside its row's shown
        prefix (shown_B[b]: reference tokens the teacher saw for row b at its exposure)."""
        if self.ref_pos_N is None:
            raise ValueError("with_shown needs ref_pos_N (targets built by leak_targets)")
        shown_tokens_B = torch.as_tensor(shown_B, dtype=torch.long).cpu()
        if shown_tokens_B.shape != self.parsed_B.shape:
            raise ValueError(f"shown_B has shape {tuple(shown_tokens_B.shape)}, the targets' rows "
                             f"{tuple(self.parsed_B.shape)}")
        return replace(self, shown_N=self.ref_pos_N < shown_tokens_B[self.row_N])

    def select(self, rows_b: torch.Tensor | slice) -> LeakTargets:
        """The targets of rows `rows_b` (indices into this batch), renumbered 0..b-1 in that order."""
        n_rows = self.parsed_B.shape[0]
        index_b = torch.arange(n_rows)[rows_b] if isinstance(rows_b, slice) else rows_b.long().cpu()
        new_row_B = torch.full((n_rows,), -1, dtype=torch.long)
        new_row_B[index_b] = torch.arange(index_b.shape[0])
        new_row_N = new_row_B[self.row_N]
        keep_N = new_row_N >= 0

        def kept(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[keep_N]

        return LeakTargets(new_row_N[keep_N], self.pos_N[keep_N], self.consistent_N[keep_N],
                           self.reference_N[keep_N], self.parsed_B[index_b], kept(self.ref_pos_N),
                           kept(self.shown_N))


def _row_targets(ids_C: list[int], valid: int, reference: dict[int, tuple[int, int]], vocab: TaskVocab,
                 id_to_word: dict[int, str], modulus: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """([(position, consistent id, reference id, reference position)] of one rollout's leak
    tokens, its parsed count)."""
    results = list(parse_results([id_to_word.get(i) for i in ids_C[:valid]], modulus))
    out = []
    for res in results:
        ref, ref_pos = reference.get(res.ops, (None, -1))
        if ref is None or ref == res.consistent:
            continue
        ids = vocab.word_to_id.get(str(res.consistent)), vocab.word_to_id.get(str(ref))
        if None not in ids:  # a value with no token of its own cannot be scored
            out.append((res.position, *ids, ref_pos))
    return out, len(results)


def leak_targets(completion_ids_B_C: torch.Tensor, mask_B_C: torch.Tensor,
                 reference_solutions: Sequence[str], vocab: TaskVocab, modulus: int) -> LeakTargets:
    """The leak tokens of right-padded rollouts against their references (one per row); a row is
    read up to its first masked position."""
    ids = completion_ids_B_C.tolist()
    # leading run of ones: the rollout's text; anything after a hole is not one text with it
    valid = (mask_B_C.long().cumprod(dim=1).sum(dim=1)).tolist()
    id_to_word = vocab.id_to_word
    rows, found, parsed = [], [], []
    for b, (ids_C, n, solution) in enumerate(zip(ids, valid, reference_solutions, strict=True)):
        row, count = _row_targets(ids_C, n, reference_entries(solution, modulus), vocab, id_to_word,
                                  modulus)
        rows += [b] * len(row)
        found += row
        parsed.append(count)
    cols = torch.tensor(found, dtype=torch.long).reshape(-1, 4)
    return LeakTargets(torch.tensor(rows, dtype=torch.long), cols[:, 0], cols[:, 1], cols[:, 2],
                       torch.tensor(parsed, dtype=torch.long), cols[:, 3])


@torch.no_grad()
def leak_stats(h_B_C_H: torch.Tensor, head: torch.nn.Module, targets: LeakTargets,
               block: int = 1024) -> dict[str, float]:
    """Sums of the teacher's p(consistent) and p(reference) over the leak tokens, at temperature 1,
    from its final hidden states h_B_C_H (h[b, t] predicts completion token t); with the counts.
    With targets.shown_N also the sums over the tokens whose reference value was shown."""
    dev = h_B_C_H.device
    h_N_H = h_B_C_H[targets.row_N.to(dev), targets.pos_N.to(dev)]
    weight_V_H = head.weight.detach()
    bias_V = None if getattr(head, "bias", None) is None else head.bias.detach()
    acc = torch.promote_types(h_N_H.dtype, torch.float32)  # softmax in fp32 at least
    both_N_2 = torch.stack([targets.consistent_N, targets.reference_N], 1).to(dev)
    shown_N = targets.shown_N.to(dev) if targets.shown_N is not None else None
    p_sum_2 = torch.zeros(2, dtype=torch.float64, device=dev)
    p_shown_2 = torch.zeros(2, dtype=torch.float64, device=dev)
    for start in range(0, h_N_H.shape[0], max(1, block)):
        logp_n_V = torch.log_softmax(F.linear(h_N_H[start:start + block], weight_V_H, bias_V).to(acc), -1)
        p_n_2 = logp_n_V.gather(-1, both_N_2[start:start + block]).exp().double()
        p_sum_2 += p_n_2.sum(0)
        if shown_N is not None:
            p_shown_2 += p_n_2[shown_N[start:start + block]].sum(0)
    p_consistent, p_reference = p_sum_2.tolist()
    out = {"tokens": int(targets.row_N.shape[0]), "parsed": int(targets.parsed_B.sum()),
           "p_consistent": p_consistent, "p_reference": p_reference}
    if shown_N is None:
        return {**out, "shown_unknown": 1}
    p_consistent_shown, p_reference_shown = p_shown_2.tolist()
    return {**out, "tokens_shown": int(shown_N.sum()), "p_consistent_shown": p_consistent_shown,
            "p_reference_shown": p_reference_shown}


class LeakAccumulator:
    """leak_stats sums over micro-batches (or a probe exposure's row blocks) -> the logged keys."""

    def __init__(self) -> None:
        self.sums = {"tokens": 0, "parsed": 0, "p_consistent": 0.0, "p_reference": 0.0,
                     "tokens_shown": 0, "p_consistent_shown": 0.0, "p_reference_shown": 0.0,
                     "shown_unknown": 0}  # blocks scored without shown_N: the split is unknown

    def add(self, stats: dict[str, float]) -> None:
        for key in self.sums:
            self.sums[key] += stats.get(key, 0)

    def reduced(self) -> LeakAccumulator:
        """The sums over every rank (a collective; harness/compute/reduce.py)."""
        from harness.compute.reduce import summed

        total = LeakAccumulator()
        total.sums = {k: (int(v) if isinstance(self.sums[k], int) else v)
                      for k, v in summed(self.sums).items()}
        return total

    def means(self) -> dict[str, float | int | None]:
        """KEYS; the means are None (null in metrics.jsonl, never NaN) when there is no leak token
        (of that kind), leak_share None when no result token was parsed; the shown / unshown
        keys are None, leak_tokens_shown too, when some block was scored without shown_N."""
        s = self.sums
        n, parsed = s["tokens"], s["parsed"]

        def mean(total: float, count: int) -> float | None:
            return total / count if count else None

        out: dict[str, float | int | None] = {
            "leak_p_consistent": mean(s["p_consistent"], n), "leak_p_reference": mean(s["p_reference"], n),
            "leak_tokens": n, "leak_share": n / parsed if parsed else None}
        known = not s["shown_unknown"]
        shown, unshown = s["tokens_shown"], n - s["tokens_shown"]
        out.update({
            "leak_p_consistent_shown": mean(s["p_consistent_shown"], shown) if known else None,
            "leak_p_reference_shown": mean(s["p_reference_shown"], shown) if known else None,
            "leak_tokens_shown": shown if known else None,
            "leak_p_consistent_unshown": mean(s["p_consistent"] - s["p_consistent_shown"], unshown)
            if known else None,
            "leak_p_reference_unshown": mean(s["p_reference"] - s["p_reference_shown"], unshown)
            if known else None})
        return out
