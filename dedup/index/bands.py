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

from dedup import candidates, copies, jit
from dedup.candidates import spans

# Split min-hashes are packed into one uint64 per entry, 32 bits each: two levels at most.
MAX_SPLIT_DEPTH = 2
_SPLIT_BITS = 32
# The bits of a packed split that a sub-bucket at each split level shares.
_LEVEL_MASKS = (np.uint64(0), np.uint64(0xFFFFFFFF00000000), np.uint64(0xFFFFFFFFFFFFFFFF))


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

    def __post_init__(self) -> None:
        if not 0 <= self.split_depth <= MAX_SPLIT_DEPTH:
            raise ValueError(f"StoryIndex splits a crowded bucket by 0 to {MAX_SPLIT_DEPTH} "
                             f"further min-hashes, not {self.split_depth}: set "
                             f"events_split_depth to at most {MAX_SPLIT_DEPTH}")

    @classmethod
    def of(cls, options: Mapping[str, Any], shape: tuple[int, int]) -> Rules:
        """The rules of ``candidates.lsh_pairs(**options)``; ``shape``: its (bands, rows),
        ``candidates.lsh_params`` of ``options["threshold"]``."""
        bands, rows = shape
        return cls(bands, rows, options["max_bucket_size"], options.get("chain", 0),
                   options.get("split_depth", 0), options.get("min_collisions", 1),
                   options.get("max_per_doc"))

    def keys(self, sigs: np.ndarray) -> np.ndarray:
        """Each document's bucket keys, (documents, 1 + split_depth, bands): the band's key
        (``copies.signature_keys`` of its rows of min-hashes; equal rows, equal keys, up to
        a 2^-64 collision, and each band starts from its own constant so bands never share
        a key), then the min-hashes that split a crowded bucket of the band
        (``candidates.split_columns``), one level each."""
        n, bands, rows = len(sigs), self.bands, self.rows
        cube = sigs[:, : bands * rows].reshape(n, bands, rows)
        band_start = copies.signature_keys(np.arange(bands, dtype=np.uint32)[:, None])
        out = np.empty((n, self.split_depth + 1, bands), dtype=np.uint64)
        out[:, 0] = copies.signature_keys(cube, band_start)
        for band in range(bands if self.split_depth else 0):
            split = candidates.split_columns(sigs, band, bands, rows, self.split_depth)
            assert split is not None
            out[:, 1:, band] = split
        return out


# A tier: band keys, split min-hashes packed (``pack_split``; empty without split levels)
# and rows, sorted by key, then split, then row.
Tier = tuple[np.ndarray, np.ndarray, np.ndarray]
ROW_BITS = 40  # (document, row) pairs are packed as document << 40 | row
_NO_SPLIT = np.empty(0, dtype=np.uint64)


def empty_tier() -> Tier:
    """A tier with no entries."""
    return np.empty(0, dtype=np.uint64), _NO_SPLIT, np.empty(0, dtype=np.int64)


def pack_split(keys: np.ndarray) -> np.ndarray:
    """The split min-hashes of ``Rules.keys`` (``keys[:, 1:]``) as one uint64 per (document,
    band), document-major: level 1's in the high 32 bits, level 2's in the low. Sorted by
    it, a sub-bucket at any level is one slice of its bucket."""
    packed = np.zeros(keys.shape[0] * keys.shape[2], dtype=np.uint64)
    for level in range(1, keys.shape[1]):
        shift = np.uint64(_SPLIT_BITS * (MAX_SPLIT_DEPTH - level))
        packed |= (keys[:, level].ravel() & np.uint64(0xFFFFFFFF)) << shift
    return packed


def entries(rows: np.ndarray, keys: np.ndarray) -> Tier:
    """``Rules.keys`` of documents ``rows`` (ascending) as tier entries, one per document
    and band, sorted."""
    band_keys = keys[:, 0].ravel()
    entry_rows = np.repeat(rows.astype(np.int64), keys.shape[2])
    if keys.shape[1] == 1:
        order = np.argsort(band_keys, kind="stable")  # rows ascend already
        return band_keys[order], _NO_SPLIT, entry_rows[order]
    split = pack_split(keys)
    order = np.lexsort((entry_rows, split, band_keys))
    return band_keys[order], split[order], entry_rows[order]


_RADIX_BITS = 16
_RADIX_SHIFT = np.uint64(64 - _RADIX_BITS)
_RADIX_MIN = 1 << 18  # tiers this large get a directory


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
    return bounded_search(keys, directory[bucket], directory[bucket + 1], queries, side)


_SEARCH_WORK = 1_000  # numpy nanoseconds per bounded search (a pass per step, ~15 steps)


def bounded_search(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, queries: np.ndarray,
                   side: str) -> np.ndarray:
    """``lo[i] + np.searchsorted(values[lo[i]:hi[i]], queries[i], side)`` for every ``i``
    (each slice sorted), all at once, a step of binary search per pass over the searches
    not yet done (slices differ in length by orders of magnitude: a crowded bucket's
    thousands of members beside empty slices). ``kernels.bounded_search`` once loaded."""
    compiled = jit.kernels(len(lo) * _SEARCH_WORK)
    if compiled is not None:
        found = np.empty(len(lo), dtype=np.int64)
        compiled.bounded_search(values, lo.astype(np.int64), hi.astype(np.int64),
                                queries.astype(values.dtype), side == "left", found)
        return found
    out = lo.copy()
    todo = np.flatnonzero(lo < hi)
    lo, hi, queries = lo[todo], hi[todo], queries[todo]
    going = np.ones(len(todo), dtype=bool)
    while len(todo):
        mid = (lo + hi) >> 1
        value = values[np.where(going, mid, 0)]
        right = going & ((value < queries) if side == "left" else (value <= queries))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(going & ~right, mid, hi)
        going = lo < hi
        if 2 * np.count_nonzero(going) < len(going):  # most are done: drop them
            out[todo[~going]] = lo[~going]
            todo, lo, hi, queries = todo[going], lo[going], hi[going], queries[going]
            going = going[going]
    out[todo] = lo
    return out


def ranges(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[i] : starts[i] + lengths[i]] for every i, concatenated."""
    return values[spans(starts, lengths)]


class BandIndex:
    """LSH buckets as sorted tables in three tiers: main, recent and small.

    Why not datasketch's dict-of-sets storage: one Python set per bucket costs ~1 KB per
    article, inserting 20k articles took 13 s and reopening 100k would rebuild for a
    minute; sorted tables cost 16 bytes per (article, band), 24 when the rules split, rebuild
    with one sort and answer a whole batch with a few ``searchsorted`` calls over its
    sorted keys (per-article lookups were a third of ``add``). Entries are sorted by band
    key, then split min-hashes, then row: a split level's sub-bucket is a slice of its
    bucket, found by binary search inside it, and a sub-bucket's last rows are its most
    recent. A batch's entries are merged into ``small``, which is merged into ``recent``
    past ``SMALL`` entries, which is merged into ``main`` when it reaches a quarter of it:
    inserts stay amortised O(1) (merged entries are always newer than those of the tier).
    """

    SMALL = 1 << 16

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.tiers: list[Tier] = []
        self.directories: list[np.ndarray | None] = []
        self._set_tiers([empty_tier() for _ in range(3)])

    def _set_tiers(self, tiers: list[Tier]) -> None:
        """Install new tier tables; large ones changed get a new radix directory."""
        directories: list[np.ndarray | None] = []
        for k, (keys, _, _) in enumerate(tiers):
            if len(keys) < _RADIX_MIN:
                directories.append(None)
            elif k < len(self.tiers) and keys is self.tiers[k][0]:
                directories.append(self.directories[k])
            else:
                directories.append(radix_directory(keys))
        self.tiers, self.directories = tiers, directories

    def build(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Replace the tables: row ``rows[i]`` has keys ``keys[i]`` (``Rules.keys``)."""
        self._set_tiers([entries(rows, keys), empty_tier(), empty_tier()])

    def _slices(self, k: int, keys: np.ndarray, split: np.ndarray, depth: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Tier ``k``'s slice of each query's sub-bucket at split level ``depth`` (0: the
        band's bucket), as (lo, hi); ``split``: the queries' packed split min-hashes."""
        tier_keys, tier_split, _ = self.tiers[k]
        directory = self.directories[k]
        if directory is None:
            lo = np.searchsorted(tier_keys, keys, side="left")
            hi = np.searchsorted(tier_keys, keys, side="right")
        else:
            lo = radix_search(tier_keys, directory, keys, "left")
            hi = radix_search(tier_keys, directory, keys, "right")
        if depth:
            mask = _LEVEL_MASKS[depth]
            lo, hi = (bounded_search(tier_split, lo, hi, split & mask, "left"),
                      bounded_search(tier_split, lo, hi, split | ~mask, "right"))
        return lo, hi

    def _merge(self, k: int, new: Tier) -> Tier:
        """Tier ``k`` with the sorted, newer entries ``new`` merged in, order kept."""
        keys, split, rows = self.tiers[k]
        if self.rules.split_depth:  # after the equal (key, split) entries: new rows are newer
            lo, hi = self._slices(k, new[0], new[1], 0)
            at = bounded_search(split, lo, hi, new[1], "right")
            split = np.insert(split, at, new[1])
        else:
            at = np.searchsorted(keys, new[0], side="right")
        return np.insert(keys, at, new[0]), split, np.insert(rows, at, new[2])

    def insert(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Add documents: row ``rows[i]`` has keys ``keys[i]`` (``Rules.keys``)."""
        if not len(rows):
            return
        main, recent, _ = self.tiers
        small = self._merge(2, entries(rows, keys))
        if len(small[0]) > self.SMALL:
            recent, small = self._merge(1, small), empty_tier()
        if len(recent[0]) > max(self.SMALL, len(main[0]) // 4):
            main, recent = self._merge(0, recent), empty_tier()
        self._set_tiers([main, recent, small])

    def remove(self, rows: np.ndarray) -> None:
        tiers = []
        for keys, split, tier_rows in self.tiers:
            keep = ~np.isin(tier_rows, rows)
            tiers.append((keys[keep], split[keep] if len(split) else split, tier_rows[keep]))
        self._set_tiers(tiers)

    def query(self, keys: np.ndarray, valid: np.ndarray, first_row: int) -> Found:
        """Candidates of a batch of new documents, as if each were queried, then inserted.

        Document ``i`` has keys ``keys[i]`` (``Rules.keys``; ``valid[i]`` False: no
        signature, never a candidate) and will be row ``first_row + i``: it sees the table
        plus the batch's earlier documents. Per band, as ``candidates.bucket_pairs``: a
        bucket that fits ``max_bucket_size`` gives all its members; a crowded one is split
        by the next split min-hash, and one still crowded after ``split_depth`` levels
        gives its ``chain`` most recent members (``candidates.chain_pairs`` links each
        member to the next ones in document order: the arriving one is the last).

        What arrival order changes: a bucket is crowded when it holds more than
        ``max_bucket_size`` members counting the new document, so its first members paired
        with each other before it became crowded (the batch, seeing its final size, splits
        or chains all of it).
        """
        found = Found()
        docs = np.flatnonzero(valid)
        if not len(docs):
            return found
        band_keys = keys[docs, 0].ravel()  # entries: (document, band), in document order
        split = pack_split(keys[docs])
        entry_doc = np.repeat(docs, keys.shape[2])
        active = np.arange(len(entry_doc))  # entries whose bucket is crowded so far
        # Each entry's slice of each tier at the level reached: a split level narrows it.
        slices = [(np.zeros(len(active), dtype=np.int64), np.zeros(len(active), dtype=np.int64))
                  for _ in self.tiers]
        for depth in range(self.rules.split_depth + 1):
            if not len(active):
                break
            self._level(band_keys, split, depth, entry_doc, active, slices, first_row, found)
            active = found.crowded
        return found

    def _narrow(self, k: int, keys: np.ndarray, split: np.ndarray, depth: int,
                bounds: tuple[np.ndarray, np.ndarray], at: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """``_slices`` for the entries ``at`` of ``query``, from their slices one level up
        (``bounds``, updated in place)."""
        if not depth:
            lo, hi = self._slices(k, keys, split, 0)
        else:
            tier_split, mask = self.tiers[k][1], _LEVEL_MASKS[depth]
            lo, hi = bounds[0][at], bounds[1][at]
            lo, hi = (bounded_search(tier_split, lo, hi, split & mask, "left"),
                      bounded_search(tier_split, lo, hi, split | ~mask, "right"))
        bounds[0][at], bounds[1][at] = lo, hi
        return lo, hi

    def _level(self, band_keys: np.ndarray, split: np.ndarray, depth: int,
               entry_doc: np.ndarray, active: np.ndarray,
               bounds: list[tuple[np.ndarray, np.ndarray]], first_row: int, found: Found
               ) -> None:
        """Split level ``depth`` of ``query`` for the ``active`` entries: members of the
        sub-buckets that fit go to ``found``, those of the last level's crowded ones are
        chained, and ``found.crowded`` becomes the entries left crowded here."""
        cap, chain, last = self.rules.max_bucket_size, self.rules.chain, self.rules.split_depth
        # Earlier batch documents in the same sub-bucket: the entries before this one among
        # equal (key, split columns), over all of the batch's entries (an earlier document
        # in this sub-bucket may have found its own bucket uncrowded).
        columns = [band_keys, split & _LEVEL_MASKS[depth]] if depth else [band_keys]
        order = np.lexsort((np.arange(len(band_keys)), *columns[::-1]))
        doc_of = entry_doc[order]
        position = np.arange(len(order))
        new_group = np.zeros(len(order), dtype=bool)
        new_group[0] = True
        for column in columns:
            ordered = column[order]
            new_group[1:] |= ordered[1:] != ordered[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, position, 0))
        at = np.empty(len(order), dtype=np.int64)
        at[order] = position
        here = np.sort(at[active])  # sorted positions: cache-friendly searches below
        entry = order[here]
        query_keys = band_keys[entry]
        query_split = split[entry] if depth else split
        earlier = here - group_start[here]
        slices = [self._narrow(k, query_keys, query_split, depth, bounds[k], entry)
                  for k in range(len(self.tiers))]
        size = earlier + sum(hi - lo for lo, hi in slices)
        fits = size + 1 <= cap  # the sub-bucket holds the new document too
        owner = doc_of[here]
        take = np.where(fits, earlier, 0)
        found.add(np.repeat(owner, take), first_row + ranges(doc_of, here - take, take))
        for (_, _, tier_rows), (lo, hi) in zip(self.tiers, slices, strict=True):
            take = np.where(fits, hi - lo, 0)
            found.add(np.repeat(owner, take), ranges(tier_rows, lo, take))
        crowded = ~fits
        found.crowded = order[here[crowded]]
        if depth < last or chain <= 0 or not crowded.any():
            return
        # Still crowded after the last split: the ``chain`` most recent members (each
        # source's last ones: rows ascend within a sub-bucket), then the ``chain`` latest.
        owner = owner[crowded]
        entry = np.arange(len(owner))
        take = np.minimum(earlier[crowded], chain)
        entry_parts = [np.repeat(entry, take)]
        row_parts = [first_row + ranges(doc_of, here[crowded] - take, take)]
        for (_, _, tier_rows), (lo, hi) in zip(self.tiers, slices, strict=True):
            take = np.minimum((hi - lo)[crowded], chain)
            entry_parts.append(np.repeat(entry, take))
            row_parts.append(ranges(tier_rows, hi[crowded] - take, take))
        entry_of, row = np.concatenate(entry_parts), np.concatenate(row_parts)
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
