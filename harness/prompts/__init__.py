"""Every prompt the harness writes and the exposure cut of the reference.

python -c "from harness.prompts.cut import cut_tokens; print(cut_tokens(list(range(10)), 0.25))"

Owns: templates and the cut. May import: harness.config, harness.tasks.
"""
