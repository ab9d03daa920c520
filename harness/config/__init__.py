"""Config schemas and their composition: the dataclasses every key's default lives in,
Hydra's ConfigStore registration and composition outside a Hydra app.

python -c "from harness.config.schema import RunConfig; help(RunConfig)"

Owns: key defaults, help text, range checks, the one-line ConfigError. May import:
harness.registry, harness.prompts.cut (the exposure range check), omegaconf/hydra.
"""
