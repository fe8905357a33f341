"""Candidate pairs from MinHash LSH banding.

Bands and rows come from datasketch's ``MinHashLSH`` for the configured threshold, and
with no bucket limits a pair is a candidate exactly when datasketch's index would return
it for a query (a test proves it). The banding itself runs in numpy, one sort per band
over all documents: inserting millions of documents one Python call at a time dominated
batch runs, and reloading an incremental index the same way took a minute at 100k
articles. A bucket larger than ``max_bucket_size`` is split by further min-hashes, and
what still does not fit is connected by a chain (a number of pairs linear in its size),
never dropped: a crowded bucket is most often the biggest story of the day (#18).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from dedup.parallel import thread_map
from dedup.tuning import LshBuffers


@dataclass(frozen=True, slots=True)
class CandidateStats:
    """What the LSH step did, for the run summary and benchmarks."""

    bands: int
    rows: int
    pairs: int
    oversized_buckets: int


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that datasketch picks for this threshold and signature length."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


_BUFFERS = LshBuffers()


def lsh_pairs(
    signatures: np.ndarray,
    present: np.ndarray,
    *,
    threshold: float,
    max_bucket_size: int,
    min_collisions: int = 1,
    max_per_doc: int | None = None,
    split_depth: int = 0,
    threads: int = 1,
    num_perm: int | None = None,
    chain: int = 0,
    buffers: LshBuffers = _BUFFERS,
) -> tuple[np.ndarray, CandidateStats]:
    """Pairs (i < j, as a sorted (k, 2) int64 array) sharing at least ``min_collisions`` bands.

    ``present`` masks out documents with an empty shingle set: their all-max signatures
    would otherwise all collide with each other. Requiring two shared bands instead of one
    keeps pairs whose estimated Jaccard is above chance while cutting the pairs that share
    a single common term. ``max_per_doc`` keeps, for each document, only the partners it
    shares the most bands with (a pair stays if either side keeps it): candidates then
    grow linearly with the corpus even where thousands of articles share a topic's words.
    ``split_depth`` > 0 splits crowded buckets by up to that many further min-hashes (the
    first rows of the following bands) instead of dropping them at once. ``threads`` > 1
    groups bands on that many threads (numpy sorts release the GIL) while this thread
    counts the pairs; bands are counted in order, so the result does not depend on it.
    ``num_perm``: the signature length the bands are derived for (default: the width of
    ``signatures``, which may be just the first ``lsh_params`` bands x rows columns).
    ``chain``: links per member of a bucket still crowded after splitting (``chain_pairs``);
    0 skips such buckets, the rule before #18. ``buffers``: how many pair codes are held
    at once (``tuning.LshBuffers``); they bound memory, never change the pairs.
    """
    n = len(signatures)
    bands, rows = lsh_params(threshold, num_perm or signatures.shape[1])
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands of {rows} rows need {bands * rows} min-hashes, "
                         f"signatures have {signatures.shape[1]}")
    docs = np.flatnonzero(present).astype(np.int64)
    counter = _CodeCounter(budget=max(buffers.minimum, buffers.codes_per_doc * n))
    oversized = 0
    # All present (the usual case): no copy of a corpus-sized array.
    present_sigs = signatures if len(docs) == n else signatures[docs]
    band_pairs = functools.partial(_band_pairs, present_sigs, docs, n, bands, rows,
                                   max_bucket_size, split_depth, chain)
    chains: list[np.ndarray] = []
    for codes, chained, skipped in thread_map(band_pairs, range(bands), threads):
        oversized += skipped
        counter.add(codes)
        if len(chained):
            chains.append(chained)
    del present_sigs, band_pairs
    codes, counts = counter.result()
    keep = counts >= min_collisions
    codes, counts = codes[keep], counts[keep]
    if max_per_doc is not None and len(codes):
        codes = _strongest_per_doc(codes, counts, n, max_per_doc,
                                   max(buffers.minimum, buffers.rank_per_doc * n))
    if chains:  # kept whatever the caps: they are what connects a crowded bucket
        codes = unique_sorted(np.concatenate((codes, *chains)))
    pairs = np.stack([codes // n, codes % n], axis=1) if len(codes) else np.empty((0, 2), np.int64)
    return pairs, CandidateStats(bands, rows, len(pairs), oversized)


def _band_pairs(
    signatures: np.ndarray, docs: np.ndarray, n: int, bands: int, rows: int,
    max_bucket_size: int, split_depth: int, chain: int, band: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``bucket_pairs`` of one band of ``lsh_pairs``: codes sorted, then the chain's codes.

    Sorted here, on the band's thread (numpy sorts release the GIL), the codes of several
    bands are sorted runs that ``_CodeCounter`` merges in a fraction of a full sort.
    """
    keys = signatures[:, band * rows : (band + 1) * rows]
    extra = split_columns(signatures, band, bands, rows, split_depth)
    chained: list[np.ndarray] = []
    codes, oversized = bucket_pairs(keys, docs, n, max_bucket_size, extra, chain, chained)
    codes.sort()
    return codes, unique_sorted(np.concatenate(chained or [_NO_CODES])), oversized


_NO_CODES = np.empty(0, dtype=np.int64)


class _CodeCounter:
    """Sorted distinct pair codes with how many buckets produced each, built a batch at a time.

    Equal to ``np.unique(all codes, return_counts=True)`` without all codes in memory.
    Batches are fastest as a few sorted runs (one per band), though any order is counted.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.codes = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.uint16)  # shared bands: at most num_perm
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    def add(self, codes: np.ndarray) -> None:
        if len(codes):
            self._buffer.append(codes)
            self._buffered += len(codes)
        if self._buffered >= self.budget:
            self._fold()

    def _fold(self) -> None:
        if not self._buffer:
            return
        # Timsort ("stable") merges the bands' sorted runs instead of sorting from scratch.
        merged = np.sort(np.concatenate(self._buffer), kind="stable")
        self._buffer, self._buffered = [], 0
        starts = np.flatnonzero(np.concatenate(([True], merged[1:] != merged[:-1])))
        new = merged[starts]
        counts = np.diff(np.append(starts, len(merged)))
        at = np.searchsorted(self.codes, new)
        known = at < len(self.codes)
        known[known] = self.codes[at[known]] == new[known]
        self.counts[at[known]] += counts[known].astype(np.uint16)
        fresh = ~known
        self.codes = np.insert(self.codes, at[fresh], new[fresh])
        self.counts = np.insert(self.counts, at[fresh], counts[fresh].astype(np.uint16))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._fold()
        return self.codes, self.counts


def bucket_pairs(
    keys: np.ndarray,
    docs: np.ndarray,
    n: int,
    max_bucket_size: int,
    extra: np.ndarray | None = None,
    chain: int = 0,
    chained: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """Pair codes ``low * n + high`` of documents with equal key rows, and crowded buckets.

    ``keys`` is one row per entry of ``docs`` (a band's values; a distributed engine may
    prefix the band number so several bands group in one call). A bucket larger than
    ``max_bucket_size`` is split by the columns of ``extra`` (other min-hashes of the same
    entries), one column at a time: members of a crowded bucket pair only if they also
    agree there, so a very common term alone is no evidence but a common term plus another
    shared sampled term is. Buckets still too large are counted and, with ``chain`` > 0,
    connected by ``chain_pairs`` (linear in their size) instead of dropped: a crowded
    bucket is most often the biggest story of the day (hundreds of syndicated copies and
    rewrites), and dropping it split that story into fragments (#18). Scoring then decides
    which of those pairs are edges. A code repeats once per bucket that holds the pair,
    which is how shared bands are counted. ``chained``, when given, receives the chains'
    codes instead of the result: ``lsh_pairs`` keeps them whatever ``min_collisions`` and
    ``max_per_doc`` say, since a crowded bucket's members have many stronger partners and
    the cap would cut exactly the pairs that hold a big story together.
    """
    chunks: list[np.ndarray] = []
    oversized = 0
    depth = 0 if extra is None else extra.shape[1]
    for level in range(depth + 1):
        if len(docs) == 0:
            break
        order = np.lexsort(keys.T[::-1])
        sorted_keys = keys[order]
        change = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
        starts = np.concatenate(([0], np.flatnonzero(change) + 1))
        sizes = np.diff(np.concatenate((starts, [len(order)])))
        keep = (sizes >= 2) & (sizes <= max_bucket_size)
        if keep.any():
            chunks.append(_bucket_pairs(docs[order], starts[keep], sizes[keep], n))
        crowded = sizes > max_bucket_size
        if not crowded.any():
            break
        if level == depth:
            oversized += int(crowded.sum())
            if chain > 0:
                linked = chain_pairs(docs[order], starts[crowded], sizes[crowded], n, chain)
                (chunks if chained is None else chained).append(linked)
            break
        entries = order[np.repeat(crowded, sizes)]
        assert extra is not None
        keys = np.hstack((keys[entries], extra[entries, level : level + 1]))
        docs, extra = docs[entries], extra[entries]
    if not chunks:
        return np.empty(0, dtype=np.int64), oversized
    return np.concatenate(chunks), oversized


def chain_pairs(members: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int,
                links: int) -> np.ndarray:
    """Codes linking each crowded bucket's members, sorted by document, to the next ``links``.

    ``members[starts[b] : starts[b] + sizes[b]]`` is bucket ``b``. Why a chain by document
    index: it costs ``links`` pairs per member, however large the bucket, and two bands
    whose crowded buckets hold the same documents (the copies of one story, in every band)
    give the same pairs, so they count as shared bands instead of adding new pairs. Why
    more than one link: a member from another story between two members of one story
    scores low with both, and the second link bridges it.
    """
    if not len(sizes) or links <= 0:
        return np.empty(0, dtype=np.int64)
    bucket = np.repeat(np.arange(len(sizes)), sizes)
    entries = members[spans(starts, sizes)]
    ordered = entries[np.lexsort((entries, bucket))]
    out = []
    for step in range(1, links + 1):
        same = bucket[step:] == bucket[:-step]
        left, right = ordered[:-step][same], ordered[step:][same]
        out.append(np.minimum(left, right) * n + np.maximum(left, right))
    return np.concatenate(out)


def spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[i] .. starts[i] + lengths[i] - 1`` for every ``i``, concatenated."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def split_columns(
    signatures: np.ndarray, band: int, bands: int, rows: int, depth: int
) -> np.ndarray | None:
    """The min-hashes that split a crowded bucket of ``band``: first rows of the next bands."""
    if depth <= 0:
        return None
    columns = [((band + k) % bands) * rows for k in range(1, depth + 1)]
    return signatures[:, columns]


def _strongest_per_doc(codes: np.ndarray, counts: np.ndarray, n: int, limit: int,
                       entries: int) -> np.ndarray:
    """Codes within each document's ``limit`` most-colliding partners (ties: lower index).

    A pair stays if either side keeps it. Documents are ranked a range at a time (the
    sorted codes give each range's low side as one slice), so the directed copy of every
    pair never exists all at once: about ``entries`` directed entries per range.
    """
    ranges = max(1, -(-2 * len(codes) // entries))
    bounds = np.linspace(0, n, ranges + 1).astype(np.int64)
    kept: list[np.ndarray] = []
    # Every pair's high side, once (int32 when it fits: half the memory of the codes).
    high = (codes % n).astype(np.int32 if n < 2**31 else np.int64)
    for first, stop in itertools.pairwise(bounds.tolist()):
        low = slice(*np.searchsorted(codes, [first * n, stop * n]))
        high_here = np.flatnonzero((high >= first) & (high < stop))
        src = np.concatenate((codes[low] // n, codes[high_here] % n))
        dst = np.concatenate((codes[low] % n, codes[high_here] // n))
        strength = np.concatenate((counts[low], counts[high_here]))
        chosen = strongest_entries(src, dst, strength, limit, n)
        a, b = src[chosen], dst[chosen]
        kept.append(np.minimum(a, b) * n + np.maximum(a, b))
    return unique_sorted(np.concatenate(kept))


def strongest_entries(
    src: np.ndarray, dst: np.ndarray, strength: np.ndarray, limit: int, n: int
) -> np.ndarray:
    """Indices of the entries among each ``src``'s ``limit`` strongest (ties: lower ``dst``),
    in (src, -strength, dst) order; each (src, dst) occurs at most once.

    Why one packed key: a three-key ``lexsort`` was half of the candidate stage; one int64
    per entry (src, then 255 - strength, then dst, in bit fields) sorts ~5x faster into the
    same order. Larger inputs than the bit fields hold fall back to ``lexsort``.
    """
    if not len(src):
        return np.empty(0, dtype=np.int64)
    bits = max(1, int(n - 1).bit_length())
    strength = np.asarray(strength).astype(np.int64)
    if 2 * bits + 8 <= 63 and strength.max() <= 255 and strength.min() >= 0:
        key = (src.astype(np.int64) << (bits + 8)) | ((255 - strength) << bits) | dst
        order = np.argsort(key)  # keys are distinct: any sort gives this order
    else:
        order = np.lexsort((dst, -strength, src))
    src_sorted = src[order]
    group_start = np.concatenate(([0], np.flatnonzero(np.diff(src_sorted)) + 1))
    rank = np.arange(len(order)) - np.repeat(
        group_start, np.diff(np.concatenate((group_start, [len(order)])))
    )
    return order[rank < limit]


def _bucket_pairs(members: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int) -> np.ndarray:
    """All within-bucket pairs, encoded as ``low * n + high``, without a Python loop."""
    # Every position of a bucket pairs with the positions after it in that bucket.
    offsets = np.repeat(starts, sizes)
    index_in_bucket = np.arange(int(sizes.sum())) - np.repeat(
        np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes
    )
    followers = np.repeat(sizes, sizes) - index_in_bucket - 1
    left_pos = np.repeat(offsets + index_in_bucket, followers)
    step = np.arange(int(followers.sum())) - np.repeat(
        np.concatenate(([0], np.cumsum(followers)[:-1])), followers
    )
    left = members[left_pos]
    right = members[left_pos + 1 + step]
    return np.minimum(left, right) * n + np.maximum(left, right)


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for a 1-d array, by sorting.

    Why: numpy 2.x answers a plain ``np.unique`` of integers with a hash table that took
    3 s for 2.6 million pair codes, which sorting does in 0.2 s.
    """
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def union_pairs(*pair_sets: np.ndarray) -> np.ndarray:
    """Sorted unique union of several (k, 2) pair arrays over the same documents."""
    stacked = np.concatenate([p for p in pair_sets if len(p)] or [np.empty((0, 2), np.int64)])
    if not len(stacked):
        return stacked
    # Rows sort as their codes low * width + high do, with width above every index.
    width = int(stacked.max()) + 1
    if width >= 2**31:
        return np.unique(stacked, axis=0)
    codes = unique_sorted(stacked[:, 0].astype(np.int64) * width + stacked[:, 1])
    return np.stack([codes // width, codes % width], axis=1)
