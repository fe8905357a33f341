"""Expiry and removal: articles dated before a cutoff, or named by id, leave DF, the LSH
tables, their clusters and the file; emptied clusters retire their ids."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from dedup.index.records import epoch
from dedup.index.state import State, count_df
from dedup.index.store import IndexStore, translated
from dedup.io.errors import DedupInputError


class Expiry(IndexStore):
    """``StoryIndex.expire`` and ``StoryIndex.remove``."""

    @translated
    def expire(self, older_than: timedelta | float, *, now: datetime | None = None) -> int:
        """Remove articles dated before ``now - older_than``; return how many were removed.

        An article's date is its ``published`` time, or when it was added if it has none.
        Their terms leave the DF counts, their signatures the LSH table, their rows the
        disk (pages are given back with an incremental vacuum). Clusters left empty are
        deleted and their ids retired (reason ``"expired"``, see ``retired``); the others
        keep their id, are marked updated and get their story merged again from the members
        that remain. Remaining members are not re-clustered. ``older_than``: a timedelta,
        or a number of days.
        """
        if isinstance(older_than, bool) or not isinstance(older_than, (timedelta, int, float)):
            raise TypeError(f"older_than={older_than!r}: pass a timedelta or a number of days")
        seconds = (older_than.total_seconds() if isinstance(older_than, timedelta)
                   else float(older_than) * 86400.0)
        if not seconds >= 0:
            raise ValueError(f"older_than={older_than!r}: must be zero or more")
        cutoff = epoch(now or datetime.now(UTC)) - seconds
        with self._write() as conn:
            doomed = conn.execute(
                "SELECT row, cluster_id FROM articles WHERE ts < ? ORDER BY row", (cutoff,)
            ).fetchall()
            if not doomed:
                return 0
            state = self._current_state()
            try:
                self._remove(conn, state, doomed)
            except BaseException:
                self._state = None
                raise
        self.conn.execute("PRAGMA incremental_vacuum").fetchall()
        return len(doomed)

    @translated
    def remove(self, ids: Iterable[str]) -> int:
        """Remove these articles as ``expire`` removes old ones; return how many.

        Why: a feed republishes an article corrected under its id, which ``add`` refuses
        while the old version is in: remove it, then add the new one. Clusters left empty
        retire their ids (reason ``"removed"``). An id not in the index is a
        ``DedupInputError`` and nothing is removed.
        """
        if isinstance(ids, (str, bytes)):  # its characters are no ids
            raise TypeError(f"ids={ids!r}: pass a list of ids, as remove([{ids!r}])")
        wanted = list(dict.fromkeys(ids))
        bad = [i for i in wanted if not isinstance(i, str)]
        if bad:
            raise DedupInputError(f"id {bad[0]!r} is {type(bad[0]).__name__}, not a string")
        with self._write() as conn:
            stored = list(self._articles_by_id(conn, wanted))
            doomed = [(row, cid) for row, cid, _ in stored]
            found = {aid for _, _, aid in stored}
            missing = [i for i in wanted if i not in found]
            if missing:
                more = f" (nor are {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise DedupInputError(f"id {missing[0]!r} is not in the index {self.path}{more}; "
                                      "nothing was removed: check the ids")
            if not doomed:
                return 0
            state = self._current_state()
            try:
                self._remove(conn, state, sorted(doomed), reason="removed")
            except BaseException:
                self._state = None
                raise
        self.conn.execute("PRAGMA incremental_vacuum").fetchall()
        return len(doomed)

    def _remove(
        self, conn: sqlite3.Connection, state: State, doomed: Sequence[tuple[int, str]],
        reason: str = "expired",
    ) -> None:
        now = time.time()
        rows = np.asarray([r for r, _ in doomed], dtype=np.int64)
        # DF loses the rows it counted; a removed row's first surviving copy counts instead.
        removed = rows.tolist()
        first = {key: state.copy_rows[key][0] for row in removed
                 if (key := state.copy_key.get(row)) is not None}
        counted = [row for row in removed
                   if row not in state.copy_key or first[state.copy_key[row]] == row]
        dropped = set(counted)
        keys = {key for key, row in first.items() if row in dropped}
        for row in removed:
            key = state.copy_key.pop(row, None)
            if key is not None:
                state.copy_rows[key].remove(row)
        promoted = sorted(state.copy_rows[k][0] for k in keys if state.copy_rows[k])
        for k in keys:
            if not state.copy_rows[k]:
                del state.copy_rows[k]
        state.distinct += len(promoted) - len(counted)
        count_df(state, state.store.gather(np.asarray(counted, dtype=np.int64))[0], -1)
        if promoted:
            count_df(state, state.store.gather(np.asarray(promoted, dtype=np.int64))[0], 1)
        state.store.remove(rows)
        state.copies.remove(rows)
        state.events.remove(rows)
        gone = set(rows.tolist())
        touched: set[str] = set()
        for row, cid in doomed:
            del state.docs[row]
            touched.add(cid)
        empty = []
        for cid in touched:
            cluster = state.clusters[cid]
            cluster.members = [r for r in cluster.members if r not in gone]
            if not cluster.members:
                empty.append(cid)
                del state.clusters[cid]
                state.queue.pop(cid, None)
        for row in gone:
            for other in state.edges.pop(row, []):
                if other not in gone:
                    state.edges[other].remove(row)
                    state.openings.saturated[other] = False  # may take a tie again
        conn.executemany("DELETE FROM articles WHERE row = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM signatures WHERE row = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM openings WHERE row = ?", [(r,) for r in gone])
        conn.executemany("UPDATE openings SET first = 1 WHERE row = ?", [(r,) for r in promoted])
        state.openings.first[promoted] = True
        conn.executemany("DELETE FROM edges WHERE a = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM edges WHERE b = ?", [(r,) for r in gone])
        self._retire(conn, state, dict.fromkeys(empty), now, reason=reason)
        self._touch(conn, state, touched - set(empty), {}, now)
        state.generation += 1
        self._set_meta(conn, generation=state.generation, terms=state.terms)
        state.queue.saved(conn)
