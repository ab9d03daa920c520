"""Exposure sources: where the teacher's exposure r comes from (fixed, schedule, random,
the ATESD controller, none), one registered module each, and the multi-process wrapper.

python -m harness.run source=atesd profile=smoke

Owns: the ExposureSource interface (base.py), each source, ATESD's policy and rewards.
May import: harness.config, harness.registry, harness.compute, harness.losses (the probe
NLL), harness.evaluation (learning progress), harness.prompts, harness.tasks.
"""
