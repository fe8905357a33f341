"""When the compiled kernels (``dedup.kernels``) run instead of their numpy twins.

Why a gate: loading numba and the cached machine code costs ~0.5 s per process, more than
a small job spends in the loops it speeds up. So a process loads the kernels on the first
call with enough work to repay that, and uses them for every call after. Without numba, or
with ``DEDUP_JIT=0`` in the environment, the numpy code runs; both give the same values.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# Inner-loop steps (say, shingles x permutations) from which a call loads the kernels:
# about 0.3 s of the numpy code's time, against ~0.5 s to load them.
MIN_WORK = 1 << 28

_kernels: ModuleType | None = None
_unavailable = False


def kernels(work: int) -> ModuleType | None:
    """``dedup.kernels`` if loaded, or loaded now because ``work`` repays it; else None."""
    global _kernels, _unavailable
    if _kernels is not None:
        return _kernels
    if _unavailable or work < MIN_WORK:
        return None
    if os.environ.get("DEDUP_JIT", "1") == "0":
        _unavailable = True
        return None
    try:
        _kernels = importlib.import_module("dedup.kernels")
    except ImportError:  # numba missing or broken for this Python: the numpy code runs
        _unavailable = True
    return _kernels
