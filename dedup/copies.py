"""Copy groups: exact and near-exact copies of one text, collapsed to one node.

A wire story syndicated to hundreds of outlets is hundreds of articles with one text. Every
later stage (candidates, scoring, linkage) would see each of them, and their LSH buckets
overflow every cap: the biggest story of the day fell apart into singletons (#18). So
copies are grouped first, and later stages see one node per group, its representative,
which carries its members:

1. exact copies: equal copies signatures (the word 5-gram MinHash of the normalized text,
   after the boilerplate ``normalize`` strips, so the same text under two outlets'
   furniture is one), compared by a 64-bit key of the whole signature. Why the signature
   and not a hash of the text: every engine already has it (the index stores it, the
   Dask partitions compute it), so all three group alike; equal 5-gram sets are the same
   text but for the order of repeated passages;
2. near-exact copies (optional, ``CandidateConfig.copies_group_threshold``; batch engine
   only): representatives whose signatures agree on at least ``threshold`` of their
   min-hashes (estimated Jaccard), found by LSH at that threshold and verified pair by
   pair, joined transitively.

The representative of a group is its lowest row (the earliest in input order), so groups
are deterministic. Every member joins its representative's cluster. A future
``dedup dedupe`` (#21) keeps one row per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from dedup import candidates

_VERIFY_CHUNK = 100_000  # candidate pairs whose signatures are compared at once
# Highest LSH threshold asked of datasketch (above it, 128 min-hashes give fewer than two
# bands); stricter thresholds are applied by the verification.
_LSH_MAX = 0.9


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)


def signature_keys(signatures: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """64-bit key of each row of min-hashes (the last axis): equal rows, equal keys (and
    different rows collide with probability ~2^-64). A column at a time, so no row is copied.

    ``start``: the keys to continue from (broadcast to the rows; default one constant). A
    key continued with more columns is the key of the longer row, which is how
    ``dedup.index.bands`` keys an LSH band (a constant per band) and its split levels.
    """
    shape = signatures.shape[:-1] if signatures.ndim >= 2 else signatures.shape
    if start is None:
        keys = np.full(shape, _GOLDEN, dtype=np.uint64)
    else:
        keys = np.broadcast_to(np.asarray(start, dtype=np.uint64), shape).copy()
    with np.errstate(over="ignore"):
        for c in range(signatures.shape[-1] if signatures.ndim >= 2 else 0):
            keys ^= signatures[..., c].astype(np.uint64)
            keys *= _MIX
            keys ^= keys >> _SHIFT
    return keys


@dataclass(frozen=True, slots=True)
class CopyGroups:
    """``group[r]``: the representative row of row ``r``'s copy group (``group[r] == r``
    for a representative)."""

    group: np.ndarray
    # Representative of each row's exact copies (same text): what the merger collapses.
    # None: the groups are exact copies only (``group``).
    exact_group: np.ndarray | None = None

    @classmethod
    def none(cls, n: int) -> CopyGroups:
        """Every article its own group."""
        return cls(np.arange(n, dtype=np.int64))

    @property
    def exact(self) -> np.ndarray:
        """Representative row of each row's exact copies."""
        return self.group if self.exact_group is None else self.exact_group

    @property
    def representatives(self) -> np.ndarray:
        """Representative rows, ascending."""
        return np.flatnonzero(self.group == np.arange(len(self.group)))

    @property
    def sizes(self) -> np.ndarray:
        """Members per row's group, indexed by representative row (0 for other rows)."""
        return np.bincount(self.group, minlength=len(self.group)).astype(np.int64)

    @property
    def collapsed(self) -> int:
        """Articles that are not their group's representative."""
        return int(len(self.group) - len(self.representatives))

    def members(self, reps: np.ndarray) -> np.ndarray:
        """Every row whose representative is in ``reps``, ascending."""
        return np.flatnonzero(np.isin(self.group, reps))

    def expander(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows sorted by representative then row, where each representative's run starts):
        ``rows[starts[g]:starts[g + 1]]`` are the members of representative ``g`` (by row)."""
        order = np.argsort(self.group, kind="stable")
        starts = np.searchsorted(self.group[order], np.arange(len(self.group) + 1))
        return order, starts


def copy_groups(
    keys: np.ndarray,
    present: np.ndarray,
    signatures: np.ndarray | None = None,
    *,
    threshold: float | None = None,
    max_bucket_size: int = 100,
    chain: int = 2,
    threads: int = 1,
) -> CopyGroups:
    """Copy group of each article: exact copies by ``keys`` (``signature_keys``), then
    near-exact copies by ``signatures`` (estimated Jaccard >= ``threshold``; None: exact
    copies only).

    ``present`` False (no shingle: an empty text) keeps an article alone: empty texts say
    nothing, so they are no one's copies. ``max_bucket_size`` and ``chain`` bound the
    LSH as in ``candidates.lsh_pairs``; verification compares the full signatures.
    ``threads``: bands grouped on that many threads; the groups do not depend on it.
    """
    n = len(keys)
    group = np.arange(n, dtype=np.int64)
    rows = np.flatnonzero(present)
    if len(rows) > 1:
        order = rows[np.lexsort((rows, keys[rows]))]  # by key, then row
        first = np.concatenate(([True], keys[order][1:] != keys[order][:-1]))
        group[order] = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
    if threshold is None or signatures is None or len(rows) < 2:
        return CopyGroups(group)
    reps = np.zeros(n, dtype=bool)
    reps[rows] = group[rows] == rows
    pairs, _ = candidates.lsh_pairs(signatures, reps, threshold=min(threshold, _LSH_MAX),
                                    max_bucket_size=max_bucket_size, chain=chain,
                                    threads=threads)
    close = np.concatenate([
        np.mean(signatures[chunk[:, 0]] == signatures[chunk[:, 1]], axis=1) >= threshold
        for chunk in np.split(pairs, np.arange(_VERIFY_CHUNK, len(pairs), _VERIFY_CHUNK))
    ] or [np.empty(0, dtype=bool)])
    linked = pairs[close]
    if not len(linked):
        return CopyGroups(group, group)
    graph = sp.coo_matrix((np.ones(len(linked), dtype=np.int8), (linked[:, 0], linked[:, 1])),
                          shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    # Lowest row of each component (components hold representatives, or one other row).
    lowest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(lowest, labels, np.arange(n))
    near = lowest[labels]
    return CopyGroups(near[group], group)


def group_labels(keys: np.ndarray, present: np.ndarray, group: np.ndarray | None = None
                 ) -> list[str | None]:
    """Each article's copy group as a label (``copy_group`` in the assignments, #21): the
    16 hex digits of its representative's ``signature_keys`` key (``group``: each row's
    representative; None: every row its own, as exact-copies-only engines have it). Equal
    texts get equal labels in any run, engine or partitioning; an article with no text is
    nobody's copy: None."""
    rep_keys = keys if group is None else keys[group]
    return [f"{int(k):016x}" if p else None
            for k, p in zip(rep_keys.tolist(), present.tolist(), strict=True)]


def elect(exact: np.ndarray, days: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """``exact`` (each row's exact-copy representative) relabelled so that each group is
    represented by its earliest published member (undated last), then the smallest id: the
    version the merger reads, by the merger's own tie-break, so that which copy a story
    quotes does not depend on the order of the input."""
    rows = np.arange(len(exact))
    shared = np.flatnonzero(np.bincount(exact, minlength=len(exact))[exact] > 1)
    if not len(shared):
        return exact
    label, when = exact[shared], days[shared]
    rank = np.empty(len(shared), dtype=np.int64)
    rank[np.argsort(np.array([ids[r] for r in shared.tolist()], dtype=object),
                    kind="stable")] = np.arange(len(shared))
    undated = np.isnan(when)
    order = np.lexsort((rank, np.where(undated, 0.0, when), undated, label))
    first = order[np.r_[True, label[order][1:] != label[order][:-1]]]
    chosen = rows.copy()
    chosen[label[first]] = shared[first]
    return chosen[exact]


def copies_by_version(rows: np.ndarray, exact: np.ndarray, ids: Sequence[str]
                      ) -> dict[str, tuple[str, ...]]:
    """Among ``rows`` (one cluster), each distinct version's id -> its exact copies' ids
    (``exact``: each row's exact-copy representative), for ``merge.merge(copies=...)``."""
    out: dict[str, list[str]] = {}
    for row in rows.tolist():
        rep = int(exact[row])
        if rep != row:
            out.setdefault(ids[rep], []).append(ids[row])
    return {version: tuple(sorted(found)) for version, found in sorted(out.items())}


def expand(linked: Sequence[tuple[np.ndarray, np.ndarray]], groups: CopyGroups
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Clusters of representatives (rows, each row's closeness) -> clusters of every member.

    Each member takes its representative's closeness; members come sorted by row. Groups
    of one article pass through unchanged (the same arrays).
    """
    if not groups.collapsed:
        return list(linked)
    order, starts = groups.expander()
    out = []
    for rows, close in linked:
        counts = starts[rows + 1] - starts[rows]
        if np.all(counts == 1):
            out.append((rows, close))
            continue
        members = order[candidates.spans(starts[rows], counts)]
        closeness = np.repeat(np.broadcast_to(close, rows.shape), counts)
        at = np.argsort(members, kind="stable")
        out.append((members[at], closeness[at]))
    return out
