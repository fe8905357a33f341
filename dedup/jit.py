"""When the compiled kernels (``dedup.kernels``) run instead of their numpy twins.

Why a gate: loading numba and the cached machine code costs ~0.5 s per process, more than
a small job spends in the loops it speeds up. So each process counts the work its numpy
loops have done, and loads the kernels once that reaches what a load costs: a small job,
the CLI on a few files or a feed's small batches, never pays for it; a worker that goes on
normalizing chunks of a large corpus pays it after its first chunk. Without numba, or with
``DEDUP_JIT=0`` in the environment, the numpy code runs; both give the same values.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# Work done by the numpy code, in its nanoseconds (callers estimate them: a MinHash cell is
# about one), from which a process loads the kernels: ~0.3 s, against ~0.5 s to load them.
MIN_WORK = 1 << 28

_kernels: ModuleType | None = None
_unavailable = False
_spent = 0  # work done by the numpy code so far, in this process


def kernels(work: int) -> ModuleType | None:
    """``dedup.kernels`` for a call that would cost the numpy code ``work`` nanoseconds:
    once loaded, or loaded now because this process's numpy loops have done ``MIN_WORK``
    with it; else None."""
    global _kernels, _unavailable, _spent
    if _kernels is not None:
        return _kernels
    _spent += work
    if _unavailable or _spent < MIN_WORK:
        return None
    if os.environ.get("DEDUP_JIT", "1") == "0":
        _unavailable = True
        return None
    try:
        _kernels = importlib.import_module("dedup.kernels")
    except ImportError:  # numba missing or broken for this Python: the numpy code runs
        _unavailable = True
    return _kernels
