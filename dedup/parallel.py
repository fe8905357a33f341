"""Ordered map over worker processes: how the batch pipeline uses more than one core.

Normalization, linkage and merging work per article, per component or per cluster, mostly
in Python or in small numpy calls, so threads would share one core (the GIL). A process
pool does the same work in order, and since results come back in task order the output
is byte-identical whatever the number of workers. Whole-array numpy work (sorting a band
of signatures) releases the GIL, so ``thread_map`` spreads it over threads of this
process instead, with no copying between processes.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 means every available core; negative values are an error."""
    if workers is None or workers == 0:
        return available_cores()
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = every core), not {workers}")
    return workers


class WorkerDied(RuntimeError):
    """A worker process ended abruptly (killed, out of memory); nothing was written."""


class WorkerPool:
    """Processes shared by every stage of one run; with one worker, work runs inline.

    Workers are spawned, not forked, because polars and BLAS keep threads that a fork
    would copy in an unknown state. Like any spawn-based pool, a script that uses more
    than one worker must guard its entry point with ``if __name__ == "__main__":``.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._warned = False
        self._background: list[Background[Any, Any]] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the processes (their memory returns to the OS); ``map`` restarts them.
        Background runs stop first: none can start the processes again."""
        for background in list(self._background):
            background.stop()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def warm(self, func: Callable[[], object]) -> None:
        """Start the processes now, each running ``func`` (say, importing what later tasks
        need), without waiting: they get ready while this process works on something else.
        """
        if self.workers <= 1 or self._pool is not None or not self._may_start_processes():
            return
        self._pool = _process_pool(self.workers)
        for _ in range(self.workers):
            self._pool.submit(func)

    def _may_start_processes(self) -> bool:
        """False inside a daemonic process (a multiprocessing or Dask worker): those may
        not have children, so the work runs inline there, with a warning."""
        if not mp.current_process().daemon:
            return True
        if not self._warned:
            warnings.warn(
                f"dedup: {self.workers} workers requested inside a daemonic process, which "
                "cannot start worker processes; running on one core",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned = True
        return False

    def submit(self, func: Callable[[T], R], task: T) -> Future[R]:
        """``func(task)`` on a worker (there must be more than one), as a future."""
        if self.workers <= 1 or not self._may_start_processes():
            raise RuntimeError("submit needs worker processes: run it inline instead")
        if self._pool is None:
            self._pool = _process_pool(self.workers)
        return self._pool.submit(func, task)

    def map(
        self, func: Callable[[T], R], tasks: Iterable[T], *, parallel: bool = True,
        ahead: int = 2,
    ) -> Iterator[R]:
        """``map(func, tasks)``, results in task order, on the workers if ``parallel``.

        At most ``ahead`` tasks per worker are in flight, so memory stays bounded by a
        few tasks however long ``tasks`` is. ``func`` must be a module-level function
        (workers import it by name). The processes start on first use (~1 s each).
        """
        if self.workers <= 1 or not parallel or not self._may_start_processes():
            yield from map(func, tasks)
            return
        if self._pool is None:
            self._pool = _process_pool(self.workers)
        try:
            yield from _in_order(self._pool, func, tasks, self.workers * ahead)
        except BrokenProcessPool as err:
            raise WorkerDied(
                f"a dedup worker process died ({err}); this is usually the machine running "
                "out of memory: rerun with fewer workers (-j 1) or on a larger machine. In a "
                "script, it can also be a missing `if __name__ == \"__main__\":` guard "
                "around the call (each worker imports the script)"
            ) from None


class Background(Generic[T, R]):
    """Tasks run on a worker, one at a time and in order, while this process works alone.

    Why: between normalizing and merging, the pipeline's stages run mostly on one core, so
    the workers sit idle; work a later stage would do anyway can fill one of them. ``stop``
    returns the results of the tasks finished so far; the caller does the rest itself, so
    no result depends on how far this got. A task that fails ends the run quietly: the
    stage that needs its results computes them again and reports the error there.
    """

    def __init__(self, pool: WorkerPool, func: Callable[[T], R], tasks: Iterable[T]) -> None:
        self._results: list[R] = []
        self._stopped = False
        self._lock = threading.Lock()
        self._pool = pool
        pool._background.append(self)
        self._thread = threading.Thread(target=self._run, args=(func, iter(tasks)),
                                        name="dedup-background", daemon=True)
        self._thread.start()

    def _run(self, func: Callable[[T], R], tasks: Iterator[T]) -> None:
        for task in tasks:
            with self._lock:  # no task is submitted once ``stop`` has returned
                if self._stopped:
                    return
                try:
                    future = self._pool.submit(func, task)
                except Exception:  # see the class docstring
                    return
            try:
                result = future.result()
            except Exception:  # see the class docstring
                return
            with self._lock:
                if self._stopped:
                    return
                self._results.append(result)

    def stop(self) -> list[R]:
        """The results so far, in task order; no task starts after this."""
        with self._lock:
            self._stopped = True
            results = list(self._results)
        if self in self._pool._background:
            self._pool._background.remove(self)
        return results


def _process_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                               initializer=_start_worker)


# Allocations between young-generation collections in a worker (Python's default is 700).
_WORKER_GC_THRESHOLD = 10_000


def _start_worker() -> None:
    """Import the package, then exempt what the imports made from garbage collection and
    collect young objects less often.

    Why: normalizing and merging allocate millions of short-lived objects, which reference
    counting frees; the cyclic collector still ran every 700 allocations, and each older
    collection rescanned the ~130k objects numpy, scipy and polars create at import. On
    merge tasks it took 5% of the workers' time, 1% after this. Only worker processes,
    which are ours, are tuned: the caller's process keeps its settings.
    """
    import dedup  # noqa: F401  # every stage's modules, before freezing

    gc.collect()
    gc.freeze()
    gc.set_threshold(_WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


def guided_size(remaining: int, largest: int, workers: int) -> int:
    """Size of the next task when ``remaining`` items are left: ``largest`` while plenty
    remains, then a share of what is left ("guided" scheduling, at least a tenth of
    ``largest``).

    Why: with equal tasks, the last one often runs on one worker while the others idle;
    shrinking tasks near the end lets the workers finish together. How items are grouped
    into tasks never changes a result.
    """
    share = -(-remaining // (2 * max(workers, 1)))
    return max(1, min(remaining, largest, max(share, largest // 10)))


def thread_map(
    func: Callable[[T], R], tasks: Iterable[T], threads: int, *, ahead: int = 2
) -> Iterator[R]:
    """``map(func, tasks)`` on ``threads`` threads, results in task order.

    For tasks that spend their time in numpy calls that release the GIL (sorts, fancy
    indexing, ufuncs over large arrays); pure Python tasks would gain nothing. At most
    ``ahead`` tasks per thread are in flight, so memory stays bounded by a few results
    while the caller consumes them (and the caller's own work overlaps theirs).
    """
    if threads <= 1:
        yield from map(func, tasks)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="dedup") as executor:
        yield from _in_order(executor, func, tasks, threads * ahead)


def _in_order(
    executor: Executor, func: Callable[[T], R], tasks: Iterable[T], in_flight: int
) -> Iterator[R]:
    """Results of ``func`` over ``tasks`` in task order, with at most ``in_flight`` submitted
    and not yet taken; the rest are cancelled if the caller stops early."""
    pending: deque[Future[R]] = deque()
    try:
        for task in tasks:
            pending.append(executor.submit(func, task))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
