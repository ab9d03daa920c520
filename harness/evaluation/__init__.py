"""Average@k evaluation: sampling k completions per problem, grading, standard errors and
the unbiased pass@k estimator.

python -m harness.evaluate --help

Owns: the evaluation formulas and sampling. May import: harness.config, harness.tasks,
harness.compute, harness.prompts.
"""
