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
identical one-sentence ledes of two stories link together, and each goes back to its own.
Only short articles move: a long article that opens like a cluster but was linked apart
was judged on all its words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dedup.config import ClusterConfig


@dataclass(frozen=True, slots=True)
class Openings:
    """Per article: a 64-bit key of its first words (0: too few words) and whether it is
    short enough to be an excerpt."""

    keys: np.ndarray
    short: np.ndarray

    @staticmethod
    def of(token_lists: Sequence[Sequence[str]], config: ClusterConfig) -> Openings:
        """Keys of normalized token lists (boilerplate already stripped)."""
        k = config.excerpt_opening_tokens
        keys = np.zeros(len(token_lists), dtype=np.uint64)
        short = np.zeros(len(token_lists), dtype=bool)
        if config.excerpt_max_tokens <= 0 or k <= 0:
            return Openings(keys, short)
        for i, tokens in enumerate(token_lists):
            if len(tokens) >= k:
                keys[i] = opening_key(tokens[:k])
                short[i] = len(tokens) <= config.excerpt_max_tokens
        return Openings(keys, short)

    @staticmethod
    def stack(parts: Sequence[Openings]) -> Openings:
        """One record from per-chunk records, in chunk order."""
        if not parts:
            return Openings(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool))
        return Openings(np.concatenate([p.keys for p in parts]),
                        np.concatenate([p.short for p in parts]))


def opening_key(tokens: Sequence[str]) -> int:
    """A non-zero 64-bit key of a token sequence, the same in every process."""
    digest = hashlib.blake2b("\x00".join(tokens).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def targets(groups: Sequence[np.ndarray], openings: Openings, days: np.ndarray,
            max_days: float) -> np.ndarray:
    """Per row, the index of the group it joins; -1 where it stays.

    A row joins the group holding more than half of the longer articles with its opening
    published within ``max_days`` of it.
    Only rows of groups made wholly of short articles move, each on its own: identical
    one-sentence ledes of two stories link together, and each goes back to its own story.
    ``days`` is each row's publication day (NaN where unknown; an unknown date never rules
    a match out).
    """
    keys, short = openings.keys, openings.short
    dest = np.full(len(keys), -1, dtype=np.int64)
    if not len(groups):
        return dest
    rows = np.concatenate(groups)
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    label = np.empty(len(keys), dtype=np.int64)
    label[rows] = np.repeat(np.arange(len(groups)), sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    all_short = np.repeat(np.logical_and.reduceat(short[rows], starts), sizes)
    movable = rows[all_short & (keys[rows] != 0)]
    anchor = np.flatnonzero((keys != 0) & ~short)
    anchor = anchor[np.argsort(keys[anchor], kind="stable")]
    anchor_keys = keys[anchor]
    lo = np.searchsorted(anchor_keys, keys[movable], "left")
    hi = np.searchsorted(anchor_keys, keys[movable], "right")
    for r, a, b in zip(movable.tolist(), lo.tolist(), hi.tolist(), strict=True):
        found = anchor[a:b]
        if len(found) and not np.isnan(days[r]) and max_days >= 0:
            theirs = days[found]
            found = found[np.isnan(theirs) | (np.abs(theirs - days[r]) <= max_days)]
        joined, count = np.unique(label[found], return_counts=True)
        best = int(np.argmax(count)) if len(count) else -1
        if best >= 0 and 2 * count[best] > len(found):
            dest[r] = joined[best]
    return dest


def join(linked: Sequence[tuple[np.ndarray, np.ndarray]], dest: np.ndarray,
         score: Callable[[np.ndarray], np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``linked`` (rows, closeness) after ``targets``, rows sorted in each group.

    Closeness is a row's mean ``score`` (of (k, 2) row pairs) against the rest of its group:
    recomputed for a row that moved (against the group it joined) and for the rows left
    behind in a group that lost some; the others keep theirs.
    """
    incoming: dict[int, list[np.ndarray]] = {}
    for rows, _ in linked:
        go = dest[rows]
        for target in np.unique(go[go >= 0]).tolist():
            incoming.setdefault(target, []).append(rows[go == target])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for g, (rows, close) in enumerate(linked):
        stay = dest[rows] < 0
        if not stay.any():
            continue
        if not stay.all():
            rows = rows[stay]
            close = _mean_scores(rows, rows, score, exclude_self=True)
        if g in incoming:
            moved = np.concatenate(incoming[g])
            allrows = np.concatenate([rows, moved])
            order = np.argsort(allrows, kind="stable")
            close = np.concatenate([close, _mean_scores(moved, rows, score)])[order]
            rows = allrows[order]
        out.append((rows, close))
    return out


def _mean_scores(rows: np.ndarray, others: np.ndarray, score: Callable[[np.ndarray], np.ndarray],
                 exclude_self: bool = False) -> np.ndarray:
    """Each row's mean score against ``others`` (1.0 for a row with nobody to compare)."""
    if exclude_self and len(others) == 1:
        return np.ones(len(rows))
    pairs = np.stack([np.repeat(rows, len(others)), np.tile(others, len(rows))], axis=1)
    block = score(pairs).reshape(len(rows), len(others))
    if exclude_self:
        return (block.sum(axis=1) - np.diagonal(block)) / (len(others) - 1)
    return block.mean(axis=1)
