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

from dedup import clustering, excerpts
from dedup.config import ClusterConfig

if TYPE_CHECKING:  # state holds an ``OpeningRows``
    from dedup.index.state import State

# Rows absent from the table have no opening and are not short (the rule off stores none);
# ``first``: the first live row of its verbatim copies (``OpeningRows``), the one looked up.
SCHEMA = """
CREATE TABLE IF NOT EXISTS openings (
    row INTEGER PRIMARY KEY, key INTEGER NOT NULL, short INTEGER NOT NULL,
    first INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS openings_key ON openings (key, short) WHERE first = 1
"""

_DAY = 86400.0
_SIGN = 1 << 63


class OpeningRows:
    """Every live row's opening key (uint64, 0: none), short flag, and whether it is the
    first live row of its verbatim copies (the one counted in DF, ``state.count_copies``:
    it stands for them, as the batch's copy group representative), by row."""

    def __init__(self) -> None:
        self.key = np.zeros(0, dtype=np.uint64)
        self.short = np.zeros(0, dtype=bool)
        self.first = np.zeros(0, dtype=bool)
        # Excerpts found tied to ``EDGES_PER_EXCERPT`` openers: they take no more ties, so
        # an add skips them unread (edges only grow, but on expire, which clears this).
        self.saturated = np.zeros(0, dtype=bool)

    def set(self, rows: np.ndarray, keys: np.ndarray, short: np.ndarray, first: np.ndarray
            ) -> None:
        """Record rows' openings; rows never set have none (the arrays grow with zeros)."""
        if len(rows) and rows.max() >= len(self.key):
            size = max(int(rows.max()) + 1, 2 * len(self.key))
            for name in ("key", "short", "first", "saturated"):
                old = getattr(self, name)
                grown = np.zeros(size, dtype=old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
        self.key[rows], self.short[rows], self.first[rows] = keys, short, first


def spec(config: ClusterConfig) -> str:
    """The settings the stored openings were computed under (the ``openings`` meta row)."""
    return f"{config.excerpt_max_tokens} {config.excerpt_opening_tokens}"


def stored_rows(rows: Iterable[int], keys: Iterable[int], short: Iterable[bool],
                first: Iterable[bool]) -> list[tuple[int, int, int, int]]:
    """``openings`` table rows (keys as SQLite's signed 64-bit integers), those with an
    opening or short only."""
    return [(row, key - 2 * _SIGN if key >= _SIGN else key, int(flag), int(lead))
            for row, key, flag, lead in zip(rows, keys, short, first, strict=True)
            if key or flag]


def load_openings(conn: sqlite3.Connection, rows: int) -> OpeningRows:
    """The stored openings of rows below ``rows`` (none from a file without the table: a
    reader of an old one)."""
    out = OpeningRows()
    out.set(np.arange(rows), np.zeros(rows, dtype=np.uint64), np.zeros(rows, dtype=bool),
            np.zeros(rows, dtype=bool))
    try:
        found = np.asarray(conn.execute("SELECT row, key, short, first FROM openings")
                           .fetchall(), dtype=np.int64).reshape(-1, 4)
    except sqlite3.OperationalError:
        return out
    out.set(found[:, 0], found[:, 1].astype(np.uint64), found[:, 2].astype(bool),
            found[:, 3].astype(bool))
    return out


def _stored(conn: sqlite3.Connection, keys: np.ndarray, short: bool) -> np.ndarray:
    """Stored rows first of their copies with one of ``keys`` and this short flag (the
    table's partial key index: ten thousand copies of a wire story are one entry)."""
    signed = keys.astype(np.int64).tolist()  # two's complement, as ``stored_rows`` wrote
    out: list[int] = []
    for start in range(0, len(signed), 500):
        chunk = signed[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(r[0] for r in conn.execute(
            f"SELECT row FROM openings WHERE key IN ({marks}) AND short = ? AND first = 1",
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


def _sizes(state: State, rows: np.ndarray) -> np.ndarray:
    """How many live verbatim copies each of ``rows`` stands for."""
    return np.fromiter((len(state.copy_rows[k]) if (k := state.copy_key.get(r)) is not None
                        else 1 for r in rows.tolist()), dtype=np.int64, count=len(rows))


def _ties_of(state: State, row: int) -> int:
    """Stored edges of an excerpt to longer articles with its opening."""
    others = np.asarray(state.edges.get(row, ()), dtype=np.int64)
    key = state.openings.key
    return int(np.count_nonzero((key[others] == key[row]) & ~state.openings.short[others]))


def _shared(key: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Where the opening is held by an excerpt and by a longer article among these rows:
    the only rows ``excerpts.edges`` and ``excerpts.regroup`` can act on."""
    has = key != 0
    both = set(key[has & short].tolist()) & set(key[has & ~short].tolist())  # a few keys
    if not both:
        return np.zeros(len(key), dtype=bool)
    wanted = np.fromiter(both, dtype=np.uint64, count=len(both))
    if len(wanted) > 8:
        return np.isin(key, wanted)
    return (key[:, None] == wanted[None, :]).any(axis=1)  # np.isin's setup costs more


def _in_reach(state: State, waiting: np.ndarray, openers: np.ndarray, max_days: float
              ) -> np.ndarray:
    """``waiting`` (stored excerpts) less those surely outside the window of every opener
    in ``openers`` (new longer articles) with their opening: thousands of excerpts of a
    stock opening are dropped here in a few array operations, not read one by one."""
    if max_days < 0 or not len(waiting) or not len(openers):
        return waiting
    span = dated(state, openers)
    keys, at = np.unique(span.keys, return_inverse=True)
    lo = np.full(len(keys), np.inf)
    hi = np.full(len(keys), -np.inf)
    np.minimum.at(lo, at, np.where(np.isnan(span.first), -np.inf, span.first))
    np.maximum.at(hi, at, np.where(np.isnan(span.last), np.inf, span.last))
    day = state.store.published[waiting] / _DAY
    k = np.minimum(np.searchsorted(keys, state.openings.key[waiting]), len(keys) - 1)
    copied = np.fromiter((len(state.copy_rows.get(state.copy_key.get(r, -1), ())) > 1
                          for r in waiting.tolist()), dtype=bool, count=len(waiting))
    near = (day >= lo[k] - max_days) & (day <= hi[k] + max_days)
    return waiting[np.isnan(day) | copied | near]


def tie(conn: sqlite3.Connection, state: State, rows: Sequence[int], config: ClusterConfig
        ) -> list[tuple[int, int]]:
    """New stored edges (later row, earlier row) tying excerpts to longer articles with
    their opening (``excerpts.edges``), each involving one of the new ``rows``.

    A stored excerpt takes new ties only up to ``EDGES_PER_EXCERPT`` in all, and only from
    the new articles within its window of days: with a heavy-tailed opening (thousands of
    teasers of one story) each excerpt costs a few edges once, as in the batch.
    """
    new = np.asarray(rows, dtype=np.int64)
    key, short = state.openings.key[new], state.openings.short[new]
    has = (key != 0) & state.openings.first[new]  # a copy's first row stands for it
    if config.excerpt_max_tokens <= 0 or not has.any():
        return []
    openers = _stored(conn, np.unique(key[has & short]), short=False)
    waiting = _stored(conn, np.unique(key[has & ~short]), short=True)
    waiting = _in_reach(state, waiting[~state.openings.saturated[waiting]], new[has & ~short],
                        config.excerpt_max_days)
    local = np.unique(np.concatenate([new[has], openers, waiting]))
    local = local[_shared(state.openings.key[local], state.openings.short[local])]
    if not len(local):
        return []
    found = local[excerpts.edges(dated(state, local), np.ones(len(local), dtype=bool),
                                 config.excerpt_max_days, _sizes(state, local))]
    fresh = set(rows)
    left: dict[int, int] = {}
    out: list[tuple[int, int]] = []
    for e, o in found.tolist():
        if (e not in fresh and o not in fresh) or o in state.edges.get(e, ()):
            continue
        if e not in fresh:  # a stored excerpt: its ties so far count
            left.setdefault(e, excerpts.EDGES_PER_EXCERPT - _ties_of(state, e))
            state.openings.saturated[e] = left[e] <= 1
            if left[e] <= 0:
                continue
            left[e] -= 1
        out.append((max(e, o), min(e, o)))
    return out


def linkage(state: State, members: Sequence[int], sim: np.ndarray, config: ClusterConfig
            ) -> tuple[list[np.ndarray], excerpts.Openings | None]:
    """A neighbourhood's components (``clustering.dense_components`` of the scores at
    ``edge_threshold`` and of the excerpts' ties, as the batch adds them) and its
    ``Openings`` for ``excerpts.regroup`` (None: no excerpt here shares an opening with a
    longer article).

    Copies stand for their group as the batch's representative does: only the first is
    tied, and only its opening counts in a majority (three hundred copies are one voice);
    an excerpt's copies keep theirs and so move together. Only rows whose opening an
    excerpt and a longer article share here are read (the others cannot tie or move), and
    ties are sought only when those rows lie in several components (else they join none).
    """
    adjacent = sim >= config.edge_threshold
    parts = clustering.dense_components(adjacent)
    rows = np.asarray(members, dtype=np.int64)
    short = state.openings.short[rows]
    if config.excerpt_max_tokens <= 0 or not short.any():
        return parts, None
    lead = state.openings.first[rows]
    at = np.flatnonzero(_shared(state.openings.key[rows], short) & (lead | short))
    if not len(at):
        return parts, None
    openings = dated(state, rows[at])
    label = np.empty(len(rows), dtype=np.int64)
    for k, part in enumerate(parts):
        label[part] = k
    if len(np.unique(label[at])) > 1:
        ties = at[excerpts.edges(openings, lead[at], config.excerpt_max_days,
                                 _sizes(state, rows[at]))]
        if len(np.unique(label[ties])) > 1:
            adjacent[ties[:, 0], ties[:, 1]] = adjacent[ties[:, 1], ties[:, 0]] = True
            parts = clustering.dense_components(adjacent)
    keys = np.zeros(len(rows), dtype=np.uint64)
    keys[at] = openings.keys
    first_day, last_day = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    first_day[at], last_day[at] = openings.first, openings.last
    return parts, excerpts.Openings(keys, short, first_day, last_day)
