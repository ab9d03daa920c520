"""Keep accelerate from rewriting the C environment while other threads may read it.

python -c "import harness.compute.envsafe as e; e.install(); print('installed')"

accelerate's `KwargsHandler.to_kwargs` (called twice whenever a TRL trainer builds its
Accelerator) wraps a default-constructor call in `clear_environment()`, which unsets
every variable and sets them all again through libc. glibc's getenv is not safe
against a concurrent setenv/unsetenv (the environ array is reallocated under the
reader), and by then torch, pyarrow's jemalloc and tqdm have started threads: we saw
a run die with SIGSEGV in libc getenv (dmesg) right at trainer construction, with no
Python traceback and status.json stuck at "running". The replacement below hides the
environment from Python code only - which is all `to_kwargs` needs (the dataclass
defaults read os.environ) - and never touches the C environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def python_only_clear_environment() -> Iterator[None]:
    """os.environ (and os.getenv) look empty inside the block; writes there are dropped."""
    saved = os.environ
    # Rebinding, not clearing, is the point (B003): os.getenv reads this same module global.
    os.environ = {}  # type: ignore[assignment]  # noqa: B003
    try:
        yield
    finally:
        os.environ = saved  # noqa: B003


def install() -> None:
    """Swap accelerate's clear_environment for the Python-only one (idempotent)."""
    import accelerate.utils.environment as acc_env

    # to_kwargs imports clear_environment from this module at call time: patching the
    # module attribute is enough.
    acc_env.clear_environment = python_only_clear_environment
