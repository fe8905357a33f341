"""Submitting tasks on one Dask client: futures, picks from results, and shuffles.

Dask is optional: ``distributed`` is imported only when a function here runs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl

from dedup.config import Config
from dedup.timing import StageTimer
from dedup.tuning import DaskTuning

__all__ = ["INSTALL_HINT", "DaskEngineError", "Run", "connect", "distributed", "in_memory_parts"]

INSTALL_HINT = "the dask engine needs dask.distributed: pip install 'dedup[dask]'"


class DaskEngineError(RuntimeError):
    """The cluster could not finish the run (workers died, scheduler lost); nothing written."""


def distributed() -> Any:
    """The ``distributed`` module, or a clear error naming the extra to install."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return distributed


def pick(value: Any, name: str | None, index: int | None) -> Any:
    """``value.name[index]`` (either part optional): one task takes one field of a record."""
    if name is not None:
        value = getattr(value, name)
    return value if index is None else value[index]


class Run(StageTimer):
    """Submits the stages on one client and keeps the futures a recomputation needs."""

    def __init__(self, client: Any, config: Config, tuning: DaskTuning) -> None:
        super().__init__()
        self.client = client
        self.config = config
        self.tuning = tuning

    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def submit(self, func: Any, *args: Any) -> Any:
        # The scheduler keeps each task's lineage while a dependent is wanted, so results a
        # dead worker held are recomputed; the client needs to hold no extra futures.
        return self.client.submit(func, *args, pure=False)

    def pick(self, future: Any, name: str | None = None, index: int | None = None) -> Any:
        """A future of ``result.name[index]``."""
        return self.submit(pick, future, name, index)

    def shuffle(self, sources: Sequence[Any], buckets: int,
                name: str | None = None) -> list[list[Any]]:
        """``out[b]`` = slice ``b`` of every source (of its field ``name``, if given): the
        all-to-all step, one small task per (source, bucket) so each bucket fetches only
        its own slices.

        Submitted source by source: Dask runs tasks in submission order, so a source
        spilled to disk is read back once for all its slices, not once per slice.
        """
        items = [[self.pick(s, name, b) for b in range(buckets)] for s in sources]
        return [[row[b] for row in items] for b in range(buckets)]

    def wait(self, futures: Iterable[Any]) -> None:
        distributed().wait(list(futures))

    def gather(self, futures: Any) -> Any:
        return self.client.gather(futures)


def in_memory_parts(run: Run, frame: pl.DataFrame, partitions: int) -> list[Any]:
    """Slices of an in-memory frame, shipped inside their tasks so a lost worker's copy is
    recomputed from the task rather than lost (as scattered data would be)."""
    bounds = np.linspace(0, frame.height, partitions + 1).round().astype(int)
    return [run.submit(_own, frame.slice(int(a), int(b - a)))
            for a, b in itertools.pairwise(bounds)]


def _own(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


@contextmanager
def connect(client: Any, scheduler: str | None) -> Iterator[Any]:
    """The caller's client, one connected to ``scheduler``, or a LocalCluster of this machine."""
    module = distributed()
    if client is not None:
        yield client
        return
    if scheduler is not None:
        with module.Client(scheduler) as connected:
            yield connected
        return
    workers = max(1, os.cpu_count() or 1)
    with (
        module.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None) as local,
        module.Client(local) as connected,
    ):
        yield connected
