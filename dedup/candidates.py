"""Candidate pairs from MinHash LSH banding (datasketch ``MinHashLSH``).

LSH only proposes; ``refine`` decides. Buckets larger than ``max_bucket_size`` hold a
stock phrase or a very common term rather than one event, so their quadratic pairs are
skipped and counted instead of flooding the refine stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHashLSH


@dataclass(frozen=True, slots=True)
class CandidateStats:
    """What the LSH step did, for the run summary and benchmarks."""

    bands: int
    rows: int
    pairs: int
    oversized_buckets: int


def lsh_pairs(
    signatures: np.ndarray,
    present: np.ndarray,
    *,
    threshold: float,
    seed: int,
    max_bucket_size: int,
) -> tuple[np.ndarray, CandidateStats]:
    """Pairs (i < j, as an (k, 2) int64 array, sorted) that share at least one LSH band.

    ``present`` masks out documents with an empty shingle set: their all-max signatures
    would otherwise all collide with each other.
    """
    num_perm = signatures.shape[1]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for i in np.flatnonzero(present):
            minhash = LeanMinHash(seed=seed, hashvalues=signatures[i], scheme="affine32")
            session.insert(int(i), minhash, check_duplication=False)
    chunks: list[np.ndarray] = []
    oversized = 0
    for table in lsh.hashtables:
        for bucket, count in table.itemcounts().items():
            if count < 2:
                continue
            if count > max_bucket_size:
                oversized += 1
                continue
            members = np.fromiter(table.get(bucket), dtype=np.int64, count=count)
            members.sort()
            left, right = np.triu_indices(count, k=1)
            chunks.append(members[left] * len(signatures) + members[right])
    pairs = _decode(chunks, len(signatures))
    return pairs, CandidateStats(lsh.b, lsh.r, len(pairs), oversized)


def _decode(chunks: list[np.ndarray], n: int) -> np.ndarray:
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    codes = np.unique(np.concatenate(chunks))
    return np.stack([codes // n, codes % n], axis=1)


def union_pairs(*pair_sets: np.ndarray) -> np.ndarray:
    """Sorted unique union of several (k, 2) pair arrays over the same documents."""
    stacked = np.concatenate([p for p in pair_sets if len(p)] or [np.empty((0, 2), np.int64)])
    return np.unique(stacked, axis=0) if len(stacked) else stacked
