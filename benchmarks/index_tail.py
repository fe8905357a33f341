"""StoryIndex on the tail: thousands of identical copies, and one story of thousands of
versions, with the text cache at its size and at one entry (#18).

    python -m benchmarks.index_tail                       # 10,000 copies, 2,000 versions
    python -m benchmarks.index_tail --copies 500 --versions 200

The copies are seed 000 under new ids; the story is ``benchmarks.excerpts_tail``'s (seed
000, its 2,000 distinct teasers, and seed 004). Articles are added 100 at a time. The
table says what the cache (``dedup.index.texts.TextCache``, a bound on memory) costs or
loses: the clusters must be the same at either size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.excerpts_tail import corpus
from dedup.index import StoryIndex


def feed(articles: list[dict[str, Any]], entries: int) -> tuple[float, dict[str, str], int]:
    """Seconds, assignments and texts computed for ``articles`` added 100 at a time."""
    with tempfile.TemporaryDirectory() as folder:
        index = StoryIndex(Path(folder) / "i.db")
        index._texts.max_entries = entries
        start = time.perf_counter()
        for at in range(0, len(articles), 100):
            index.add(articles[at:at + 100])
        seconds = time.perf_counter() - start
        return seconds, index.assignments(), index._texts.misses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=2_000)
    args = parser.parse_args(argv)
    seed = corpus(0)[0]  # seed 000
    feeds = ((f"{args.copies:,} identical copies",
              [{**seed, "id": f"copy-{i:05d}"} for i in range(args.copies)]),
             (f"{args.versions:,}-version story (+2 seeds)", corpus(args.versions)))
    print("| feed | cache entries | seconds | clusters | largest | texts computed "
          "| clusters as at full size |")
    print("|---|---|---|---|---|---|---|")
    for name, articles in feeds:
        full: dict[str, str] | None = None
        for entries in (1 << 14, 1):
            seconds, assigned, computed = feed(articles, entries)
            sizes = Counter(assigned.values())
            same = "-" if full is None else ("same" if assigned == full else "DIFFERENT")
            full = full if full is not None else assigned
            print(f"| {name} | {entries:,} | {seconds:.1f} | {len(sizes):,} "
                  f"| {max(sizes.values()):,} | {computed:,} | {same} |", flush=True)


if __name__ == "__main__":
    main()
