"""Batched sampling of completions from a causal LM (HF generate), k samples per prompt.

python -c "import harness.evaluation.sampling as s; help(s.sample_completions)"
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from harness.evaluation.progress import BatchLog, rng_state, set_rng_state


@torch.no_grad()
def sample_completions(model, tokenizer, prompts: list[str], k: int, temperature: float,
                       top_p: float, max_new_tokens: int, batch_size: int, seed: int,
                       desc: str | None = None, log: BatchLog | None = None) -> list[list[str]]:
    """Return completions_P_K: k sampled completions (text, eos stripped) for each prompt.

    Sequences go through in chunks of `batch_size`; the seed fixes the samples.
    temperature 0 is greedy decoding (then top_p is unused). log: finished batches of an
    interrupted evaluation (harness/evaluation/progress.py), skipped with the RNG state after
    them restored, and each new batch appended: the same samples as one uninterrupted call.
    """
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    flat = [p for p in prompts for _ in range(k)]
    out: list[str] = []
    bar = tqdm(total=len(flat), desc=desc, disable=desc is None, leave=False, unit="seq")
    for b, start in enumerate(range(0, len(flat), batch_size)):
        chunk = flat[start:start + batch_size]
        done = log.get(b) if log is not None else None
        if done is not None:
            out.extend(done["texts"])
            set_rng_state(done["rng"])
            bar.update(len(chunk))
            continue
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        mode = (dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
                if temperature > 0 else dict(do_sample=False))
        ids_B_T = model.generate(**enc, **mode, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
        completion_B_C = ids_B_T[:, enc["input_ids"].shape[1]:]
        texts = tokenizer.batch_decode(completion_B_C, skip_special_tokens=True)
        if log is not None:
            log.put(b, texts, rng_state())
        out.extend(texts)
        bar.update(len(chunk))
    bar.close()
    model.train(was_training)
    return [out[i * k:(i + 1) * k] for i in range(len(prompts))]
