"""`make bench`: every performance target of harness/DESIGN.md, each a ratio measured side by side.

python -m harness.bench [--only step,probe,memory,eval,parallel] [--rounds N] [--quick] [overrides]

One module per benchmark (step, probe, memory, eval_speed, parallel), the runner in
harness/bench/runner.py, the shared timing and result records in timing.py and record.py.
"""
