"""Wall seconds per named stage, and handing freed heap back to the OS between stages.

Every driver (the batch pipeline, its worker tasks, the Dask engine) times its stages with
``StageTimer`` so that the run summary names the same stages whichever engine ran.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StageTimer", "release_memory"]


class StageTimer:
    """Wall seconds per named stage, summed over every entry into the stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            release_memory()  # a stage's temporaries are freed: give their pages back
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def add(self, timings: dict[str, float]) -> None:
        """Add another timer's seconds (a worker's chunk) stage by stage."""
        for name, seconds in timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + seconds


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise).

    Normalizing a chunk allocates and frees millions of small strings; without this the
    process's RSS kept a large, growing share of them although Python had freed them.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # pragma: no cover - musl or an unusual libc
        return None


_LIBC = _load_libc()
