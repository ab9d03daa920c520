"""One run's folder: its contract (atomic files, status, metrics rows, eval files), the
schema of every logged key, the lock, checkpoints with the source's state, the reader.

python -c "from harness.runs.runinfo import read_run; help(read_run)"

Owns: what is on disk and how it is read back. May import: harness.config.
"""
