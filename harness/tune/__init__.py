"""make tune: an Optuna study of the fixed exposure r; every trial is a normal run of the
sweep engine.

python -m harness.tune --trials 20 -- profile=smoke

Owns: the study, its search space and its results. May import: harness.front, harness.runs,
harness.config.
"""
