"""The synthetic corpus on disk: Parquet chunk by chunk, its differences as JSON lines.

    python -m benchmarks.synthetic --docs 1000000 -o synthetic-1m.parquet

(the generator itself is ``benchmarks.synthetic``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.corpora import ParquetArticles
from benchmarks.synthetic import (
    DEFAULT_CHUNK,
    DEFAULT_SEED,
    SyntheticCorpus,
    iter_synthetic,
)
from benchmarks.synthetic import __doc__ as GENERATOR_DOC


def write_parquet(
    path: Path,
    n_docs: int,
    seed: int = DEFAULT_SEED,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
    tail: bool = True,
) -> Path:
    """Write articles (+ a ``gold`` column) to Parquet chunk by chunk, and the differences to
    ``<path>.differences.jsonl``; both appear atomically (written beside, then renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("title", pa.string()),
            ("text", pa.large_string()),
            ("published", pa.timestamp("us")),
            ("source", pa.string()),
            ("gold", pa.string()),
            ("hard_negative_of", pa.string()),
        ]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    diff_path = differences_path(path)
    tmp, tmp_diff = path.with_name(path.name + ".tmp"), diff_path.with_name(diff_path.name + ".tmp")
    done = 0
    related: dict[str, str] = {}
    t0 = time.perf_counter()
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer, tmp_diff.open("w") as dfh:
        for chunk in iter_synthetic(n_docs, seed, chunk_size, tail=tail):
            cols: dict[str, list[Any]] = {
                k: [] for k in ("id", "title", "text", "published", "source")
            }
            for a in chunk.articles:
                for k in cols:
                    cols[k].append(a[k])
            cols["gold"] = chunk.gold
            related.update(chunk.hard_negatives)
            cols["hard_negative_of"] = [related.get(g) for g in chunk.gold]
            writer.write_table(pa.table(cols, schema=schema))
            for d in chunk.differences:
                dfh.write(json.dumps(d, ensure_ascii=False) + "\n")
            done += len(chunk.articles)
            if progress:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                print(
                    f"  synthetic: {done:,}/{n_docs:,} articles ({rate:,.0f}/s)",
                    file=sys.stderr,
                    flush=True,
                )
    tmp.replace(path)
    tmp_diff.replace(diff_path)
    return path


def differences_path(parquet_path: Path) -> Path:
    """Where ``write_parquet`` puts the differences that go with a Parquet file."""
    return Path(parquet_path).with_suffix(".differences.jsonl")


def read_parquet(path: Path, with_differences: bool = False) -> SyntheticCorpus:
    """Load a corpus written by ``write_parquet`` (differences only if asked: they are big)."""
    import polars as pl

    names = pl.read_parquet_schema(path)
    df = pl.read_parquet(path, columns=[str(c) for c in ("gold", "hard_negative_of") if c in names])
    gold = df["gold"].to_list()
    present = set(gold)
    related: dict[str, str] = {}
    if "hard_negative_of" in df.columns:
        pairs = zip(gold, df["hard_negative_of"].to_list(), strict=True)
        related = {g: r for g, r in pairs if r is not None and r in present}
    articles = ParquetArticles(path, len(gold), drop=("gold", "hard_negative_of"))
    differences: list[dict[str, Any]] = []
    if with_differences:
        with differences_path(path).open(encoding="utf-8") as fh:
            differences = [json.loads(line) for line in fh]
    return SyntheticCorpus("synthetic", articles, gold, differences, hard_negatives=related)


def main(argv: list[str] | None = None) -> None:
    """CLI: write a synthetic corpus to Parquet (plus its differences as JSONL)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic",
        description=GENERATOR_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--docs", type=int, default=10_000, help="number of articles")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("-o", "--output", type=Path, required=True, help="Parquet file to write")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--no-tail", action="store_true",
                        help="no big events: the corpus of generator version 2")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    write_parquet(args.output, args.docs, args.seed, args.chunk_size, progress=True,
                  tail=not args.no_tail)
    print(
        f"wrote {args.docs:,} articles to {args.output} and differences to "
        f"{differences_path(args.output)} in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
