"""How the Dask engine's pair-scoring shuffle grows with the number of partitions.

    python -m benchmarks.pair_spread --docs 100000 --partitions 1,10,100,1000,10000

The Dask engine scores a candidate pair in the partition of its higher-numbered article and
ships the lower one's TF-IDF row there, once per destination partition
(``engine_dask.scoring.left_rows``). So the rows shipped per article are the number of distinct
partitions its higher-numbered partners fall in: small with few partitions, and bounded by
the candidates per article with many. This runs the local engine (no stories) for the
candidate pairs, then counts, for contiguous partitions cut as the engine cuts them, the
rows shipped per article and the share of pairs whose two articles lie in
different partitions. It explains why shuffle per article grows from 10 to 100 partitions
and where it stops growing (``docs/scaling.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.dask_bench import CACHE_DIR, corpus
from dedup import cluster
from dedup.engine_dask.routing import owner


def spread(pairs: np.ndarray, n: int, partitions: int) -> tuple[float, float, float]:
    """Per article: rows shipped, rows shipped to another partition; and the share of
    pairs that cross partitions. Partitions are cut as ``engine_dask`` cuts a frame."""
    offsets = np.linspace(0, n, partitions + 1).round().astype(np.int64)
    low, high = pairs.min(axis=1).astype(np.int64), pairs.max(axis=1).astype(np.int64)
    dest = owner(high, offsets)
    away = owner(low, offsets) != dest
    shipped = len(np.unique(low * partitions + dest))
    remote = len(np.unique(low[away] * partitions + dest[away]))
    crossing = float(np.mean(away)) if len(pairs) else 0.0
    return shipped / n, remote / n, crossing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic articles")
    parser.add_argument("--partitions", default="1,10,100,1000,10000",
                        help="partition counts, comma-separated")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    frame = pl.read_parquet(corpus(args.docs, args.seed, args.cache_dir))
    frame = frame.drop("gold", "hard_negative_of")  # as dask_bench.run_local
    result = cluster(frame, with_stories=False, workers=1)
    pairs = np.asarray(result.pairs).reshape(-1, 2)
    n = frame.height
    print(f"{n:,} articles, {len(pairs):,} candidate pairs ({len(pairs) / n:.2f} per article)")
    print("| partitions | articles per partition | rows shipped per article "
          "| of them to another partition | pairs crossing partitions |")
    print("|---|---|---|---|---|")
    for p in (int(x) for x in args.partitions.split(",")):
        shipped, remote, crossing = spread(pairs, n, p)
        print(f"| {p:,} | {n / p:,.0f} | {shipped:.2f} | {remote:.2f} | {crossing:.2f} |")


if __name__ == "__main__":
    main()
