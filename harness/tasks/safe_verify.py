"""math-verify in a worker process: safe from any thread or process, bounded time per sample.

python -c "from harness.tasks.safe_verify import verify_answer; print(verify_answer('1/2', '0.5'))"

math-verify's own timeout uses SIGALRM, which works only in a process's main thread
(it raises ValueError elsewhere: trainer callbacks, thread pools, Ray/vLLM workers).
Here every comparison runs in one long-lived spawned worker process, in that process's
main thread, so math-verify keeps its signal timeouts there; the caller also waits at
most `deadline_s` and, past it, kills the worker (a hung sympy call cannot be
interrupted any other way), starts a fresh one next time and counts the sample wrong.
Calls are serialised by a lock so one sample's deadline never includes another's work.
A daemonic process (which may not have children) verifies in-process: with signal
timeouts from its main thread, else without a time bound (the one unbounded case).
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from multiprocessing.pool import Pool

DEADLINE_S = 10.0  # per sample: parse gold + parse prediction + compare, worker included
PARSE_TIMEOUT_S = 3  # math-verify's own (signal) limits inside the worker
VERIFY_TIMEOUT_S = 3
STARTUP_S = 300.0  # starting the worker (spawn + imports) on a loaded machine

_lock = threading.Lock()
_pool: Pool | None = None


def _verify(gold: str, pred: str, signal_timeouts: bool) -> bool:
    """math-verify with gold first, as its docs require; unparsable input is wrong."""
    from math_verify import parse, verify  # slow import: real-math runs only

    parse_t, verify_t = (PARSE_TIMEOUT_S, VERIFY_TIMEOUT_S) if signal_timeouts else (None, None)
    try:
        gold_expr = parse(f"${gold}$", parsing_timeout=parse_t)
        pred_expr = parse(f"${pred}$", parsing_timeout=parse_t)
        return bool(verify(gold_expr, pred_expr, timeout_seconds=verify_t))
    except Exception:  # math-verify raises on unparsable input and on its own timeout
        return False


def _worker_verify(gold: str, pred: str) -> bool:
    return _verify(gold, pred, signal_timeouts=True)  # the worker's main thread: signals work


def _warm() -> None:
    import math_verify  # noqa: F401 - seconds of imports, outside any sample's deadline


def _get_pool() -> Pool:
    global _pool
    if _pool is None:
        # spawn, not fork: forking a process with live threads (torch, tokenizers) can deadlock.
        _pool = multiprocessing.get_context("spawn").Pool(processes=1)
        try:
            _pool.apply_async(_warm).get(timeout=STARTUP_S)  # start-up is not a sample's time
        except BaseException:
            _kill_pool()
            raise
    return _pool


def _kill_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.terminate()
        _pool.join()
        _pool = None


atexit.register(_kill_pool)


def verify_answer(gold: str, pred: str, deadline_s: float = DEADLINE_S) -> bool:
    """True when pred equals gold mathematically; False when not, unparsable or past the
    deadline. Safe to call from any thread."""
    if pred.strip() == gold.strip():  # the common case needs no parser (nor a worker)
        return True
    if multiprocessing.current_process().daemon:
        return _verify(gold, pred, threading.current_thread() is threading.main_thread())
    with _lock:
        result = _get_pool().apply_async(_worker_verify, (gold, pred))
        try:
            return bool(result.get(timeout=deadline_s))
        except multiprocessing.TimeoutError:
            _kill_pool()  # the worker may be stuck in sympy: only killing it frees it
            return False
