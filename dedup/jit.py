"""When the compiled kernels (``dedup.kernels``) run instead of their numpy twins.

Why a gate: loading numba and the cached machine code costs ~0.5 s per process, more than
a small job spends in the loops it speeds up. So each process counts the work its numpy
loops have done, and loads the kernels once that reaches what a load costs: a small job,
the CLI on a few files or a feed's small batches, never pays for it; a worker that goes on
normalizing chunks of a large corpus pays it after its first chunk. Without numba, or with
``DEDUP_JIT=0`` in the environment, the numpy code runs; both give the same values.

The policy (``JitPolicy``) is a record, and the process's counter lives in one ``Gate``;
``using(policy)`` runs a block under another policy with a fresh counter (tests compare
the kernels with numpy this way), then puts the process's gate back.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

__all__ = ["MIN_WORK", "NEVER", "Gate", "JitPolicy", "kernels", "using"]

# Work done by the numpy code, in its nanoseconds (callers estimate them: a MinHash cell is
# about one), from which a process loads the kernels: ~0.3 s, against ~0.5 s to load them.
MIN_WORK = 1 << 28
NEVER = 1 << 62  # more work than any process does: the numpy code always runs


@dataclass(frozen=True, slots=True)
class JitPolicy:
    """When a process loads the kernels: after ``min_work`` nanoseconds of numpy work
    (0: at once; ``NEVER``: never), unless ``DEDUP_JIT=0`` is set."""

    min_work: int = MIN_WORK


class Gate:
    """One process's counter of numpy work, and the kernels once loaded."""

    def __init__(self, policy: JitPolicy | None = None) -> None:
        self.policy = policy or JitPolicy()
        self.loaded: ModuleType | None = None
        self.unavailable = False
        self.spent = 0  # work done by the numpy code so far

    def kernels(self, work: int) -> ModuleType | None:
        """``dedup.kernels`` for a call that would cost the numpy code ``work``: once
        loaded, or loaded now because the numpy loops have done the policy's
        ``min_work`` with it; else None."""
        if self.loaded is not None:
            return self.loaded
        self.spent += work
        if self.unavailable or self.spent < self.policy.min_work:
            return None
        if os.environ.get("DEDUP_JIT", "1") == "0":
            self.unavailable = True
            return None
        try:
            self.loaded = importlib.import_module("dedup.kernels")
        except ImportError:  # numba missing or broken for this Python: the numpy code runs
            self.unavailable = True
        return self.loaded


_gate = Gate()


def kernels(work: int) -> ModuleType | None:
    """``Gate.kernels`` of this process's gate."""
    return _gate.kernels(work)


@contextmanager
def using(policy: JitPolicy) -> Iterator[Gate]:
    """Run a block under ``policy`` with a fresh counter; the process's gate comes back
    after it."""
    global _gate
    saved, _gate = _gate, Gate(policy)
    try:
        yield _gate
    finally:
        _gate = saved
