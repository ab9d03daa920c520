"""What the student learns: the per-token divergences, the block-wise (chunked) divergence
on final hidden states, and the student-side losses on top of GRPO (AntiSD, SDAR).

python -m pytest -q tests/test_formulas.py tests/test_chunked.py

Owns: every loss formula. May import: torch, harness.config.
"""
