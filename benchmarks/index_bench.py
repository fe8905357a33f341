"""StoryIndex throughput: add a synthetic feed in batches to a growing index, on one core.

Reports adds per second around 10k, 50k and 100k indexed articles (the batches that end
in each window), p50/p99 batch latency, database size on disk and reopen time, as one
table. Articles come from ``benchmarks.synthetic`` (deterministic, seed 13).

    python -m benchmarks.index_bench --docs 100000 --batch 100

Stories are merged lazily (``story_refresh="read"``, the default), so the figures are
placement throughput; ``--story-refresh add`` measures merging inside each add.
``--stages`` adds the CPU milliseconds per batch of each stage of ``add`` (over all batches;
"rest" is SQLite's commit and what no stage covers).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.synthetic import iter_synthetic
from dedup import pipeline, signatures
from dedup.config import IndexConfig, StoryRefresh
from dedup.index import StoryIndex, bands, inputs, terms
from dedup.index.placement import Placer
from dedup.index.relink import Relinker
from dedup.index.store import IndexStore
from dedup.index.texts import TextCache

# (owner, attribute, label): the stages of ``StoryIndex.add``, in order.
STAGES = (
    (pipeline, "articles_frame", "input"),
    (inputs, "plain_articles", "input"),
    (TextCache, "lookup", "normalize, terms, copies min-hashes (texts)"),
    (StoryIndex, "_reject_known", "known ids"),
    (terms, "salient_columns", "salient terms"),
    (signatures.MinHasher, "signatures", "events min-hashes"),
    (bands, "lookup", "LSH candidates"),
    (Placer, "_batch_scores", "candidate scores"),
    (Placer, "_choose", "greedy placement"),
    (Placer, "_tie_excerpts", "excerpt ties"),
    (bands.BandIndex, "insert", "LSH insert"),
    (IndexStore, "_flush_rows", "SQLite rows"),
    (Relinker, "_relink", "re-link"),
    (Placer, "_placements", "placement scores"),
    (IndexStore, "_touch", "SQLite clusters"),
)


def _time_stages(totals: dict[str, float]) -> Callable[[], None]:
    """Wrap the stages to add their CPU seconds (outermost call only) to ``totals``;
    returns the function that unwraps them."""
    depth = [0]
    restore = []
    for owner, name, label in STAGES:
        if not hasattr(owner, name):
            continue
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        function = original.__func__ if isinstance(original, staticmethod) else original

        @functools.wraps(function)
        def timed(*args: Any, _f: Callable[..., Any] = function, _label: str = label,
                  **kwargs: Any) -> Any:
            if depth[0]:
                return _f(*args, **kwargs)
            depth[0] += 1
            started = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                totals[_label] = totals.get(_label, 0.0) + time.process_time() - started
                depth[0] -= 1

        setattr(owner, name, staticmethod(timed) if isinstance(original, staticmethod) else timed)
        restore.append((owner, name, original))

    def unwrap() -> None:
        for owner, name, original in restore:
            setattr(owner, name, original)

    return unwrap

MARKS = (10_000, 50_000, 100_000)
WINDOW = 0.1  # a mark's rate is measured over the batches ending in the last 10% before it


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def run(docs: int, batch: int, refresh: StoryRefresh, folder: Path, stages: bool = False,
        tail: bool = True) -> list[tuple[str, str]]:
    """Add ``docs`` articles in batches; return the table rows (label, value).
    ``tail=False``: generator version 2's corpus, to compare with code from before #18."""
    path = folder / "bench.db"
    totals: dict[str, float] = {}
    unwrap = _time_stages(totals) if stages else None
    latencies: list[tuple[int, float]] = []  # (articles indexed after the batch, seconds)
    cpu: list[float] = []  # CPU seconds of this process per batch (robust to a busy machine)
    config = IndexConfig(story_refresh=refresh)
    started = time.perf_counter()
    with StoryIndex.open(path, index_config=config) as index:
        total = 0
        for chunk in iter_synthetic(docs, chunk_size=max(batch, 1000), tail=tail):
            for start in range(0, len(chunk.articles), batch):
                part = chunk.articles[start : start + batch]
                t0, c0 = time.perf_counter(), time.process_time()
                index.add(part)
                latencies.append((total + len(part), time.perf_counter() - t0))
                cpu.append(time.process_time() - c0)
                total += len(part)
    wall = time.perf_counter() - started
    if unwrap is not None:
        unwrap()
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
    if stages:
        for label, spent in totals.items():
            rows.append((f"stage ms/batch: {label}", f"{1000 * spent / len(cpu):.1f}"))
        rest = sum(cpu) - sum(totals.values())
        rows.append(("stage ms/batch: rest", f"{1000 * rest / len(cpu):.1f}"))
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
    parser.add_argument("--stages", action="store_true",
                        help="Also report CPU ms per batch of each stage of add.")
    parser.add_argument("--no-tail", action="store_true",
                        help="Generator version 2's corpus (no big events), for old-vs-new runs.")
    args = parser.parse_args(argv)
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
        rows = run(args.docs, args.batch, args.story_refresh, folder, args.stages,
                   tail=not args.no_tail)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(args.docs, args.batch, args.story_refresh, Path(tmp), args.stages,
                       tail=not args.no_tail)
    print(f"StoryIndex benchmark, synthetic corpus, one process (pid {os.getpid()})")
    print_table(rows)


def print_table(rows: list[tuple[str, str]]) -> None:
    """(label, value) rows as a Markdown table of measure and value."""
    width = max(len(label) for label, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")


if __name__ == "__main__":
    main()
