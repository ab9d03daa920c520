"""The two TRL trainers of a run (OPSD on SDFTTrainer; GRPO, AntiSD, SDAR on GRPOTrainer),
what they share, the mismatch probe, periodic evaluation and trackers.

python -m harness.run method=opsd exposure=0.5 profile=smoke

Owns: training steps and their metrics rows. May import: harness.config, harness.sources
(the interface), harness.losses, harness.prompts, harness.compute, harness.runs,
harness.evaluation, harness.tasks, harness.models.
"""
