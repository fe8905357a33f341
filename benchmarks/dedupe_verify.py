"""Verifying ``dedupe``'s candidate pairs: estimated Jaccard (the signatures) or exact
Jaccard (the shingle sets), on the ``benchmarks.dedupe`` corpus (#21).

Both verify the same LSH candidates of the exact-copy representatives, at the same
threshold; the table gives precision, recall and F1 of copy pairs against the gold copy
groups, and the seconds the verification took (exact: a set intersection per pair).

    flock /tmp/dedup-bench.lock python -m benchmarks.dedupe_verify --docs 100000
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from benchmarks.dedupe import THRESHOLD, corpus_path
from dedup import candidates, copies, shingling
from dedup.evaluate import score

dedupe_module = importlib.import_module("dedup.dedupe")


def shingle_sets(texts: pl.Series, ngram: int) -> list[np.ndarray]:
    """Each text's distinct shingle hashes, as ``dedupe`` computes them."""
    out: list[np.ndarray] = []
    for first in range(0, len(texts), dedupe_module.BATCH):
        buf, ends = dedupe_module.light_batch(texts.slice(first, dedupe_module.BATCH))
        flat, shingle_ends, _, _ = shingling.shingle_hashes(buf, ends, ngram)
        out.extend(np.unique(s) for s in np.split(flat, shingle_ends[:-1]))
    return out


def main(argv: list[str] | None = None) -> None:
    """Print one line per verification rule."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedupe_verify")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    frame = pl.read_parquet(corpus_path(args.docs), columns=["text", "copy_group"])
    texts, gold = frame["text"], frame["copy_group"].to_list()
    signed = dedupe_module.sign(texts, workers=0)
    n = len(texts)
    group = copies.copy_groups(signed.keys, signed.present).group
    reps = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(signed.present)
    reps[rows] = group[rows] == rows
    pairs, _ = candidates.lsh_pairs(signed.signatures, reps, threshold=min(args.threshold, 0.9),
                                    max_bucket_size=100, chain=2)
    sets = shingle_sets(texts, 5)
    print(f"{n:,} articles, {len(pairs):,} candidate pairs, threshold {args.threshold}")
    print("| verification | P | R | F1 | seconds |\n|---|---|---|---|---|")
    for rule in ("estimated", "exact"):
        start = time.perf_counter()
        if rule == "estimated":
            close = np.mean(signed.signatures[pairs[:, 0]] == signed.signatures[pairs[:, 1]],
                            axis=1) >= args.threshold
        else:
            close = np.array([
                len(np.intersect1d(sets[a], sets[b], assume_unique=True))
                >= args.threshold * len(np.union1d(sets[a], sets[b]))
                for a, b in pairs.tolist()], dtype=bool)
        seconds = time.perf_counter() - start
        linked = pairs[close]
        graph = sp.coo_matrix((np.ones(len(linked), dtype=np.int8),
                               (linked[:, 0], linked[:, 1])), shape=(n, n))
        labels = connected_components(graph, directed=False)[1][group]
        s = score(gold, labels.tolist())
        print(f"| {rule} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
