"""StoryIndex against the batch pipeline on one corpus: ARI of the index's clusters against
``dedup.cluster``'s, and each against the gold stories.

The index is fed the heavy-tailed synthetic corpus in arrival order, ``--batch`` articles
per add; the batch pipeline clusters the same articles at once. Why: the index is meant to
give the batch's clusters incrementally (#18, #19), and ARI against batch measures how far
arrival order and greedy placement move it.

    python -m benchmarks.index_vs_batch --docs 30000 --batch 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

import dedup
from benchmarks.index_bench import print_table
from benchmarks.synthetic import generate
from dedup.index import StoryIndex


def run(docs: int, batch: int, tail: bool = True) -> list[tuple[str, str]]:
    """Cluster ``docs`` synthetic articles both ways; the table rows (label, value)."""
    corpus = generate(docs, tail=tail)
    articles = corpus.articles
    t0 = time.perf_counter()
    batch_result = dedup.cluster(articles, with_stories=False)
    batch_s = time.perf_counter() - t0
    frame = batch_result.assignments
    batch_of = dict(zip(frame["id"].to_list(), frame["cluster_id"].to_list(), strict=True))
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        with StoryIndex.open(Path(folder) / "index.db") as index:
            for start in range(0, len(articles), batch):
                index.add(articles[start : start + batch])
            index_of = index.assignments()
        index_s = time.perf_counter() - t0
    ids = [a["id"] for a in articles]
    batch_labels = [batch_of[i] for i in ids]
    index_labels = [index_of[i] for i in ids]
    return [
        ("articles", f"{len(ids):,}"),
        ("batch size (index)", str(batch)),
        ("ARI index vs batch", f"{adjusted_rand_score(batch_labels, index_labels):.6f}"),
        ("ARI batch vs gold", f"{adjusted_rand_score(corpus.gold, batch_labels):.6f}"),
        ("ARI index vs gold", f"{adjusted_rand_score(corpus.gold, index_labels):.6f}"),
        ("clusters batch / index", f"{len(set(batch_labels)):,} / {len(set(index_labels)):,}"),
        ("seconds batch / index", f"{batch_s:.1f} / {index_s:.1f}"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-tail", action="store_true",
                        help="generator version 2's corpus (no heavy tail)")
    args = parser.parse_args(argv)
    print_table(run(args.docs, args.batch, tail=not args.no_tail))


if __name__ == "__main__":
    main()
