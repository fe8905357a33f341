"""Run one system on one corpus and measure it: stage seconds, throughput, peak memory, quality.

Memory is the honest part. All systems share the corpus, so what we report is the *peak
RSS increase while the system runs* over the RSS just before it starts (corpus already
loaded, libraries imported, ``gc.collect()`` done). Two ways to run:

- ``isolate=True`` (the default of the CLIs): each system runs in a fresh ``spawn``ed
  process that loads the corpus itself, so one system's leftovers (freed but not returned
  to the OS) cannot hide or inflate another's. The peak is exact: the kernel's high-water
  mark (``ru_maxrss``) if it rose during the run, else the highest sampled RSS.
- ``isolate=False`` (tests, quick looks): same process, RSS sampled every 5 ms by a
  background thread; allocations that live shorter than that can be missed, and memory
  held over from an earlier system lowers the figure.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.corpora import ECBPLUS_DEV, Corpus, ParquetArticles, load_ecbplus_dev
from benchmarks.systems import DESCRIPTIONS, SYSTEMS, NotAvailable

MIB = 1024 * 1024


@dataclass(frozen=True)
class CorpusSpec:
    """How a (child) process finds the corpus: ECB+ dev, or a synthetic Parquet file."""

    name: str
    parquet: str | None = None

    def load(self) -> Corpus:
        if self.name == ECBPLUS_DEV:
            return load_ecbplus_dev()
        if self.parquet is None:
            raise ValueError(f"corpus {self.name!r} needs a Parquet path")
        from benchmarks.synthetic_files import read_parquet

        return read_parquet(Path(self.parquet))


@dataclass
class Measurement:
    """One row of the results table."""

    system: str
    description: str
    status: str  # "ok", "not available: ...", "error: ..."
    docs: int = 0
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    bcubed_f1: float | None = None
    ari: float | None = None
    clusters: int | None = None
    candidate_pairs: int | None = None
    # Share of gold same-event pairs that the candidate step proposes directly.
    candidate_recall: float | None = None
    # Gold events of at least ``BIG_EVENT`` articles, and the lowest pair recall among them
    # (#18: the big stories are where a feed needs recall most, and F1 hides them).
    big_events: int | None = None
    big_event_recall: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    docs_per_second: float | None = None
    peak_rss_increase_mib: float | None = None
    peak_rss_mib: float | None = None
    memory_method: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RssSampler:
    """Background thread that records the highest RSS of this process and its children.

    Children count because ``dedup`` normalizes and merges in worker processes: their
    memory is part of what a run costs. Listing the process tree scans all of /proc
    (~1 ms of CPU, holding the GIL): done at every 5 ms sample it took a fifth of a core
    from the run it measured, so the tree is listed every ``rescan`` seconds and only the
    known processes' RSS (~0.01 ms each) is read at every sample.
    """

    def __init__(self, interval: float = 0.005, rescan: float = 0.2) -> None:
        self.interval = interval
        self.rescan = rescan
        self.process = psutil.Process()
        self.baseline = 0
        self.peak = 0
        self._children: list[psutil.Process] = []
        self._listed = -math.inf
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def _tree_rss(self, rescan: bool = False) -> int:
        now = time.monotonic()
        if rescan or now - self._listed >= self.rescan:
            self._children = self.process.children(recursive=True)
            self._listed = now
        total = self.process.memory_info().rss
        for child in self._children:
            with contextlib.suppress(psutil.Error):  # it has ended since it was listed
                total += child.memory_info().rss
        return total

    def __enter__(self) -> RssSampler:
        gc.collect()
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._tree_rss(rescan=True))


def _max_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


BIG_EVENT = 300


def big_event_recall(gold: Sequence[Hashable], predicted: Sequence[Hashable],
                     size: int = BIG_EVENT) -> tuple[int, float | None]:
    """(gold events with at least ``size`` articles, the lowest pair recall among them):
    the share of an event's same-event pairs that land in one predicted cluster."""
    by_gold: dict[str, list[str]] = {}
    for g, p in zip(gold, predicted, strict=True):
        by_gold.setdefault(str(g), []).append(str(p))
    recalls = []
    for labels in by_gold.values():
        n = len(labels)
        if n >= size:
            counts = np.unique(np.asarray(labels), return_counts=True)[1]
            recalls.append(float((counts * (counts - 1)).sum()) / (n * (n - 1)))
    return len(recalls), (min(recalls) if recalls else None)


def candidate_recall(gold: Sequence[Hashable], pairs: np.ndarray) -> float:
    """Gold same-event pairs among the candidates, over all gold same-event pairs."""
    labels = np.unique(np.asarray([str(g) for g in gold]), return_inverse=True)[1]
    sizes = np.bincount(labels)
    total = int((sizes * (sizes - 1) // 2).sum())
    if total == 0:
        return 1.0
    hits = int(np.sum(labels[pairs[:, 0]] == labels[pairs[:, 1]])) if len(pairs) else 0
    return hits / total


def measure(system: str, corpus: Corpus, isolated_process: bool = False) -> Measurement:
    """Run ``system`` on ``corpus`` in this process and fill in a ``Measurement``."""
    from dedup.evaluate import score

    row = Measurement(system, DESCRIPTIONS.get(system, system), "ok", docs=len(corpus.articles))
    run = SYSTEMS[system]
    if system != "dedup" and isinstance(corpus.articles, ParquetArticles):
        corpus.articles.load()  # baselines are timed from articles in memory, not the file
    high_water_before = _max_rss_bytes()
    try:
        with RssSampler() as sampler:
            t0 = time.perf_counter()
            result = run(corpus.articles)
            seconds = time.perf_counter() - t0
    except NotAvailable as exc:
        row.status = f"not available: {exc}"
        return row
    except Exception as exc:  # report, never hide: the table shows the error
        row.status = f"error: {type(exc).__name__}: {exc}"
        traceback.print_exc()
        return row
    high_water_after = _max_rss_bytes()
    if isolated_process and high_water_after > high_water_before:
        peak = max(high_water_after, sampler.peak)
        row.memory_method = "fresh process and its workers, max(ru_maxrss, sampled)"
    else:
        peak = sampler.peak
        row.memory_method = "fresh process, sampled" if isolated_process else "in-process, sampled"
    s = score(corpus.gold, result.labels)
    row.precision, row.recall, row.f1 = s.precision, s.recall, s.f1
    row.bcubed_f1, row.ari = s.bcubed_f1, s.ari
    row.clusters = len(set(result.labels))
    row.big_events, row.big_event_recall = big_event_recall(corpus.gold, result.labels)
    row.candidate_pairs = result.candidate_pairs
    if result.pairs is not None:
        row.candidate_recall = candidate_recall(corpus.gold, result.pairs)
    row.timings = {k: float(v) for k, v in result.timings.items()}
    row.seconds = seconds
    row.docs_per_second = len(corpus.articles) / seconds if seconds > 0 else None
    row.peak_rss_increase_mib = max(0, peak - sampler.baseline) / MIB
    row.peak_rss_mib = peak / MIB
    row.note = result.note
    return row


def _die_with_parent() -> None:
    """On Linux, ask the kernel to end this child if the parent dies (no orphaned runs)."""
    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes
        import signal

        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child(system: str, spec: CorpusSpec, conn: Any) -> None:
    _die_with_parent()
    try:
        corpus = spec.load()
        conn.send(measure(system, corpus, isolated_process=True).to_dict())
    except BaseException as exc:  # the parent must get an answer, whatever happened
        conn.send({"system": system, "status": f"error: {type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def measure_isolated(system: str, spec: CorpusSpec, timeout: float | None = None) -> Measurement:
    """Run ``system`` in a fresh spawned process (see module docstring for why)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    # Not daemonic: dedup starts worker processes of its own (the child still dies with
    # this process, see _die_with_parent).
    proc = ctx.Process(target=_child, args=(system, spec, child), daemon=False)
    proc.start()
    child.close()
    if parent.poll(timeout):
        try:
            data = parent.recv()
        except EOFError:  # the child died without a word (e.g. killed for memory)
            data = {"system": system, "status": "error: process died"}
    else:
        proc.kill()
        data = {"system": system, "status": f"error: timed out after {timeout} s"}
    proc.join()
    if "description" not in data:
        data = Measurement(system, DESCRIPTIONS.get(system, system), data["status"]).to_dict()
        if proc.exitcode not in (0, None):
            data["status"] += f" (exit code {proc.exitcode})"
    return Measurement(**data)


def describe_machine() -> dict[str, Any]:
    """Enough about the machine to read the timings by."""
    return {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
    }
