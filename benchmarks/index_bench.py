"""StoryIndex throughput: add a synthetic feed in batches to a growing index, on one core.

Reports adds per second around 10k, 50k and 100k indexed articles (the batches that end
in each window), p50/p99 batch latency, database size on disk and reopen time, as one
table. Articles come from ``benchmarks.synthetic`` (deterministic, seed 13).

    python -m benchmarks.index_bench --docs 100000 --batch 100

Stories are merged lazily (``story_refresh="read"``, the default), so the figures are
placement throughput; ``--story-refresh add`` measures merging inside each add.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.synthetic import iter_synthetic
from dedup.config import IndexConfig
from dedup.index import StoryIndex

MARKS = (10_000, 50_000, 100_000)
WINDOW = 0.1  # a mark's rate is measured over the batches ending in the last 10% before it


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def run(docs: int, batch: int, refresh: str, folder: Path) -> list[tuple[str, str]]:
    """Add ``docs`` articles in batches; return the table rows (label, value)."""
    path = folder / "bench.db"
    latencies: list[tuple[int, float]] = []  # (articles indexed after the batch, seconds)
    cpu: list[float] = []  # CPU seconds of this process per batch (robust to a busy machine)
    config = IndexConfig(story_refresh=refresh)
    started = time.perf_counter()
    with StoryIndex.open(path, index_config=config) as index:
        total = 0
        for chunk in iter_synthetic(docs, chunk_size=max(batch, 1000)):
            for start in range(0, len(chunk.articles), batch):
                part = chunk.articles[start : start + batch]
                t0, c0 = time.perf_counter(), time.process_time()
                index.add(part)
                latencies.append((total + len(part), time.perf_counter() - t0))
                cpu.append(time.process_time() - c0)
                total += len(part)
    wall = time.perf_counter() - started
    rows: list[tuple[str, str]] = [("articles", f"{total:,}"), ("batch size", str(batch)),
                                   ("story refresh", refresh)]
    for mark in sorted({*(m for m in MARKS if m <= docs), docs}):
        window = [k for k, (n, _) in enumerate(latencies) if mark * (1 - WINDOW) < n <= mark]
        if window:
            added = batch * len(window)
            wall_s = sum(latencies[k][1] for k in window)
            cpu_s = sum(cpu[k] for k in window)
            rows.append((f"adds/s at {mark:,} (wall / CPU)",
                         f"{added / wall_s:,.0f} / {added / cpu_s:,.0f}"))
    seconds = sorted(s for _, s in latencies)
    rows.append(("adds/s overall (wall / CPU)",
                 f"{total / sum(seconds):,.0f} / {total / sum(cpu):,.0f}"))
    rows.append(("batch p50 ms", f"{1000 * statistics.median(seconds):.1f}"))
    p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
    rows.append(("batch p99 ms", f"{1000 * p99:.1f}"))
    rows.append(("wall s (incl. generating)", f"{wall:.1f}"))
    rows.append(("database MiB", f"{_size(path) / 2**20:,.1f}"))
    t0 = time.perf_counter()
    with StoryIndex.open(path, index_config=config) as index:
        opened = time.perf_counter() - t0
        t1 = time.perf_counter()
        index.add([{"id": "reopen-probe", "text": "A probe article after reopening."}])
        loaded = time.perf_counter() - t1
    rows.append(("reopen s (connect)", f"{opened:.3f}"))
    rows.append(("reopen s (first add: load + LSH rebuild)", f"{loaded:.2f}"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--story-refresh", choices=["read", "add"], default="read")
    parser.add_argument("--dir", help="Folder for the database (default: a temporary one).")
    args = parser.parse_args(argv)
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
        rows = run(args.docs, args.batch, args.story_refresh, folder)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(args.docs, args.batch, args.story_refresh, Path(tmp))
    width = max(len(label) for label, _ in rows)
    print(f"StoryIndex benchmark, synthetic corpus, one process (pid {os.getpid()})")
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")


if __name__ == "__main__":
    main()
