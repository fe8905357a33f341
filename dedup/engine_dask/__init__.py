"""The batch clustering of ``pipeline.cluster`` on a Dask cluster, partition by partition.

Why: one machine tops out near a few million articles (DESIGN.md, "Scale"). Here every
stage runs where its partition of articles lives, and what must meet (template lines,
document frequencies, LSH buckets, pair partners, graph components) meets through
hash-partitioned shuffles of small numpy arrays; no step pulls the articles into the
client. The result is the local engine's result, byte for byte: the same clusters, ids,
canonical articles, similarities and stories for any number of partitions or workers
(tests/test_dask.py proves it), because

- documents keep their local index: partition order, then row order inside a partition;
- TF-IDF rows are row-local once document frequencies are summed (``refine.weigh``);
- LSH buckets are grouped exactly (``candidates.bucket_pairs`` on band + key rows, so a
  hash only decides *where* a bucket is grouped, never *whether* two keys are equal);
- a pair's score is ``refine.pair_scores`` on the pair's two rows, whichever partitions
  hold them, and linkage sees a component's rows in index order, as the local engine does.

The engine keeps only partitioning, shuffles and the assembly of outputs; every value
comes from the batch stage functions (``prepare``, ``copies``, ``candidates``, ``refine``,
``clustering``, ``merge``, ``assemble``). Its modules:

- ``driver``: ``cluster_dask``, the stages in order, writing or gathering the outputs;
- ``runner``: the client, task submission, picks from results and shuffles;
- ``reading``: the input plan and reading on the workers, duplicate ids across partitions;
- ``stages``: per-partition normalization, features and candidate tasks;
- ``scoring``: candidate pairs scored where their right document lives, in waves;
- ``components``: connected components by label propagation;
- ``linkage``: linkage, canonical members and stories of whole components;
- ``records``: the typed records tasks hand each other; ``routing``: stable hashes.

Dask is optional: this package imports it only when a function here runs.

Example:
    >>> from dedup.engine_dask import cluster_dataset
    >>> result = cluster_dataset("articles/*.parquet", scheduler="tcp://10.0.0.5:8786")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from dedup import refine
from dedup.engine_dask import records
from dedup.engine_dask.driver import cluster_dask, cluster_dataset, dedupe_dask
from dedup.engine_dask.runner import INSTALL_HINT, DaskEngineError
from dedup.tuning import DaskTuning

__all__ = ["DEFAULT_PARTITION_ROWS", "INSTALL_HINT", "DaskEngineError", "DaskTuning",
           "cluster_dask", "cluster_dataset", "dedupe_dask", "register_sizes"]

# Articles per partition when the caller does not say (``DaskTuning.partition_rows``).
DEFAULT_PARTITION_ROWS = DaskTuning().partition_rows


def register_sizes(sizeof: Any) -> None:
    """Teach Dask the size of what the stages hold (the ``dask.sizeof`` entry point).

    Dask measures a stored result with ``dask.sizeof``. It does not know polars frames or
    dataclasses and takes them for ~100 bytes. Then a worker's partitions look like
    unmanaged memory: Dask never spills them to disk, and the nanny kills the worker
    when it reaches its limit. Dask calls this when it loads ``dask.sizeof``, in every
    process, so importing this package never imports Dask.
    """

    @sizeof.register(pl.DataFrame)
    def _frame(frame: pl.DataFrame) -> int:
        return int(frame.estimated_size())

    def _fields(value: Any) -> int:
        return 64 + sum(int(sizeof(getattr(value, f.name))) for f in dataclasses.fields(value))

    kinds = [getattr(records, name) for name in records.__all__]
    for kind in (*kinds, refine.Features, refine.Counts, refine.Salient):
        sizeof.register(kind)(_fields)
