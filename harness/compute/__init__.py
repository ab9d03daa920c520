"""Where and how a run computes: device and precision, torch.distributed ranks, the
environment guard, and vLLM (the GPU-only sampler).

python -c "from harness.compute.device import choose; print(choose('auto'))"

Owns: devices and processes. May import: harness.config.
"""
