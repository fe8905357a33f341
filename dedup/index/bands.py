"""LSH band storage for ``StoryIndex``: the candidates stage's buckets, kept in memory.

The rules are the batch's, read from the same ``CandidateConfig.lsh_options`` and computed
by the same functions: bands and rows from ``candidates.lsh_params``, a band's bucket is
its rows of min-hashes (keyed by ``copies.signature_keys``), a bucket with more members
than ``max_bucket_size`` is split by the further min-hashes of ``candidates.split_columns``
(``split_depth`` of them, one at a time), what is still crowded is chained, events partners
need ``min_collisions`` shared bands and only the strongest are kept
(``candidates.strongest_entries``), chained partners whatever the caps. What differs is the
storage, as datasketch's ``MinHashLSH`` swaps its storage backend: sorted numpy tables that
take a batch of new articles at a time (see ``BandIndex``), and the order: an article is
seen with the articles before it (see ``BandIndex.query`` for what that changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dedup import candidates, copies
from dedup.candidates import spans


@dataclass(frozen=True, slots=True)
class Rules:
    """One LSH signal's candidate rules (``CandidateConfig.lsh_options``) and its bands."""

    bands: int
    rows: int
    max_bucket_size: int
    chain: int = 0
    split_depth: int = 0
    min_collisions: int = 1
    max_per_doc: int | None = None

    @classmethod
    def of(cls, options: Mapping[str, Any], shape: tuple[int, int]) -> Rules:
        """The rules of ``candidates.lsh_pairs(**options)``; ``shape``: its (bands, rows),
        ``candidates.lsh_params`` of ``options["threshold"]``."""
        bands, rows = shape
        return cls(bands, rows, options["max_bucket_size"], options.get("chain", 0),
                   options.get("split_depth", 0), options.get("min_collisions", 1),
                   options.get("max_per_doc"))

    def keys(self, sigs: np.ndarray) -> np.ndarray:
        """Bucket keys, (documents, split_depth + 1, bands): level 0 the band's rows of
        min-hashes, level k those plus the first k ``candidates.split_columns``.

        Two documents share a level's key exactly when they share those min-hashes (up to a
        2^-64 collision); bands and levels never share keys (each band starts from its
        own constant, each level hashes more columns).
        """
        n, bands, rows = len(sigs), self.bands, self.rows
        cube = sigs[:, : bands * rows].reshape(n, bands, rows)
        band_start = copies.signature_keys(np.arange(bands, dtype=np.uint32)[:, None])
        out = np.empty((n, self.split_depth + 1, bands), dtype=np.uint64)
        out[:, 0] = copies.signature_keys(cube, band_start)
        if self.split_depth:
            columns = [candidates.split_columns(sigs, b, bands, rows, self.split_depth)
                       for b in range(bands)]
            split = np.stack([c for c in columns if c is not None], axis=1)  # (n, bands, depth)
            for level in range(1, self.split_depth + 1):
                out[:, level] = copies.signature_keys(split[:, :, level - 1 : level],
                                                      out[:, level - 1])
        return out


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
    """LSH buckets as sorted (key, row) tables in three tiers: main, recent and small.

    Why not datasketch's dict-of-sets storage: one Python set per bucket costs ~1 KB per
    article, inserting 20k articles took 13 s and reopening 100k would rebuild for a
    minute; sorted uint64 tables cost 16 bytes per (article, band, split level), rebuild
    with one argsort and answer a whole batch with a few ``searchsorted`` calls over its
    sorted keys (per-article lookups were a third of ``add``). A batch's keys are merged
    into ``small``, which is merged into ``recent`` past ``SMALL`` entries, which is merged
    into ``main`` when it reaches a quarter of it: inserts stay amortised O(1). Every split
    level's key is stored (``Rules.keys``): a bucket may become crowded at any add.
    """

    SMALL = 1 << 16

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.levels: list[Level] = []
        self.directories: list[np.ndarray | None] = []
        self._set_levels([empty_level(), empty_level(), empty_level()])

    def _set_levels(self, levels: list[Level]) -> None:
        """Install new tier tables; large ones changed get a new radix directory."""
        directories: list[np.ndarray | None] = []
        for k, (keys, _) in enumerate(levels):
            if len(keys) < _RADIX_MIN:
                directories.append(None)
            elif k < len(self.levels) and keys is self.levels[k][0]:
                directories.append(self.directories[k])
            else:
                directories.append(radix_directory(keys))
        self.levels, self.directories = levels, directories

    def build(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Replace the tables: row ``rows[i]`` has keys ``keys[i]`` (``Rules.keys``)."""
        flat = keys.reshape(len(rows), -1)
        all_keys = flat.ravel()
        order = np.argsort(all_keys, kind="stable")
        all_rows = np.repeat(rows.astype(np.int64), flat.shape[1])
        self._set_levels([(all_keys[order], all_rows[order]), empty_level(), empty_level()])

    @staticmethod
    def _merge(level: Level, new: Level) -> Level:
        (keys, rows), (new_keys, new_rows) = level, new
        order = np.argsort(new_keys, kind="stable")
        at = np.searchsorted(keys, new_keys[order], side="right")
        return np.insert(keys, at, new_keys[order]), np.insert(rows, at, new_rows[order])

    def insert(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Add documents: row ``rows[i]`` has keys ``keys[i]`` (``Rules.keys``)."""
        if not len(rows):
            return
        flat = keys.reshape(len(rows), -1)
        main, recent, small = self.levels
        small = self._merge(small, (flat.ravel(), np.repeat(rows, flat.shape[1])))
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

    def query(self, keys: np.ndarray, valid: np.ndarray, first_row: int) -> Found:
        """Candidates of a batch of new documents, as if each were queried, then inserted.

        Document ``i`` has keys ``keys[i]`` (``Rules.keys``; ``valid[i]`` False: no
        signature, never a candidate) and will be row ``first_row + i``: it sees the table
        plus the batch's earlier documents. Per band, as ``candidates.bucket_pairs``: a
        bucket that fits ``max_bucket_size`` gives all its members; a crowded one is split
        by the next level's key, and one still crowded after ``split_depth`` levels gives
        its ``chain`` most recent members (``candidates.chain_pairs`` links each member to
        the next ones in document order: the arriving one is the last).

        What arrival order changes: a bucket is crowded when it holds more than
        ``max_bucket_size`` members counting the new document, so its first members paired
        with each other before it became crowded (the batch, seeing its final size, splits
        or chains all of it).
        """
        rules = self.rules
        docs = np.flatnonzero(valid)
        found = Found()
        if not len(docs):
            return found
        bands = keys.shape[2]
        entry_doc = np.repeat(docs, bands)  # entries: (document, band), in document order
        active = np.arange(len(entry_doc))  # entries whose bucket is crowded so far
        for level in range(rules.split_depth + 1):
            if not len(active):
                break
            last = level == rules.split_depth
            self._level(keys[docs, level].ravel(), entry_doc, active, first_row, last, found)
            active = found.crowded
        return found

    def _level(self, flat: np.ndarray, entry_doc: np.ndarray, active: np.ndarray,
               first_row: int, last: bool, found: Found) -> None:
        """One split level of ``query`` for the ``active`` entries: members of the buckets
        that fit go to ``found``, those of the last level's crowded buckets are chained,
        and ``found.crowded`` becomes the entries left crowded here."""
        cap, chain = self.rules.max_bucket_size, self.rules.chain
        # Earlier batch documents in the same bucket: the entries before this one among
        # equal keys, over all of the batch's entries (an earlier document in this bucket
        # may have found its own bucket uncrowded).
        order = np.argsort(flat, kind="stable")  # equal keys stay in document order
        sorted_keys = flat[order]
        doc_of = entry_doc[order]
        position = np.arange(len(sorted_keys))
        new_group = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
        group_start = np.maximum.accumulate(np.where(new_group, position, 0))
        at = np.empty(len(order), dtype=np.int64)
        at[order] = position
        here = np.sort(at[active])  # sorted positions: cache-friendly searches below
        keys_here = sorted_keys[here]
        earlier = here - group_start[here]
        lookups = []
        size = earlier.copy()
        for (level_keys, level_rows), directory in zip(self.levels, self.directories,
                                                       strict=True):
            if directory is None:
                lo = np.searchsorted(level_keys, keys_here, side="left")
                count = np.searchsorted(level_keys, keys_here, side="right") - lo
            else:
                lo = radix_search(level_keys, directory, keys_here, "left")
                count = radix_search(level_keys, directory, keys_here, "right") - lo
            lookups.append((level_rows, lo, count))
            size += count
        fits = size + 1 <= cap  # the bucket holds the new document too
        owner = doc_of[here]
        take = np.where(fits, earlier, 0)
        found.add(np.repeat(owner, take), first_row + ranges(doc_of, here - take, take))
        for level_rows, lo, count in lookups:
            take = np.where(fits, count, 0)
            found.add(np.repeat(owner, take), ranges(level_rows, lo, take))
        crowded = ~fits
        found.crowded = order[here[crowded]]
        if not last or chain <= 0 or not crowded.any():
            return
        # Still crowded after the last split: the ``chain`` most recent members (each
        # source's last ones, rows ascending within a key), then the ``chain`` latest.
        owner = owner[crowded]
        entry = np.arange(len(owner))
        take = np.minimum(earlier[crowded], chain)
        entries = [np.repeat(entry, take)]
        rows = [first_row + ranges(doc_of, here[crowded] - take, take)]
        for level_rows, lo, count in lookups:
            take = np.minimum(count[crowded], chain)
            entries.append(np.repeat(entry, take))
            rows.append(ranges(level_rows, (lo + count)[crowded] - take, take))
        entry_of, row = np.concatenate(entries), np.concatenate(rows)
        latest = np.lexsort((-row, entry_of))
        rank = np.arange(len(latest)) - np.searchsorted(entry_of[latest], entry_of[latest])
        keep = latest[rank < chain]
        found.chain(owner[entry_of[keep]], row[keep])


class Found:
    """What ``BandIndex.query`` found: (document, row) pairs from buckets that fit, one
    per shared bucket, and from chains (kept whatever the caps, as ``lsh_pairs`` keeps
    ``chain_pairs``)."""

    def __init__(self) -> None:
        self.docs: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.chain_docs: list[np.ndarray] = []
        self.chain_rows: list[np.ndarray] = []
        self.crowded = np.empty(0, dtype=np.int64)

    def add(self, docs: np.ndarray, rows: np.ndarray) -> None:
        self.docs.append(docs)
        self.rows.append(rows)

    def chain(self, docs: np.ndarray, rows: np.ndarray) -> None:
        self.chain_docs.append(docs)
        self.chain_rows.append(rows)

    def pairs(self, first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, row, shared buckets) of the buckets that fit, sorted."""
        return _packed(self.docs, self.rows, first_row, counts=True)

    def chained(self, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """(document, row) of the chains, sorted."""
        doc, row, _ = _packed(self.chain_docs, self.chain_rows, first_row, counts=False)
        return doc, row


def _packed(docs: list[np.ndarray], rows: list[np.ndarray], first_row: int, counts: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (document, row) pairs, sorted, and how often each occurs (``counts``)."""
    nothing = np.empty(0, dtype=np.int64)
    if not docs:
        return nothing, nothing, nothing
    doc, row = np.concatenate(docs), np.concatenate(rows)
    own = row == first_row + doc  # only on a 64-bit key collision between two buckets
    packed = (doc[~own] << ROW_BITS) | row[~own]
    if counts:
        pairs, shared = np.unique(packed, return_counts=True)
    else:
        pairs, shared = candidates.unique_sorted(packed), nothing
    return pairs >> ROW_BITS, pairs & ((1 << ROW_BITS) - 1), shared


def _partners(table: BandIndex, keys: np.ndarray, valid: np.ndarray, first_row: int,
              limit: int | None) -> np.ndarray:
    """Packed (document << ROW_BITS | row) candidates of one signal, as ``lsh_pairs`` keeps
    them: pairs sharing ``min_collisions`` buckets, each document's ``limit`` strongest
    (``candidates.strongest_entries``: most shared buckets, ties the lower row), chains.

    The batch keeps a pair that either side ranks among its strongest; here only the new
    document ranks (its partners' rankings are not kept, and would change with each add).
    """
    found = table.query(keys, valid, first_row)
    doc, row, shared = found.pairs(first_row)
    keep = shared >= table.rules.min_collisions
    doc, row, shared = doc[keep], row[keep], shared[keep]
    if limit is not None and len(doc):
        chosen = candidates.strongest_entries(doc, row, shared, limit,
                                              first_row + len(valid))
        doc, row = doc[chosen], row[chosen]
    chain_doc, chain_row = found.chained(first_row)
    return np.concatenate([(doc << ROW_BITS) | row, (chain_doc << ROW_BITS) | chain_row])


def lookup(copies_table: BandIndex, events_table: BandIndex, copy_keys: np.ndarray,
           has_copy: np.ndarray, event_keys: np.ndarray, has_event: np.ndarray,
           first_row: int, events_limit: int | None) -> list[np.ndarray]:
    """Per new article (row ``first_row + i``), the sorted rows of its candidates: copies
    and events partners under each table's ``Rules`` (``events_limit``, the index's own
    cap, in place of the events ``max_per_doc``). Each article sees the index and the
    batch's articles before it.
    """
    packed = candidates.unique_sorted(np.concatenate([
        _partners(copies_table, copy_keys, has_copy, first_row,
                  copies_table.rules.max_per_doc),
        _partners(events_table, event_keys, has_event, first_row, events_limit),
    ]))
    doc = packed >> ROW_BITS
    bounds = np.searchsorted(doc, np.arange(1, len(copy_keys)))
    return np.split(packed & ((1 << ROW_BITS) - 1), bounds)
