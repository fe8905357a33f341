"""LSH band storage for ``StoryIndex``: the candidates stage's buckets, kept in memory.

The rules are the batch's (``dedup.candidates``): bands and rows from ``lsh_params``, any
shared band makes a candidate, crowded buckets are chained, events partners need
``events_min_collisions`` shared bands and only the strongest are kept. What differs is
the storage, as datasketch's ``MinHashLSH`` swaps its storage backend: sorted numpy
tables that take a batch of new articles at a time (see ``BandIndex``).
"""

from __future__ import annotations

import numpy as np

from dedup.candidates import spans
from dedup.config import CandidateConfig

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (document, band): a mix of the band's ``rows`` min-hashes.

    Two documents share a key exactly when they share the band (up to a 2^-64 collision).
    """
    cube = sigs[:, : bands * rows].astype(np.uint64).reshape(len(sigs), bands, rows)
    with np.errstate(over="ignore"):
        h = (np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        h = np.broadcast_to(h, (len(sigs), bands)).copy()
        for c in range(rows):
            h ^= cube[:, :, c]
            h *= _MIX
            h ^= h >> _SHIFT
    return h


Level = tuple[np.ndarray, np.ndarray]  # (sorted uint64 band keys, int64 rows)
ROW_BITS = 40  # (document, row) pairs are packed as document << 40 | row


def empty_level() -> Level:
    """A level with no entries."""
    return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)


_RADIX_BITS = 16
_RADIX_SHIFT = np.uint64(64 - _RADIX_BITS)
_RADIX_MIN = 1 << 18  # levels this large get a directory


def radix_directory(keys: np.ndarray) -> np.ndarray:
    """Where each value of the top ``_RADIX_BITS`` bits starts in sorted ``keys``."""
    top = (keys >> _RADIX_SHIFT).astype(np.int64)
    return np.searchsorted(top, np.arange((1 << _RADIX_BITS) + 1))


def radix_search(keys: np.ndarray, directory: np.ndarray, queries: np.ndarray, side: str
                  ) -> np.ndarray:
    """``np.searchsorted(keys, queries, side)`` for large tables of hash keys.

    Why: band keys are uniform 64-bit hashes, so the top bits split a table of millions
    into buckets of ~100 keys; a binary search inside the bucket touches a few cache
    lines where one over the whole table (100k articles: 64 MB of keys) misses on most
    of its ~23 steps. The search runs on all queries at once, a step per pass.
    """
    bucket = (queries >> _RADIX_SHIFT).astype(np.int64)
    lo, hi = directory[bucket], directory[bucket + 1]
    active = lo < hi
    while active.any():
        mid = (lo + hi) >> 1
        value = keys[np.where(active, mid, 0)]
        right = active & ((value < queries) if side == "left" else (value <= queries))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
        active = lo < hi
    return lo


def ranges(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[i] : starts[i] + lengths[i]] for every i, concatenated."""
    return values[spans(starts, lengths)]


class BandIndex:
    """LSH buckets as sorted (key, row) tables in three levels: main, recent and small.

    Why not datasketch's dict-of-sets storage: one Python set per bucket costs ~1 KB per
    article, inserting 20k articles took 13 s and reopening 100k would rebuild for a
    minute; sorted uint64 tables cost 16 bytes per (article, band), rebuild with one
    argsort and answer a whole batch with a few ``searchsorted`` calls over its sorted
    keys (per-article lookups were a third of ``add``). A batch's keys are merged into
    ``small``, which is merged into ``recent`` past ``SMALL`` entries, which is merged into
    ``main`` when it reaches a quarter of it: inserts stay amortised O(1).
    Bucket semantics are the batch's: any shared band makes a candidate, and buckets
    larger than ``max_bucket_size`` are chained (a few most recent members), not skipped.
    """

    SMALL = 1 << 16

    def __init__(self, max_bucket_size: int, chain: int = 0) -> None:
        self.max_bucket_size = max_bucket_size
        self.chain = chain
        self.levels: list[Level] = []
        self.directories: list[np.ndarray | None] = []
        self._set_levels([empty_level(), empty_level(), empty_level()])

    def _set_levels(self, levels: list[Level]) -> None:
        """Install new level tables; large ones changed get a new radix directory."""
        directories: list[np.ndarray | None] = []
        for k, (keys, _) in enumerate(levels):
            if len(keys) < _RADIX_MIN:
                directories.append(None)
            elif k < len(self.levels) and keys is self.levels[k][0]:
                directories.append(self.directories[k])
            else:
                directories.append(radix_directory(keys))
        self.levels, self.directories = levels, directories

    def build(self, keys: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self._set_levels([(keys[order], rows[order]), empty_level(), empty_level()])

    @staticmethod
    def _merge(level: Level, new: Level) -> Level:
        (keys, rows), (new_keys, new_rows) = level, new
        order = np.argsort(new_keys, kind="stable")
        at = np.searchsorted(keys, new_keys[order], side="right")
        return np.insert(keys, at, new_keys[order]), np.insert(rows, at, new_rows[order])

    def insert(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Add documents: row ``rows[i]`` has band keys ``keys[i]``."""
        if not len(rows):
            return
        main, recent, small = self.levels
        small = self._merge(small, (keys.ravel(), np.repeat(rows, keys.shape[1])))
        if len(small[0]) > self.SMALL:
            recent, small = self._merge(recent, small), empty_level()
        if len(recent[0]) > max(1 << 16, len(main[0]) // 4):
            main, recent = self._merge(main, recent), empty_level()
        self._set_levels([main, recent, small])

    def remove(self, rows: np.ndarray) -> None:
        levels = []
        for keys, level_rows in self.levels:
            keep = ~np.isin(level_rows, rows)
            levels.append((keys[keep], level_rows[keep]))
        self._set_levels(levels)

    def query(self, keys: np.ndarray, valid: np.ndarray, first_row: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of a batch of new documents, as if each were queried, then inserted.

        Document ``i`` has band keys ``keys[i]`` (``valid[i]`` False: no signature, never
        a candidate) and will be row ``first_row + i``: it sees the table plus the batch's
        earlier documents. Returns (document, candidate row, shared bands), sorted by
        document then row; a bucket over the cap (counting earlier batch documents) gives
        only its ``chain`` most recent members of each level (none with ``chain`` 0).
        """
        nothing = np.empty(0, dtype=np.int64)
        docs = np.flatnonzero(valid)
        if not len(docs):
            return nothing, nothing, nothing
        bands = keys.shape[1]
        flat = keys[docs].ravel()
        order = np.argsort(flat, kind="stable")  # equal keys stay in document order
        sorted_keys = flat[order]
        doc_of = np.repeat(docs, bands)[order]
        # Earlier batch documents in the same bucket: the entries before this one among
        # equal keys (sorted keys make the searchsorted calls below cache-friendly too).
        position = np.arange(len(sorted_keys))
        new_group = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
        group_start = np.maximum.accumulate(np.where(new_group, position, 0))
        earlier = position - group_start
        lookups = []
        size = earlier.copy()
        for (level_keys, level_rows), directory in zip(self.levels, self.directories,
                                                       strict=True):
            if directory is None:
                lo = np.searchsorted(level_keys, sorted_keys, side="left")
                count = np.searchsorted(level_keys, sorted_keys, side="right") - lo
            else:
                lo = radix_search(level_keys, directory, sorted_keys, "left")
                count = radix_search(level_keys, directory, sorted_keys, "right") - lo
            lookups.append((level_rows, lo, count))
            size += count
        ok = (size > 0) & (size <= self.max_bucket_size)
        # A crowded bucket gives its ``chain`` most recent members from each source (the
        # batch's earlier documents, each level): the batch's ``candidates.chain_pairs``
        # link from the newest member's side, so the biggest story is never cut off (#18).
        crowded = (size > self.max_bucket_size) & (self.chain > 0)
        ok |= crowded
        take = np.where(crowded, np.minimum(earlier, self.chain), earlier)[ok]
        owner = doc_of[ok]
        found_docs = [np.repeat(owner, take)]
        found_rows = [first_row + ranges(doc_of, (group_start + earlier)[ok] - take, take)]
        for level_rows, lo, count in lookups:
            take = np.where(crowded, np.minimum(count, self.chain), count)[ok]
            found_docs.append(np.repeat(owner, take))
            found_rows.append(ranges(level_rows, (lo + count)[ok] - take, take))
        doc = np.concatenate(found_docs)
        row = np.concatenate(found_rows)
        own = row == first_row + doc  # only on a 64-bit key collision between two bands
        packed = (doc[~own] << ROW_BITS) | row[~own]
        pairs, shared = np.unique(packed, return_counts=True)
        return pairs >> ROW_BITS, pairs & ((1 << ROW_BITS) - 1), shared



def lookup(copies: BandIndex, events: BandIndex, copy_keys: np.ndarray, has_copy: np.ndarray,
           event_keys: np.ndarray, has_event: np.ndarray, first_row: int,
           config: CandidateConfig, events_limit: int | None) -> list[np.ndarray]:
    """Per new article (row ``first_row + i``), the sorted rows sharing a copies band,
    plus the events partners sharing the most bands.

    As ``candidates.lsh_pairs``: events partners need ``events_min_collisions`` shared
    bands and only the ``events_limit`` strongest are kept (ties: most recent), here seen
    from the new article's side only. Each article sees the index and the batch's
    articles before it.
    """
    copy_doc, copy_row, _ = copies.query(copy_keys, has_copy, first_row)
    event_doc, event_row, shared = events.query(event_keys, has_event, first_row)
    keep = shared >= config.events_min_collisions
    event_doc, event_row, shared = event_doc[keep], event_row[keep], shared[keep]
    if events_limit is not None and len(event_doc):
        order = np.lexsort((-event_row, -shared, event_doc))
        event_doc, event_row = event_doc[order], event_row[order]
        rank = np.arange(len(event_doc)) - np.searchsorted(event_doc, event_doc)
        event_doc, event_row = event_doc[rank < events_limit], event_row[rank < events_limit]
    packed = np.unique(np.concatenate([(copy_doc << ROW_BITS) | copy_row,
                                       (event_doc << ROW_BITS) | event_row]))
    doc = packed >> ROW_BITS
    bounds = np.searchsorted(doc, np.arange(1, len(copy_keys)))
    return np.split(packed & ((1 << ROW_BITS) - 1), bounds)
