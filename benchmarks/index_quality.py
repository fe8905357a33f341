"""StoryIndex against the batch pipeline on the same feed: ARI of the index's clusters
(articles added in arrival order, ``--batch`` per add) against ``dedup.cluster``'s, and of
each against the generator's gold labels.

    python -m benchmarks.index_quality --docs 30000 --batch 100

Why: the index places greedily and re-links locally; this says how far that lands from
the batch's clustering of the same articles (issue #18 asks for ARI >= 0.98 at 30k).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.index_bench import print_table
from benchmarks.synthetic import generate
from dedup import cluster
from dedup.evaluate import score
from dedup.index import StoryIndex


def run(docs: int, batch: int, tail: bool = True) -> list[tuple[str, str]]:
    """Rows (label, value) of the comparison table."""
    corpus = generate(docs, tail=tail)
    ids = [a["id"] for a in corpus.articles]
    t0 = time.perf_counter()
    result = cluster(corpus.articles, with_stories=False)
    batch_s = time.perf_counter() - t0
    by_id = dict(zip(result.assignments["id"].to_list(),
                     result.assignments["cluster_id"].to_list(), strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with StoryIndex.open(Path(tmp) / "q.db") as index:
            for start in range(0, len(corpus.articles), batch):
                index.add(corpus.articles[start : start + batch])
            placed = index.assignments()
        index_s = time.perf_counter() - t0
    batch_labels = [by_id[i] for i in ids]
    index_labels = [placed[i] for i in ids]
    versus = score(batch_labels, index_labels)
    return [
        ("articles", f"{len(ids):,}"),
        ("batch size", str(batch)),
        ("ARI index vs batch", f"{versus.ari:.4f}"),
        ("B-cubed F1 index vs batch", f"{versus.bcubed_f1:.4f}"),
        ("ARI index vs gold", f"{score(corpus.gold, index_labels).ari:.4f}"),
        ("ARI batch vs gold", f"{score(corpus.gold, batch_labels).ari:.4f}"),
        ("clusters (index / batch)",
         f"{len(set(index_labels)):,} / {len(set(batch_labels)):,}"),
        ("seconds (index / batch)", f"{index_s:.1f} / {batch_s:.1f}"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-tail", action="store_true",
                        help="Generator version 2's corpus (no big events).")
    args = parser.parse_args(argv)
    print_table(run(args.docs, args.batch, tail=not args.no_tail))


if __name__ == "__main__":
    main()
