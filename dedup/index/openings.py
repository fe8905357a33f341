"""Excerpts in ``StoryIndex`` (#19): the batch's rule (``dedup.excerpts``) run on what the
index holds, through the same two functions.

Each row's opening (``excerpts.Openings``: a key of its first ``excerpt_opening_tokens``
tokens, and whether it is short enough to be an excerpt) is kept in the ``openings`` table,
indexed by key, and in memory by row (``OpeningRows``). Days are the rows' publication
dates; a row with verbatim copies (``State.copy_rows``) spans its copies' days, as the
batch's copy group does.

- On add (``tie``): ``excerpts.edges`` over the batch's rows with an opening and the stored
  rows with their keys (stored longer articles for the batch's excerpts; stored excerpts
  still tied to fewer than ``EDGES_PER_EXCERPT`` openers for the batch's longer articles).
  Its ties with a new row become stored edges, so an excerpt is in its story's re-linkage
  neighbourhood, as the batch's ties put it in its story's component.
- On re-linkage (``linkage``): ``excerpts.edges`` over the neighbourhood joins each
  excerpt's component to its story's (the batch adds its ties at ``edge_threshold``), and
  the neighbourhood's ``Openings`` go to ``clustering.link_components``, whose
  ``excerpts.regroup`` moves excerpts after linkage as in the batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from dedup import excerpts
from dedup.config import ClusterConfig

if TYPE_CHECKING:  # state holds an ``OpeningRows``
    from dedup.index.state import State

# Rows absent from the table have no opening and are not short (the rule off stores none).
SCHEMA = """
CREATE TABLE IF NOT EXISTS openings (
    row INTEGER PRIMARY KEY, key INTEGER NOT NULL, short INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS openings_key ON openings (key, short)
"""

_DAY = 86400.0
_SIGN = 1 << 63


class OpeningRows:
    """Every live row's opening key (uint64, 0: none) and short flag, by row."""

    def __init__(self) -> None:
        self.key = np.zeros(0, dtype=np.uint64)
        self.short = np.zeros(0, dtype=bool)

    def set(self, rows: np.ndarray, keys: np.ndarray, short: np.ndarray) -> None:
        """Record rows' openings; rows never set have none (the arrays grow with zeros)."""
        if len(rows) and rows.max() >= len(self.key):
            size = max(int(rows.max()) + 1, 2 * len(self.key))
            key, flag = np.zeros(size, dtype=np.uint64), np.zeros(size, dtype=bool)
            key[: len(self.key)], flag[: len(self.short)] = self.key, self.short
            self.key, self.short = key, flag
        self.key[rows] = keys
        self.short[rows] = short


def spec(config: ClusterConfig) -> str:
    """The settings the stored openings were computed under (the ``openings`` meta row)."""
    return f"{config.excerpt_max_tokens} {config.excerpt_opening_tokens}"


def stored_rows(rows: Iterable[int], keys: Iterable[int], short: Iterable[bool]
                ) -> list[tuple[int, int, int]]:
    """``openings`` table rows (keys as SQLite's signed 64-bit integers), those with an
    opening or short only."""
    return [(row, key - 2 * _SIGN if key >= _SIGN else key, int(flag))
            for row, key, flag in zip(rows, keys, short, strict=True) if key or flag]


def load_openings(conn: sqlite3.Connection) -> OpeningRows:
    """The stored openings (none from a file without the table: a reader of an old one)."""
    out = OpeningRows()
    try:
        found = np.asarray(conn.execute("SELECT row, key, short FROM openings").fetchall(),
                           dtype=np.int64).reshape(-1, 3)
    except sqlite3.OperationalError:
        return out
    out.set(found[:, 0], found[:, 1].astype(np.uint64), found[:, 2].astype(bool))
    return out


def _stored(conn: sqlite3.Connection, keys: np.ndarray, short: bool) -> np.ndarray:
    """Stored rows with one of ``keys`` and this short flag (the table's key index)."""
    signed = keys.astype(np.int64).tolist()  # two's complement, as ``stored_rows`` wrote
    out: list[int] = []
    for start in range(0, len(signed), 500):
        chunk = signed[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(r[0] for r in conn.execute(
            f"SELECT row FROM openings WHERE key IN ({marks}) AND short = ?",
            [*chunk, int(short)]))
    return np.asarray(out, dtype=np.int64)


def dated(state: State, rows: np.ndarray) -> excerpts.Openings:
    """The ``Openings`` of ``rows`` (indexed by position), each spanning its verbatim
    copies' days."""
    days = state.store.published[rows] / _DAY
    first, last = days.copy(), days.copy()
    spans: dict[int, tuple[float, float]] = {}
    for k, row in enumerate(rows.tolist()):
        key = state.copy_key.get(row)
        if key is None or len(state.copy_rows[key]) < 2:
            continue
        if key not in spans:
            group = state.store.published[state.copy_rows[key]] / _DAY
            known = group[~np.isnan(group)]
            spans[key] = ((float(known.min()), float(known.max())) if len(known)
                          else (np.nan, np.nan))
        first[k], last[k] = spans[key]
    return excerpts.Openings(state.openings.key[rows], state.openings.short[rows], first, last)


def _copies(state: State, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of ``rows`` (ascending): whether it is the first of its verbatim copies
    there (the node that stands for them, as the batch's representative), and how many
    live copies it stands for."""
    first = np.ones(len(rows), dtype=bool)
    sizes = np.ones(len(rows), dtype=np.int64)
    seen: set[int] = set()
    for k, row in enumerate(rows.tolist()):
        key = state.copy_key.get(row)
        if key is not None:
            first[k] = key not in seen
            seen.add(key)
            sizes[k] = len(state.copy_rows[key])
    return first, sizes


def _ties_of(state: State, row: int) -> int:
    """Stored edges of an excerpt to longer articles with its opening."""
    others = np.asarray(state.edges.get(row, ()), dtype=np.int64)
    key = state.openings.key
    return int(np.count_nonzero((key[others] == key[row]) & ~state.openings.short[others]))


def tie(conn: sqlite3.Connection, state: State, rows: Sequence[int], config: ClusterConfig
        ) -> list[tuple[int, int]]:
    """New stored edges (later row, earlier row) tying excerpts to longer articles with
    their opening (``excerpts.edges``), each involving one of the new ``rows``.

    A stored excerpt takes new ties only up to ``EDGES_PER_EXCERPT`` in all: with a
    heavy-tailed opening (thousands of teasers of one story) each excerpt costs a few edges
    once, as in the batch, not a look at every teaser for each new article.
    """
    new = np.asarray(rows, dtype=np.int64)
    key, short = state.openings.key[new], state.openings.short[new]
    has = key != 0
    if config.excerpt_max_tokens <= 0 or not has.any():
        return []
    openers = _stored(conn, np.unique(key[has & short]), short=False)
    waiting = _stored(conn, np.unique(key[has & ~short]), short=True)
    waiting = waiting[[_ties_of(state, e) < excerpts.EDGES_PER_EXCERPT
                       for e in waiting.tolist()]] if len(waiting) else waiting
    local = np.unique(np.concatenate([new[has], openers, waiting]))
    first, sizes = _copies(state, local)
    found = local[excerpts.edges(dated(state, local), first, config.excerpt_max_days, sizes)]
    fresh = set(rows)
    left: dict[int, int] = {}
    out: list[tuple[int, int]] = []
    for e, o in found.tolist():
        if (e not in fresh and o not in fresh) or o in state.edges.get(e, ()):
            continue
        if e not in fresh:  # a stored excerpt: its ties so far count
            left.setdefault(e, excerpts.EDGES_PER_EXCERPT - _ties_of(state, e))
            if left[e] <= 0:
                continue
            left[e] -= 1
        out.append((max(e, o), min(e, o)))
    return out


def linkage(state: State, members: Sequence[int], sim: np.ndarray, config: ClusterConfig
            ) -> tuple[np.ndarray, excerpts.Openings | None]:
    """A neighbourhood's adjacency for its components (scores at ``edge_threshold``, and
    the excerpts' ties, as the batch adds them) and its ``Openings`` for
    ``excerpts.regroup`` (None: no excerpt here shares an opening with a longer article).

    Copies stand for their group as the batch's representative does: only the first is
    tied, and only its opening counts in a majority (three hundred copies are one voice);
    an excerpt's copies keep theirs and so move together.
    """
    adjacent = sim >= config.edge_threshold
    if config.excerpt_max_tokens <= 0:
        return adjacent, None
    rows = np.asarray(members, dtype=np.int64)
    key, short = state.openings.key[rows], state.openings.short[rows]
    has = key != 0
    if not np.isin(key[has & short], key[has & ~short]).any():
        return adjacent, None
    openings = dated(state, rows)
    first, sizes = _copies(state, rows)
    ties = excerpts.edges(openings, first, config.excerpt_max_days, sizes)
    adjacent[ties[:, 0], ties[:, 1]] = adjacent[ties[:, 1], ties[:, 0]] = True
    keys = np.where(first | short, key, np.uint64(0))
    return adjacent, excerpts.Openings(keys, short, openings.first, openings.last)
