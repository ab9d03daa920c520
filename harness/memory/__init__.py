"""Memory at real sizes: the memory plan of a run (refused before launch when it does not
fit) and its validation against measured peaks.

python -m harness.memory.plan experiment=paper_qwen3_8b launcher.gpu_mem_gb=80

Owns: memory models. May import: harness.config, harness.models, harness.trainers.
"""
