"""Models: the tiny Qwen3-architecture base of the embedded default (built, cached or
shipped), the Qwen3-shaped real-vocabulary test model, loading any model.

python -m harness.models.base          # what make base runs

Owns: model construction, the base recipe and its identity. May import: harness.config,
harness.compute, harness.tasks, harness.prompts, harness.evaluation.
"""
