"""Tasks: the embedded synthetic reasoning task, local math datasets and graders.

python -c "from harness.tasks import synthetic; print(synthetic.make_suite('medium_k4', 3, seed=0))"
"""
