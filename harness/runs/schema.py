"""Every key of metrics.jsonl and eval.json, documented once. Analysis reads these names.

python -m harness.runs.schema      # prints the schema as a Markdown table

Mismatch direction: `mismatch_kl_st` is KL(p_S || p_T) (the logged mismatch,
reverse direction: student's expectation), `mismatch_kl_ts` is KL(p_T || p_S).
Both are per-token means over the student's own rollout tokens, temperature 1,
full vocabulary.
"""

from __future__ import annotations

LEAK = {  # synthetic task only (harness/trainers/leak.py); absent on the math task
    "leak_p_consistent": "synthetic: mean teacher p (T = 1) of the value that follows from the rollout's "
                         "own step (apply(op, acc, b) mod M as written) at the result tokens where it "
                         "differs from the reference's running value; null when leak_tokens = 0",
    "leak_p_reference": "synthetic: mean teacher p (T = 1) of the training reference's running value (the "
                        "whole reference, also past the cut the teacher saw) after the "
                        "same number of operations, at those tokens; null when leak_tokens = 0",
    "leak_tokens": "synthetic: number of those result tokens (the rollout's chain has gone off the "
                   "reference's; a leaped reference has no value inside a step)",
    "leak_share": "synthetic: leak_tokens over all result tokens parsed (up to the first malformed "
                  "step); null when none was parsed",
    "leak_tokens_shown": "synthetic: those of the leak_tokens whose reference value lies inside the "
                         "reference prefix the teacher was shown at its r (the cut); null when unknown",
    "leak_p_consistent_shown": "synthetic: leak_p_consistent over the shown leak tokens only; null when "
                               "there is none",
    "leak_p_reference_shown": "synthetic: leak_p_reference over the shown leak tokens only (the teacher "
                              "saw the value it could copy); null when there is none",
    "leak_p_consistent_unshown": "synthetic: leak_p_consistent over the leak tokens whose reference value "
                                 "lies past the cut; null when there is none",
    "leak_p_reference_unshown": "synthetic: leak_p_reference over the leak tokens whose reference value "
                                "lies past the cut (the teacher could not see it); null when there is none",
}
TRAIN_ROW = {
    "step": "optimiser step, 1-based; first key of every row",
    "kind": "'train' (one per optimiser step), 'probe' (one per probed exposure), 'eval', "
            "'controller' (one per ATESD window), 'exposure' (per-problem sources: one per "
            "problem per step)",
    "exposure": "mean over the step's problems of the exposure r their teacher saw (every "
                "shipped source gives the whole batch one r: that r exactly)",
    "exposure_spread": "population standard deviation of those exposures (0 for a batch-wide r)",
    "loss": "distillation loss D(p_T, p_S) per completion token (generalized JSD, loss.beta)",
    "mismatch_kl_st": "KL(p_S || p_T) per token on the student's rollouts, T = 1, full vocab",
    "mismatch_kl_ts": "KL(p_T || p_S) per token on the same tokens",
    "teacher_entropy": "mean per-token entropy of p_T (nats)",
    "student_entropy": "mean per-token entropy of p_S (nats)",
    "student_confidence": "mean per-token max_v p_S(v) on the rollouts, T = 1 (ATESD state=paper)",
    "rollout_accuracy": "share of this step's rollouts whose final answer is correct",
    "completion_length": "mean rollout length in tokens (eos included)",
    "teacher_ref_cut": "only with task.max_teacher_tokens > 0: share of this step's teacher "
                       "contexts whose reference was cut from its end to fit that budget",
    "lr": "learning rate used for this step",
    "grad_norm": "gradient norm before clipping",
    "wall_time": "seconds since the run (or its resume) started",
    # loss=antisd (harness/trainers/rl.py): the gate and the per-token advantage term
    "antisd_gate": "loss=antisd: 1 when the entropy gate let the AntiSD term in this step, else 0",
    "teacher_entropy_median": "loss=antisd: median per-token teacher entropy of the step's rollouts",
    "antisd_gate_reference": "loss=antisd: the warm-up level of that median the gate compares with "
                             "(null during the warm-up)",
    "antisd_term": "loss=antisd: mean |lambda A_t| over the step's tokens (0 while the gate is off)",
    # loss=sdar: the gated distillation term, token-weighted over the step's micro-batches
    "sdar_gate": "loss=sdar: mean sigmoid gate g_t over the step's tokens",
    "sdar_term": "loss=sdar: the added loss sdar.coef * mean_t(g_t D_t)",
    "distill_loss": "loss=sdar: mean per-token OPSD divergence D_t (ungated)",
    # method=opsd on the synthetic task: over the step's micro-batches, at the batch's exposure
    **LEAK,
}
EXPOSURE_ROW = {  # per-problem sources only (ExposureSource.per_problem)
    "step": "the optimiser step", "kind": "'exposure'",
    "problem_id": "the training problem's stable id",
    "exposure": "the exposure r its teacher saw at this step",
    "ref_steps": "the number of steps of its reference solution (the synthetic task: operations)",
}
EVAL_ROW = {  # only with eval.every > 0
    "step": "step after which the student was evaluated",
    "kind": "'eval'",
    "eval_<suite>": "Average@k of that suite at this step (same sampling settings as eval.json)",
    "seconds": "wall time of this evaluation",
}
PROBE_ROW = {
    "step": "the step whose rollouts were probed",
    "kind": "'probe'",
    "probe_exposure": "the exposure this row measured (the teacher saw this much)",
    "mismatch_kl_st": "KL(p_S || p_T) at probe_exposure on the same rollouts",
    "mismatch_kl_ts": "KL(p_T || p_S) at probe_exposure",
    # synthetic task: the teacher's leak at probe_exposure on the same rollouts
    **LEAK,
}
CONTROLLER_ROW = {  # a source's rows: ATESD's per hold window (at its last step); target_mismatch's
    "step": "step at which the window ended (every controller.hold steps, and the last step)",
    "kind": "'controller'",
    "window": "decision index k: this row describes window k and the decision that governed it",
    "ctrl_r": "exposure r_k sampled for window k (the train rows of its steps carry it)",
    "ctrl_a": "Beta a of the policy at decision k (>= 1; after the entropy clamp, if any)",
    "ctrl_b": "Beta b (>= 1)",
    "ctrl_policy_mean": "the policy's mean a / (a + b) at decision k",
    "ctrl_concentration": "the policy's concentration a + b at decision k (higher: narrower)",
    "ctrl_state_progress": "state: t/T at decision k",
    "ctrl_state_prev_exposure": "state: r_(k-1) (0 at k = 0, as are the statistics before data)",
    "ctrl_state_loss": "state: log1p(EMA of loss)",
    "ctrl_state_mismatch": "state: log1p(EMA of mismatch_kl_st)",
    "ctrl_state_accuracy": "state: EMA of rollout_accuracy",
    "ctrl_state_entropy": "state: log1p(EMA of student_entropy)",
    "ctrl_state_delta": "state: tanh(delta_(k-1) / 0.05); all ctrl_state_* are 0 with state=none",
    "ctrl_state_probe_nll": "state=paper: log1p(student's NLL of the validation references) at decision k",
    "ctrl_state_confidence": "state=paper: EMA of student_confidence",
    "ctrl_probe_nll": "state=paper: the student's NLL of the validation references at the window's end",
    "ctrl_teacher_logp": "reward=paper, lambda_gt > 0: G, the teacher's mean per-token log-prob of the "
                         "validation references at r_k, measured at window k's end",
    "ctrl_progress": "learning progress P_k at the window's end (controller.progress; higher is better)",
    "ctrl_delta": "P_k - P_(k-1) (null when P_(k-1) is undefined: train_loss progress, window 0)",
    "ctrl_credited": "decision whose reward was credited at this window (k - W + 1), if any",
    "ctrl_reward": "R = sum_{j<W} gamma^j delta_(credited+j) of that decision, if any "
                   "(reward=paper: ctrl_reward_drops + ctrl_reward_gt)",
    "ctrl_reward_snr": "the rewards' SNR so far: sd of the exposure part of a least-squares fit "
                       "R ~ 1 + k + r + r^2 over the credited decisions / its residual sd (null before "
                       "6; harness/sources/reinforce.py reward_snr)",
    "ctrl_reward_used": "controller.shuffle_rewards: the (permuted) reward the update used",
    "ctrl_reward_drops": "reward=paper: sum_{j=1..L} gamma^(j-1) max(0, l_(j-1) - l_j) over the "
                         "credited decision's lookahead (drops inside one window only)",
    "ctrl_reward_gt": "reward=paper: lambda_gt * G of the credited decision",
    "ctrl_baseline": "EMA reward baseline after the update (null before the first reward); "
                     "advantage=normalised: mean of the reward buffer",
    "ctrl_policy_loss": "REINFORCE loss of the update, if any",
    "ctrl_advantage": "advantage of the credited decision (R - baseline, or normalised)",
    "ctrl_policy_entropy": "mean differential entropy of pi(. | s) at the credited states, before the update",
    "ctrl_logp_drift": "mean |log pi_now(r | s) - log pi_then(r | s)|: how far the policy moved "
                       "between drawing the credited r and its update",
    "ctrl_is_weight": "controller.importance_clip: mean weight min(pi_now / pi_then, c) of the update",
    "ctrl_seconds": "wall time of measuring P and updating the policy",
    # source=target_mismatch: one row per decision (step 1 and every target_mismatch.hold steps)
    "tm_target": "target_mismatch: the target KL(S||T) at this step (kl, or the kl -> kl_end schedule)",
    "tm_r": "target_mismatch: the exposure chosen for the next window",
    "tm_predicted": "target_mismatch: the monotone fit of the latest probe curve at tm_r",
    "tm_realised": "target_mismatch: mean mismatch_kl_st of the train rows since the last decision "
                   "(null at the first)",
    "tm_reason": "target_mismatch: why this r (interpolated, an end of the curve, a flat curve "
                 "kept the r in force, a non-monotone curve fitted)",
}
EVAL_JSON = {
    "suites": "{suite: {average, se, k, num_problems, pass@1, pass@4, pass@k}}",
    "k": "samples per problem", "temperature": "sampling temperature",
    "exposure": "null: student prompt (no reference)",
    "seconds": "wall time of the evaluation",
    "backend": "the sampler: hf (transformers generate) or vllm (eval.backend)",
    "sampling": "every setting the samples depend on: k, temperature, top_p, top_k, max_new_tokens, "
                "max_model_len, seed, backend, thinking, batch_size, exposure",
    "resumed_batches": "sampling batches taken from an interrupted attempt's eval_progress.jsonl "
                       "(0: sampled in one go; harness/evaluation/progress.py); several processes: "
                       "from every rank's log",
    "world_size": "processes that sampled it: each drew its share, rank 0 graded "
                  "(harness/evaluation/shards.py)",
}
VAL_JSON = {  # only with eval.validation=true (make tune's objective, harness/tune/study.py)
    "suites": "{validation: {average, se, k, num_problems, pass@...}}: the task's validation "
              "problems (task.val_size), sampled as eval.json's suites",
    "k": "samples per problem", "temperature": "sampling temperature",
    "exposure": "null: student prompt (no reference)", "seconds": "wall time of the evaluation",
    "backend": "the sampler", "sampling": "as eval.json's", "resumed_batches": "as eval.json's",
    "world_size": "as eval.json's",
}
STATUS_JSON = {
    "state": "running, done or failed (a folder left 'running' by a dead process is resumed "
             "by the next launch)",
    "reason": "why it failed, one line (e.g. 'NonFiniteError: non-finite loss at step 2: nan')",
    "updated": "time of the last change", "host": "machine of the last start", "pid": "its process",
    "starts": "how many times training started in this folder (1 + resumes)",
    "suites": "done: Average@k per suite", "traceback": "failed: the end of the traceback",
    "identity": "the run's identity (harness/runs/identity.py)",
    "world_size": "processes that trained it (a resume at another world size is refused)",
    "failed_rank": "several processes: the rank whose failure ended the run (harness/compute/failfast.py)",
    "failed_host": "that rank's machine",
}
EVAL_SAMPLE = {
    "suite": "suite name", "problem_id": "stable problem id", "sample": "sample index 0..k-1",
    "answer": "extracted answer (null if none)", "gold": "reference answer",
    "correct": "graded correct", "completion": "the sampled text",
}


def as_markdown() -> str:
    out = []
    for title, table in [("metrics.jsonl train row", TRAIN_ROW), ("probe row", PROBE_ROW),
                         ("controller row", CONTROLLER_ROW), ("exposure row", EXPOSURE_ROW),
                         ("eval row", EVAL_ROW), ("eval.json", EVAL_JSON), ("val.json", VAL_JSON),
                         ("eval_samples.jsonl", EVAL_SAMPLE), ("status.json", STATUS_JSON)]:
        out += [f"### {title}", "", "| key | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in table.items()] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    print(as_markdown())


ROWS = {"train": TRAIN_ROW, "probe": PROBE_ROW, "controller": CONTROLLER_ROW,
        "exposure": EXPOSURE_ROW, "eval": EVAL_ROW}


def undocumented(row: dict) -> set[str]:
    """Keys of one metrics.jsonl row that its kind's table does not document (eval rows'
    per-suite keys are `eval_<suite>`)."""
    table = ROWS.get(row.get("kind", ""), {})
    return {k for k in row if k not in table and not (row.get("kind") == "eval" and k.startswith("eval_"))}
