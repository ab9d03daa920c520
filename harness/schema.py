"""Every key of metrics.jsonl and eval.json, documented once. Analysis reads these names.

python -m harness.schema      # prints the schema as a Markdown table

Mismatch direction: `mismatch_kl_st` is KL(p_S || p_T) (the logged mismatch,
reverse direction: student's expectation), `mismatch_kl_ts` is KL(p_T || p_S).
Both are per-token means over the student's own rollout tokens, temperature 1,
full vocabulary.
"""

from __future__ import annotations

TRAIN_ROW = {
    "step": "optimiser step, 1-based; first key of every row",
    "kind": "'train' (one per optimiser step), 'probe' (one per probed exposure), 'eval', "
            "'controller' (one per ATESD window)",
    "exposure": "exposure r in force for this step's teacher (train rows)",
    "loss": "distillation loss D(p_T, p_S) per completion token (generalized JSD, loss.beta)",
    "mismatch_kl_st": "KL(p_S || p_T) per token on the student's rollouts, T = 1, full vocab",
    "mismatch_kl_ts": "KL(p_T || p_S) per token on the same tokens",
    "teacher_entropy": "mean per-token entropy of p_T (nats)",
    "student_entropy": "mean per-token entropy of p_S (nats)",
    "rollout_accuracy": "share of this step's rollouts whose final answer is correct",
    "completion_length": "mean rollout length in tokens (eos included)",
    "lr": "learning rate used for this step",
    "grad_norm": "gradient norm before clipping",
    "wall_time": "seconds since the run (or its resume) started",
}
PROBE_ROW = {
    "step": "the step whose rollouts were probed",
    "kind": "'probe'",
    "probe_exposure": "the exposure this row measured (the teacher saw this much)",
    "mismatch_kl_st": "KL(p_S || p_T) at probe_exposure on the same rollouts",
    "mismatch_kl_ts": "KL(p_T || p_S) at probe_exposure",
}
CONTROLLER_ROW = {
    "step": "step at which the window ended",
    "kind": "'controller'",
    "window": "decision index k",
    "ctrl_a": "Beta a of the policy for the next decision", "ctrl_b": "Beta b",
    "ctrl_r": "exposure sampled for the next window",
    "ctrl_progress": "learning-progress measure P_k at the end of window k",
    "ctrl_delta": "P_k - P_(k-1)",
    "ctrl_reward": "discounted reward credited to a decision in this update (if any)",
    "ctrl_baseline": "EMA baseline", "ctrl_policy_loss": "REINFORCE loss of the update",
}
EVAL_JSON = {
    "suites": "{suite: {average, se, k, num_problems, pass@1, pass@4, pass@k}}",
    "k": "samples per problem", "temperature": "sampling temperature",
    "exposure": "null: student prompt (no reference)",
    "seconds": "wall time of the evaluation",
}
EVAL_SAMPLE = {
    "suite": "suite name", "problem_id": "stable problem id", "sample": "sample index 0..k-1",
    "answer": "extracted answer (null if none)", "gold": "reference answer",
    "correct": "graded correct", "completion": "the sampled text",
}


def as_markdown() -> str:
    out = []
    for title, table in [("metrics.jsonl train row", TRAIN_ROW), ("probe row", PROBE_ROW),
                         ("controller row", CONTROLLER_ROW), ("eval.json", EVAL_JSON),
                         ("eval_samples.jsonl", EVAL_SAMPLE)]:
        out += [f"### {title}", "", "| key | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in table.items()] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    print(as_markdown())
