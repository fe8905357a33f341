"""Runtime knobs: how work is cut into chunks and tasks, never what the result is.

Why a module of its own: these sizes bound memory and balance workers; changing any of
them leaves every output byte-identical (tests/test_parallel.py, tests/test_dask.py). They
used to be module globals that tests overwrote by hand; now a driver takes them as a
frozen record (``cluster(..., tuning=BatchTuning(...))``, ``cluster_dask(...,
tuning=DaskTuning(...))``), and ``Config`` keeps only what changes results.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BatchTuning", "DaskTuning", "LshBuffers"]


@dataclass(frozen=True, slots=True)
class LshBuffers:
    """How much ``candidates.lsh_pairs`` holds at once; the pairs are the same at any size.

    Pair codes are buffered before they are folded into the running counts, which bounds
    memory at a few bands' worth instead of every band's codes at once (163 codes per
    article on the synthetic corpus, most of them one-band coincidences); directed pair
    entries (~45 bytes each) are ranked for ``max_per_doc`` a range of documents at a time.
    """

    codes_per_doc: int = 16
    rank_per_doc: int = 8
    minimum: int = 1 << 20  # entries: below this, buffering costs more than it saves


@dataclass(frozen=True, slots=True)
class BatchTuning:
    """Chunk and task sizes of the batch pipeline (``dedup.cluster``)."""

    chunk: int = 5_000  # articles normalized at once: bounds the memory of token lists
    # Threads that group LSH bands: each holds a band's sort temporaries (~50 MB at a
    # million articles), and two already halve the band time.
    lsh_threads: int = 4
    lsh_buffers: LshBuffers = LshBuffers()
    merge_task_articles: int = 2_000  # articles per merge task sent to a worker process
    text_task_articles: int = 1_000  # articles per task cleaning texts ahead of the merge
    link_task_articles: int = 5_000  # articles of components per linkage task
    score_task_pairs: int = 50_000  # candidate pairs per scoring task
    # From this many articles, workers are stopped while the single-process stages run:
    # their ~300 MB each matters at the peak of a million-article run, while restarting
    # them for the merge costs ~2.4 s (measured at 20k), which matters on small runs.
    stop_idle_workers_from: int = 200_000


@dataclass(frozen=True, slots=True)
class DaskTuning:
    """Partition, chunk and wave sizes of the Dask engine (``cluster_dask``)."""

    # Articles per partition when the caller does not say: big enough that per-task
    # overhead (milliseconds) is noise, small enough that a partition's features fit a
    # 2 GB worker. Measured to fit 4 GB workers at 100k; 50,000 did not.
    partition_rows: int = 10_000
    chunk: int = 5_000  # articles normalized at once inside a partition (bounds token lists)
    # Candidate pairs scored at once per worker. Each pair ships its left article's feature
    # row (about 1 KB on news text) to the right article's partition; all at once, a
    # million articles' 13.6M pairs overflowed two 4 GB workers.
    wave_pairs_per_worker: int = 500_000
