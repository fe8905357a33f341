"""Excerpts join the story they were cut from.

A teaser, an RSS summary or a one-sentence lede carries the first words of a story and
little else. Its TF-IDF cosine with the full article is low (a one-sentence lede of a wire
story scores about 0.10 against it, under the 0.13 link threshold), so linkage leaves it
alone, yet its words are the story's opening words, verbatim.

After linkage, each article of a cluster made only of short articles joins the cluster
holding most of the longer articles that open with its words and were published within
``excerpt_max_days`` of it, if that cluster holds more than half of them. Without such a
majority it stays: an opening shared by several stories (a stock phrase, a recurring
event) proves nothing, and a guess would chain them. Each article decides for itself:
similar one-line ledes of two stories link together, and each goes back to its own
(verbatim copies are one node, whose span of days covers all of them: they move together
or stay).
Only short articles move: a long article that opens like a cluster but was linked apart
was judged on all its words.

The batch and Dask engines and ``StoryIndex`` run it the same way, inside the linkage of
a connected component (``clustering.link_component``): ``edges`` first ties each excerpt to
a few longer articles with its opening (a number of edges linear in the excerpts), so an
excerpt is in the component of the story it may join, and ``regroup`` then moves it after
linkage. The index (``dedup.index.openings``) stores each article's opening, calls
``edges`` on each add over the new articles and the stored ones with their openings (the
ties become stored edges of the graph that bounds its re-linkage), and again over each
neighbourhood it re-links, whose ``Openings`` go to ``link_components``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dedup.config import ClusterConfig


@dataclass(frozen=True, slots=True)
class Openings:
    """Per article: a 64-bit key of its first words (0: too few words), whether it is short
    enough to be an excerpt, and the first and last publication day of its copy group (an
    article and its verbatim copies are one node; NaN where unknown)."""

    keys: np.ndarray
    short: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @staticmethod
    def of(token_lists: Sequence[Sequence[str]], config: ClusterConfig) -> Openings:
        """Keys of normalized token lists (boilerplate already stripped); days unknown."""
        k = config.excerpt_opening_tokens
        keys = np.zeros(len(token_lists), dtype=np.uint64)
        short = np.zeros(len(token_lists), dtype=bool)
        days = np.full(len(token_lists), np.nan)
        if config.excerpt_max_tokens > 0 and k > 0:
            for i, tokens in enumerate(token_lists):
                # A stub too short to have an opening is still short: it does not hold
                # back an excerpt grouped with it.
                short[i] = len(tokens) <= config.excerpt_max_tokens
                if len(tokens) >= k:
                    keys[i] = opening_key(tokens[:k])
        return Openings(keys, short, days, days)

    @staticmethod
    def stack(parts: Sequence[Openings]) -> Openings:
        """One record from per-chunk records, in chunk order."""
        fields = ("keys", "short", "first", "last")
        if not parts:
            return Openings(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool),
                            np.zeros(0), np.zeros(0))
        return Openings(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def rows(self, rows: np.ndarray) -> Openings:
        """The record of these rows, in this order."""
        return Openings(self.keys[rows], self.short[rows], self.first[rows], self.last[rows])

    def dated(self, days: np.ndarray, group: np.ndarray | None = None) -> Openings:
        """The same keys with publication days; with ``group`` (each row's copy group
        representative), each representative spans its members' days."""
        first = np.asarray(days, dtype=np.float64).copy()
        last = first.copy()
        if group is not None:
            known = ~np.isnan(first)
            np.fmin.at(first, group[known], first[known])
            np.fmax.at(last, group[known], last[known])
        return Openings(self.keys, self.short, first, last)


def opening_key(tokens: Sequence[str]) -> int:
    """A non-zero 64-bit key of a token sequence, the same in every process."""
    digest = hashlib.blake2b("\x00".join(tokens).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


# Longer articles each excerpt is tied to. One puts it in a story's component; a few more
# let two stories that share the opening meet there, where no majority leaves it alone.
EDGES_PER_EXCERPT = 4

# A key with more openers than this is read through its window of days (``_Openers``);
# fewer are filtered directly, which is cheaper than sorting them.
_DIRECT = 256


class _Openers:
    """Longer articles (rows) by opening key, then first day (undated last within a key), so
    an excerpt reads the openers within its window of days, not every article with its
    opening: thousands of articles a year apart can share a stock first sentence."""

    def __init__(self, rows: np.ndarray, openings: Openings) -> None:
        keys, first = openings.keys[rows], openings.first[rows]
        order = np.lexsort((rows, first, keys))
        self.rows = rows[order]
        self.keys = keys[order]
        self.first = first[order]
        self.last = openings.last[self.rows]
        self.openings = openings
        self.starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        spans = np.nan_to_num(self.last - self.first)
        self.span = np.maximum.reduceat(spans, self.starts) if len(rows) else spans

    def near(self, row: int, max_days: float) -> np.ndarray:
        """The openers with ``row``'s opening published within ``max_days`` of it (copy
        groups' spans of days; an unknown date is near)."""
        return self.window(row, max_days)[0]

    def window(self, row: int, max_days: float) -> tuple[np.ndarray, tuple[int, int] | None]:
        """``near`` and, when the rows are exactly a slice of this index, its bounds: two
        excerpts with the same bounds have the same openers."""
        key = self.keys.dtype.type(self.openings.keys[row])
        lo = int(np.searchsorted(self.keys, key, "left"))
        hi = int(np.searchsorted(self.keys, key, "right"))
        first, last = self.openings.first[row], self.openings.last[row]
        if hi - lo <= _DIRECT or np.isnan(first) or max_days < 0:
            return _near(self.rows[lo:hi], self.openings, row, max_days), None
        span = self.span[np.searchsorted(self.starts, lo)]
        days = self.first[lo:hi]
        dated = lo + int(np.searchsorted(days, np.inf, "right"))  # NaN sorts last
        a = lo + int(np.searchsorted(days, first - max_days - span, "left"))
        b = lo + int(np.searchsorted(days, last + max_days, "right"))
        if dated == hi and span == 0:  # points in time, all dated: the slice is the answer
            return self.rows[a:b], (a, b)
        inside = self.rows[a:b][self.last[a:b] >= first - max_days]
        return np.concatenate((inside, self.rows[dated:hi])), None

def edges(openings: Openings, eligible: np.ndarray, max_days: float,
          sizes: np.ndarray | None = None) -> np.ndarray:
    """(k, 2) row pairs (excerpt, longer article with its opening, published within
    ``max_days``) among ``eligible`` rows (copy groups' representatives).

    Each excerpt is tied to at most ``EDGES_PER_EXCERPT`` of them: the largest copy groups
    first (``sizes``, indexed by row), then the lowest rows. Why the largest: the most
    syndicated version is the wire original, in the story's main cluster, while the lowest
    rows may be a fragment linkage split off.
    """
    keys, short = openings.keys, openings.short
    has_key = eligible & (keys != 0)
    anchor = np.flatnonzero(has_key & ~short)
    weight = np.ones(len(keys), dtype=np.int64) if sizes is None else sizes
    anchor = anchor[np.lexsort((anchor, -weight[anchor], keys[anchor]))]
    rank = np.empty(len(keys), dtype=np.int64)
    rank[anchor] = np.arange(len(anchor))
    anchor_keys = keys[anchor]
    openers = _Openers(anchor, openings)
    excerpt = np.flatnonzero(has_key & short)
    lo = np.searchsorted(anchor_keys, keys[excerpt], "left")
    hi = np.searchsorted(anchor_keys, keys[excerpt], "right")
    out: list[np.ndarray] = []
    for e, a, b in zip(excerpt.tolist(), lo.tolist(), hi.tolist(), strict=True):
        if a == b:
            continue
        # Most openers of a crowded opening are near: the first few in order answer.
        found = _near(anchor[a:min(b, a + _DIRECT)], openings, e, max_days)[:EDGES_PER_EXCERPT]
        if len(found) < EDGES_PER_EXCERPT and b - a > _DIRECT:
            near = openers.near(e, max_days)
            found = near[np.argsort(rank[near], kind="stable")[:EDGES_PER_EXCERPT]]
        out.append(np.stack([np.full(len(found), e), found], axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def _near(rows: np.ndarray, openings: Openings, row: int, max_days: float) -> np.ndarray:
    """``rows`` published within ``max_days`` of ``row`` (copy groups' spans of days; an
    unknown date is near)."""
    first, last = openings.first[row], openings.last[row]
    if np.isnan(first) or max_days < 0:
        return rows
    lo, hi = openings.first[rows], openings.last[rows]
    return rows[np.isnan(lo) | ((lo <= last + max_days) & (hi >= first - max_days))]


def regroup(groups: Sequence[np.ndarray], openings: Openings, max_days: float,
            limit: int | None = None) -> list[np.ndarray]:
    """Linkage groups (arrays of rows indexing ``openings``) after excerpts moved: each
    group sorted, groups ordered by first row.

    A row of a group made only of short articles joins the group holding more than half of
    the longer articles with its opening published within ``max_days`` of it; each row
    decides for itself, so similar one-line ledes of two stories part. No group grows
    past ``limit`` rows: cohesion needs a group's whole similarity block (the same bound as
    ``ClusterConfig.max_component_size``); excerpts beyond it stay, lowest rows first in.
    """
    if len(groups) < 2:
        return list(groups)
    keys, short = openings.keys, openings.short
    label = np.empty(len(keys), dtype=np.int64)
    for g, rows in enumerate(groups):
        label[rows] = g
    rows = np.concatenate(groups)
    anchor = rows[(keys[rows] != 0) & ~short[rows]]
    if not len(anchor):
        return list(groups)
    openers = _Openers(anchor, openings)
    sizes = [len(g) for g in groups]
    moves: dict[int, int] = {}
    decided: dict[tuple[int, int], int | None] = {}  # a window of openers -> its majority
    for group in groups:
        if not short[group].all():
            continue
        for r in group.tolist():
            if keys[r] == 0:
                continue
            found, bounds = openers.window(r, max_days)
            if bounds is not None and bounds in decided:
                target = decided[bounds]
            else:
                target = _majority(label[found])
                if bounds is not None:
                    decided[bounds] = target
            if target is None or (limit is not None and sizes[target] >= limit):
                continue
            moves[r] = target
            sizes[target] += 1
    if not moves:
        return list(groups)
    label[np.fromiter(moves, dtype=np.int64)] = np.fromiter(moves.values(), dtype=np.int64)
    rows = rows[np.lexsort((rows, label[rows]))]
    cuts = np.flatnonzero(np.diff(label[rows])) + 1
    return sorted(np.split(rows, cuts), key=lambda g: int(g[0]))


def _majority(labels: np.ndarray) -> int | None:
    """The label more than half of ``labels`` carry, if one does."""
    joined, count = np.unique(labels, return_counts=True)
    if len(count) and 2 * count.max() > len(labels):
        return int(joined[np.argmax(count)])
    return None
