"""The read API of ``StoryIndex``: stories (merged lazily and cached), clusters changed
since a time, retired ids and where they lead, assignments and stats. Reads run in one
snapshot each, so an add committing meanwhile is seen entirely or not at all."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dedup.index.records import (
    FORMAT_VERSION,
    ClusterInfo,
    RetiredCluster,
    RetiredClusterError,
    epoch,
    from_epoch,
)
from dedup.index.store import IndexStore, translated
from dedup.io.readers import parse_date
from dedup.merge import merge, story_from_dict, story_to_dict
from dedup.records import Article, Story

# A cluster's distinct versions and each version's copies (``IndexStore._versions``).
_Versions = tuple[list[Article], dict[str, tuple[str, ...]]]


class Reads(IndexStore):
    """The read methods of ``StoryIndex``."""


    @translated
    def __len__(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM articles").fetchone()[0])

    @translated
    def story(self, cluster_id: str, *, follow: bool = False) -> Story:
        """The merged canonical story of one cluster (cached; merged again after a change).

        A retired id (merged into another story, or expired; see ``retired``) raises
        ``RetiredClusterError`` (a KeyError) whose ``live`` names the id that continues
        the story now; with ``follow=True`` that story is returned instead (its
        ``cluster_id`` is then the live id). Raises KeyError for an id the index never
        handed out.
        """
        with self._snapshot():
            found = self._snapshot_story(cluster_id, follow)
        return self._merged([found])[0]

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _snapshot_story(self, cluster_id: str, follow: bool
                        ) -> tuple[str, int, Story | _Versions]:
        """Inside ``_snapshot``: (live id, version, cached story or the versions to merge)."""
        conn = self.conn
        found = conn.execute("SELECT version FROM clusters WHERE id = ?",
                             (cluster_id,)).fetchone()
        if found is None:
            gone = self._retired_error(cluster_id)
            if gone is None:
                raise KeyError(f"no cluster {cluster_id!r} in {self.path}")
            if not follow or gone.live is None:
                raise gone
            return self._snapshot_story(gone.live, follow=False)
        version = found[0]
        cached = conn.execute("SELECT version, json FROM stories WHERE cluster_id = ?",
                              (cluster_id,)).fetchone()
        if cached is not None and cached[0] == version:
            return cluster_id, version, story_from_dict(json.loads(cached[1]))
        return cluster_id, version, self._versions(cluster_id)

    def _merged(self, found: Sequence[tuple[str, int, Story | _Versions]]) -> list[Story]:
        """Stories of ``_snapshot_story`` results, merging (and caching) the uncached ones
        after the snapshot ends (a merge must not hold the read open)."""
        out = []
        for cluster_id, version, held in found:
            if isinstance(held, Story):
                out.append(held)
                continue
            story = merge(held[0], cluster_id, self.config, copies=held[1])
            self._cache_story(story, version)
            out.append(story)
        return out

    def _chain(self, cluster_id: str) -> tuple[list[tuple[str, str | None, float, str]],
                                               str | None]:
        """The retired records from ``cluster_id`` on, and the live id they lead to (None
        when the chain ends in an expired or unknown id)."""
        chain: list[tuple[str, str | None, float, str]] = []
        current: str | None = cluster_id
        while current is not None and len(chain) < 10_000:
            row = self.conn.execute(
                "SELECT id, merged_into, retired_at, reason FROM retired WHERE id = ?",
                (current,)).fetchone()
            if row is None:
                live = self.conn.execute("SELECT 1 FROM clusters WHERE id = ?",
                                         (current,)).fetchone()
                return chain, (current if live else None)
            chain.append(row)
            current = row[1]
        return chain, None

    def _retired_error(self, cluster_id: str) -> RetiredClusterError | None:
        chain, live = self._chain(cluster_id)
        if not chain:
            return None
        _, into, when, reason = chain[0]
        stamp = from_epoch(when).isoformat(timespec="seconds")
        if reason == "merged":
            why = (f"was merged into {into!r} on {stamp} UTC"
                   + (f", which is now part of {live!r}" if live and live != into else "")
                   + ("" if live else ", which has since expired"))
        elif reason == "removed":
            why = f"was removed on {stamp} UTC (its last article was removed by id)"
        else:
            why = f"expired on {stamp} UTC (its last article was removed)"
        hint = f"; read story({live!r}) or pass follow=True" if live else ""
        return RetiredClusterError(f"cluster {cluster_id!r} in {self.path} {why}{hint}",
                                   cluster_id, live)

    @translated
    def resolve(self, cluster_id: str) -> str | None:
        """The live cluster id holding the story ``cluster_id`` names: itself while live,
        the id it was merged into (followed through later merges) once retired; None for
        an expired story or an id the index never handed out."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            return self._chain(cluster_id)[1]
        finally:
            conn.execute("COMMIT")

    @translated
    def retired(self, updated_since: datetime | None = None) -> list[RetiredCluster]:
        """Cluster ids retired at or after ``updated_since`` (all without it), oldest first:
        what a poller of ``stories(updated_since)`` needs to drop or redirect."""
        since = -math.inf if updated_since is None else epoch(updated_since)
        conn = self.conn
        conn.execute("BEGIN")
        try:
            rows = conn.execute(
                "SELECT id, merged_into, retired_at, reason FROM retired WHERE retired_at >= ?"
                " ORDER BY retired_at, id", (since,)).fetchall()
            return [RetiredCluster(cid, into, self._chain(cid)[1], from_epoch(when), reason)
                    for cid, into, when, reason in rows]
        finally:
            conn.execute("COMMIT")

    def _cache_story(self, story: Story, version: int) -> None:
        """Store a merged story unless the cluster changed meanwhile; never wait for a lock."""
        conn = self.conn
        timeout = self.index_config.busy_timeout
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute(
                "INSERT OR REPLACE INTO stories (cluster_id, version, json) SELECT ?, ?, ?"
                " WHERE (SELECT version FROM clusters WHERE id = ?) = ?",
                (story.cluster_id, version, json.dumps(story_to_dict(story), ensure_ascii=False),
                 story.cluster_id, version),
            )
        except sqlite3.OperationalError:
            pass  # busy or read-only: the next read merges again
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    @translated
    def clusters(self, updated_since: datetime | str | None = None) -> list[ClusterInfo]:
        """Clusters changed at or after ``updated_since`` (all without it; an ISO 8601
        string is read as the file readers read dates), oldest change first. Naive
        datetimes are UTC."""
        return self._clusters(updated_since)

    def _clusters(self, updated_since: datetime | str | None) -> list[ClusterInfo]:
        if isinstance(updated_since, str):
            try:
                updated_since = parse_date(updated_since)
            except ValueError:
                raise ValueError(f"updated_since {updated_since!r}: use a datetime or ISO "
                                 "8601 (2024-03-22T18:00:00)") from None
        since = -math.inf if updated_since is None else epoch(updated_since)
        rows = self.conn.execute(
            "SELECT id, size, created_at, updated_at FROM clusters WHERE updated_at >= ?"
            " ORDER BY updated_at, seq",
            (since,),
        ).fetchall()
        return [ClusterInfo(cid, size, from_epoch(c), from_epoch(u)) for cid, size, c, u in rows]

    @translated
    def stories(self, updated_since: datetime | str | None = None) -> list[Story]:
        """Stories of the clusters changed at or after ``updated_since`` (see ``clusters``).

        "At or after" means a poller passing the time of its previous poll may see a story
        twice but never misses a change. All are read in one snapshot: an add committing
        meanwhile is seen entirely or not at all.
        """
        return [story for _, story in self.updates(updated_since)]

    @translated
    def updates(self, updated_since: datetime | str | None = None
                ) -> list[tuple[ClusterInfo, Story]]:
        """``clusters(updated_since)`` with each cluster's story, read in one snapshot (what
        ``dedup index stories`` prints)."""
        with self._snapshot():
            infos = self._clusters(updated_since)
            found = [self._snapshot_story(info.cluster_id, False) for info in infos]
        return list(zip(infos, self._merged(found), strict=True))

    @translated
    def assignments(self) -> dict[str, str]:
        """Every indexed article id -> the cluster holding it now, in arrival order."""
        return dict(self.conn.execute("SELECT id, cluster_id FROM articles ORDER BY row"))

    @translated
    def cluster_of(self, article_id: str) -> str | None:
        """The cluster holding ``article_id``, or None if the index does not hold it."""
        row = self.conn.execute("SELECT cluster_id FROM articles WHERE id = ?",
                                (article_id,)).fetchone()
        return None if row is None else str(row[0])

    @translated
    def stats(self) -> dict[str, Any]:
        """Counts, dates and disk use, for ``dedup index stats``."""
        with self._snapshot() as conn:
            return self._stats(conn)

    def _stats(self, conn: sqlite3.Connection) -> dict[str, Any]:
        articles, oldest, newest = conn.execute(
            "SELECT count(*), min(ts), max(ts) FROM articles").fetchone()
        clusters, largest, singletons = conn.execute(
            "SELECT count(*), max(size), sum(size = 1) FROM clusters").fetchone()
        stale = conn.execute(
            "SELECT count(*) FROM clusters c LEFT JOIN stories s ON s.cluster_id = c.id"
            " WHERE s.version IS NULL OR s.version != c.version").fetchone()[0]
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return {
            "path": str(self.path),
            "format_version": FORMAT_VERSION,
            "articles": articles,
            "clusters": clusters,
            "largest_cluster": largest or 0,
            "singletons": singletons or 0,
            "retired_ids": conn.execute("SELECT count(*) FROM retired").fetchone()[0],
            "terms": self._meta_int("terms"),
            "stories_to_merge": stale,
            "oldest": None if oldest is None else from_epoch(oldest).isoformat(),
            "newest": None if newest is None else from_epoch(newest).isoformat(),
            "bytes_on_disk": sum(f.stat().st_size for f in files if f.exists()),
        }
