"""The policy test bed: exposure sources against a simulated student whose best r is known.

python -m harness.policybed [--seeds 10] [--cases high_easy,...] [--sources atesd,...]

cases.py    the simulated students (progress per step a known function of r and the state)
student.py  one simulated student: its dynamics and the signals a run would log
adapter.py  drives any ExposureSource step by step and feeds it what it reads
sources.py  the sources the bed runs, built from the real configs (sweeps/ablation/*.yaml)
oracle.py   the best fixed r and the best schedule, from the known function
runner.py   many seeds of every source: regret against the oracle, decisions to within 10%
meta.py     a controller trained across runs (controller.init_policy)
__main__.py the table
"""
