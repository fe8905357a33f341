"""The index's SQLite file: schema, format checks and upgrades, write transactions, and the
rows an add or an expire writes (articles, signatures, clusters, stories, retired ids)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import polars as pl

from dedup import copies
from dedup.config import Config, IndexConfig
from dedup.configfile import config_from_mapping, config_to_json
from dedup.index import openings
from dedup.index.records import FORMAT, FORMAT_VERSION, StoryIndexError, utc_naive
from dedup.index.state import State, load_state
from dedup.index.texts import TextCache
from dedup.merge import merge, story_to_dict
from dedup.prepare import publication_days
from dedup.records import Article, Story

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, text TEXT NOT NULL,
    published TEXT, source TEXT, extra TEXT, added_at REAL NOT NULL, published_ts REAL,
    ts REAL NOT NULL, cluster_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles (cluster_id);
CREATE INDEX IF NOT EXISTS articles_ts ON articles (ts);
CREATE TABLE IF NOT EXISTS signatures (
    row INTEGER PRIMARY KEY, copies BLOB, events BLOB, term_ids BLOB NOT NULL,
    term_tf BLOB NOT NULL, years TEXT NOT NULL);
-- term_ids: int32 block * refine.N_FEATURES + hashed column (blocks: body, names, title,
-- numbers), the DF counts at load (no semicolons in comments: the schema is split on them)
CREATE TABLE IF NOT EXISTS clusters (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, version INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS clusters_updated ON clusters (updated_at);
CREATE TABLE IF NOT EXISTS stories (
    cluster_id TEXT PRIMARY KEY, version INTEGER NOT NULL, json TEXT NOT NULL);
-- Cluster ids no live story holds any more: merged into another (merged_into set) or
-- emptied by expire (merged_into NULL). Never handed out again.
CREATE TABLE IF NOT EXISTS retired (
    id TEXT PRIMARY KEY, merged_into TEXT, retired_at REAL NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS retired_at ON retired (retired_at);
-- Candidate pairs that scored at least edge_threshold when the later article (a) arrived:
-- the graph whose connected components bound the re-linkage.
CREATE TABLE IF NOT EXISTS edges (
    a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_b ON edges (b);
-- The refresh queue (issue #22): a cluster's position when it last went to the back, so a
-- reopened index re-links the clusters a long-lived one would. Clusters without a row
-- (files written before) come first, oldest first.
CREATE TABLE IF NOT EXISTS queue (cluster_id TEXT PRIMARY KEY, pos INTEGER NOT NULL)
    WITHOUT ROWID;
-- Each row's opening (issue #19, ``dedup.index.openings``), by key for a new article.
""" + openings.SCHEMA
RETIRED_SCHEMA = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS retired"):]


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound="IndexStore")


def translated(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """SQLite errors of a public method as one-line ``StoryIndexError``s naming the file."""

    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as err:
            raise StoryIndexError(f"{self.path}: cannot read or write the story index "
                                  f"(SQLite: {err})") from None
        except sqlite3.DatabaseError as err:
            raise StoryIndexError(f"{self.path}: damaged story index (SQLite: {err}); restore "
                                  "it from a copy or rebuild it with `dedup index add`") from None

    return wrapper



class IndexStore:
    """The file side of ``StoryIndex``: opening, checking and writing the SQLite file."""

    path: Path
    config: Config
    index_config: IndexConfig
    _conn: sqlite3.Connection | None
    _state: State | None
    _copy_bands: tuple[int, int]
    _event_bands: tuple[int, int]
    _texts: TextCache

    def _fail(self, why: str) -> StoryIndexError:
        return StoryIndexError(f"{self.path}: {why}")

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        exists = self.path.exists()
        if not exists and not create:
            raise self._fail("no such story index (create it with `dedup index add`)")
        if exists and not self.path.is_file():
            raise self._fail("not a dedup story index (it is not a file)")
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.index_config.busy_timeout, isolation_level=None
            )
        except sqlite3.Error as err:
            raise self._fail(f"cannot open (SQLite: {err})") from None
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                if not create:
                    raise self._fail("not a dedup story index (an empty database)")
                self._create(conn)
            else:
                self._check(conn, tables)
            # In WAL mode a commit with synchronous=NORMAL is still atomic (a killed or
            # crashed writer leaves the index before or after its add); only the fsync per
            # commit goes, so after a power cut the last adds may be missing, never half.
            conn.execute("PRAGMA synchronous = NORMAL")
            # An add dirties ~750 pages (3 MB), mostly index leaves all over the file. The
            # default checkpoint every 1000 WAL pages copied them to the file after about
            # every add; every 10000 (a 40 MB WAL) most pages are copied once for ten adds.
            # A 64 MB page cache keeps those leaves between adds instead of re-reading them.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.DatabaseError as err:
            conn.close()
            raise self._fail(self._open_failure(err)) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_failure(self, err: sqlite3.DatabaseError) -> str:
        """Why an existing file did not open: a SQLite file it may not write (a read-only
        folder or file system) is not a damaged index."""
        access = isinstance(err, sqlite3.OperationalError) and any(
            word in str(err) for word in ("unable to open", "readonly", "read-only"))
        try:
            with self.path.open("rb") as handle:
                sqlite = handle.read(16) == b"SQLite format 3\x00"
        except OSError:
            sqlite = False
        if access and sqlite:
            return (f"cannot open it for writing (SQLite: {err}): an index needs write access "
                    "to its file and its folder (SQLite keeps its -wal and -shm files there, "
                    "and reads merge changed stories); copy it somewhere writable")
        return f"not a dedup story index, or a damaged one (SQLite: {err})"

    def _create(self, conn: sqlite3.Connection) -> None:
        """Schema, WAL mode and the meta rows that later opens check."""
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # expire gives pages back
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                conn.execute("COMMIT")  # another process created it meanwhile
                self._check(conn, {r[0] for r in conn.execute("SELECT name FROM sqlite_master")})
                return
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in self._meta().items()]
                + [("generation", "0"), ("next_row", "1"), ("next_seq", "1"), ("terms", "0"),
                   ("created_at", str(time.time())),
                   ("openings", openings.spec(self.config.clustering)),
                   ("config", config_to_json(self.effective_config))],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def effective_config(self) -> Config:
        """The settings this object places and merges with (``index_config`` included)."""
        return dataclasses.replace(self.config, index=self.index_config)

    @staticmethod
    def read_config(path: str | Path) -> Config | None:
        """The ``Config`` the index at ``path`` was created with, without opening it for
        writing; None for a missing file, a file that is no story index, or an index
        written before it stored its settings (the caller then chooses).

        Why: a later add or read should use the settings the index was built with (the
        CLI does, see ``dedup index add --config``). Raises StoryIndexError when the
        stored settings are unreadable by this version.
        """
        path = Path(path)
        if not path.is_file():
            return None
        try:
            # mode=rw: never creates the file
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        if row is None:
            return None
        try:
            return config_from_mapping(json.loads(row[0]), f"{path} (its stored settings)")
        except ValueError as err:  # ConfigError included
            raise StoryIndexError(str(err)) from None

    def _meta(self) -> dict[str, str]:
        sig = self.config.signatures
        return {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "num_perm": str(sig.num_perm),
            "seed": str(sig.seed),
            "shingle_size": str(sig.shingle_size),
        }

    def _check(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if "meta" not in tables:
            raise self._fail("not a dedup story index (an SQLite database without its tables)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise self._fail("not a dedup story index (its meta table names another format)")
        if meta.get("format_version") not in ("1", str(FORMAT_VERSION)):
            raise self._fail(
                f"story index format version {meta.get('format_version')}, but this dedup "
                f"reads version {FORMAT_VERSION}: rebuild it with `dedup index add` from the "
                "articles"
            )
        expected = self._meta()
        wrong = [k for k in ("num_perm", "seed", "shingle_size") if meta.get(k) != expected[k]]
        if wrong:
            built = ", ".join(f"{k}={meta.get(k)}" for k in wrong)
            raise self._fail(
                f"built with SignatureConfig {built}; open it with the same settings"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        if not {"edges", "queue", "openings"} <= tables:  # before #6, #22, #19: add them
            try:
                for statement in RETIRED_SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            except sqlite3.OperationalError:
                if "edges" not in tables:
                    raise
                # A read-only file: readers need no queue (adds would fail anyway).
        if meta.get("format_version") == "1":
            self._upgrade_v1(conn)

    @staticmethod
    def _upgrade_v1(conn: sqlite3.Connection) -> None:
        """Version 1 kept DF rows in a ``terms`` table, equal to the counts of the stored
        term ids; drop it (its count goes to meta) so no writer leaves it stale."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute(
                "SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0]
            if version == "1":
                terms = conn.execute("SELECT count(*) FROM terms").fetchone()[0]
                conn.execute("DROP TABLE terms")
                conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                 [("format_version", str(FORMAT_VERSION)),
                                  ("terms", str(terms))])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoryIndexError(f"{self.path}: the index is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; on any error it rolls back and in-memory state is dropped."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise self._fail(f"cannot start a write ({err}); another writer holds it") from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- state --------------------------------------------------------------------------

    def _meta_int(self, key: str) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _current_state(self) -> State:
        """The in-memory state, reloaded when another process wrote (call inside a write)."""
        generation = self._meta_int("generation")
        if self._state is None or self._state.generation != generation:
            self._state = None
            self._sync_openings(self.conn)
            self._state = load_state(
                self.conn, self.config, self._copy_bands, self._event_bands,
                {"generation": generation, "next_row": self._meta_int("next_row"),
                 "next_seq": self._meta_int("next_seq")})
        return self._state

    def _sync_openings(self, conn: sqlite3.Connection) -> None:
        """Stored openings under this object's excerpt settings (call inside a write).

        A file written before they were stored (#19), or under other excerpt settings, has
        them computed here from the stored texts, once: the lines ``TextCache`` reads,
        tokenized as an add does (5.4 s for 10,000 synthetic articles).
        """
        want = openings.spec(self.config.clustering)
        found = conn.execute("SELECT value FROM meta WHERE key = 'openings'").fetchone()
        if found is not None and found[0] == want:
            return
        conn.execute("DELETE FROM openings")
        last, seen = -1, set()  # copies signature keys met (the first row counts, #18)
        num_perm = self.config.signatures.num_perm
        while self.config.clustering.excerpt_max_tokens > 0:
            chunk = conn.execute(
                "SELECT a.row, a.text, s.copies FROM articles a JOIN signatures s"
                " ON s.row = a.row WHERE a.row > ? ORDER BY a.row LIMIT 2048", (last,)
            ).fetchall()
            if not chunk:
                break
            last = chunk[-1][0]
            got = self._texts.openings([text for _, text, _ in chunk])
            first = []
            for _, _, blob in chunk:
                key = None if blob is None else int(copies.signature_keys(
                    np.frombuffer(blob, dtype=np.uint32).reshape(1, num_perm))[0])
                first.append(key is None or key not in seen)
                seen.add(key)
            conn.executemany("INSERT INTO openings (row, key, short, first) VALUES (?, ?, ?, ?)",
                             openings.stored_rows([r for r, _, _ in chunk], got.keys.tolist(),
                                                  got.short.tolist(), first))
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('openings', ?)", (want,))

    @staticmethod
    def _flush_rows(
        conn: sqlite3.Connection, articles: list[tuple[Any, ...]], sigs: list[tuple[Any, ...]]
    ) -> None:
        conn.executemany(
            "INSERT INTO articles (row, id, title, text, published, source, extra, added_at,"
            " published_ts, ts, cluster_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            articles,
        )
        conn.executemany(
            "INSERT INTO signatures (row, copies, events, term_ids, term_tf, years)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            sigs,
        )
        articles.clear()
        sigs.clear()

    @staticmethod
    def _article_row(
        row: int, article: Article, now: float, published: float, cid: str
    ) -> tuple[Any, ...]:
        pub = None if article.published is None else utc_naive(article.published).isoformat()
        extra = json.dumps(article.extra, default=str) if article.extra else None
        stamp = None if math.isnan(published) else published
        return (row, article.id, article.title, article.text, pub, article.source, extra, now,
                stamp, now if stamp is None else stamp, cid)

    @staticmethod
    def _articles_by_id(conn: sqlite3.Connection, ids: Sequence[str]
                        ) -> Iterator[tuple[int, str, str]]:
        """(row, cluster id, article id) of the stored articles among ``ids``, asked 500 at
        a time (SQLite bounds the parameters of one statement)."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from conn.execute(
                f"SELECT row, cluster_id, id FROM articles WHERE id IN ({marks})", chunk)

    def _set_meta(self, conn: sqlite3.Connection, **values: int) -> None:
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                         [(str(v), k) for k, v in values.items()])

    def _touch(
        self,
        conn: sqlite3.Connection,
        state: State,
        touched: Iterable[str],
        created: Mapping[str, int],
        now: float,
    ) -> None:
        """Record cluster changes; merge their stories now when ``story_refresh == 'add'``."""
        ordered = sorted(touched)
        conn.executemany(
            "INSERT INTO clusters (id, seq, created_at, updated_at, version, size)"
            " VALUES (?, ?, ?, ?, 1, ?)",
            [(cid, created[cid], now, now, len(state.clusters[cid].members))
             for cid in ordered if cid in created])
        conn.executemany(
            "UPDATE clusters SET updated_at = ?, version = version + 1, size = ? WHERE id = ?",
            [(now, len(state.clusters[cid].members), cid)
             for cid in ordered if cid not in created])
        if self.index_config.story_refresh != "add":
            return
        for cid in ordered:
            version = conn.execute("SELECT version FROM clusters WHERE id = ?",
                                   (cid,)).fetchone()[0]
            story = self._story(cid)
            conn.execute(
                "INSERT OR REPLACE INTO stories (cluster_id, version, json) VALUES (?, ?, ?)",
                (cid, version, json.dumps(story_to_dict(story), ensure_ascii=False)),
            )


    def _retire(self, conn: sqlite3.Connection, state: State, retired: Mapping[str, str | None],
                now: float, reason: str = "merged") -> None:
        """Record retired ids (see ``RetiredCluster``); their cluster rows and stories go."""
        state.retired.update(retired)
        conn.executemany(
            "INSERT OR REPLACE INTO retired (id, merged_into, retired_at, reason)"
            " VALUES (?, ?, ?, ?)",
            [(cid, into, now, reason) for cid, into in sorted(retired.items())])
        conn.executemany("DELETE FROM clusters WHERE id = ?", [(c,) for c in sorted(retired)])
        conn.executemany("DELETE FROM stories WHERE cluster_id = ?",
                         [(c,) for c in sorted(retired)])

    def _story(self, cluster_id: str) -> Story:
        """Merge one cluster's story from its members, as the batch does (``_versions``)."""
        versions, copied = self._versions(cluster_id)
        return merge(versions, cluster_id, self.config, copies=copied)

    def _versions(self, cluster_id: str) -> tuple[list[Article], dict[str, tuple[str, ...]]]:
        """A cluster's distinct versions (in row order) and each version's verbatim copies,
        by the batch's rule: the same copies signature (``copies.copy_groups``), the
        version elected by ``copies.elect`` (#18: three hundred copies are one voice)."""
        rows = self.conn.execute(
            "SELECT a.id, a.text, a.title, a.published, a.source, s.copies FROM articles a"
            " JOIN signatures s ON s.row = a.row WHERE a.cluster_id = ? ORDER BY a.row",
            (cluster_id,),
        ).fetchall()
        members = [
            Article(id=i, text=text, title=title,
                    published=None if pub is None else datetime.fromisoformat(pub),
                    source=source)
            for i, text, title, pub, source, _ in rows
        ]
        ids = [a.id for a in members]
        days = publication_days(pl.DataFrame(  # the batch's days, to the second
            {"published": [a.published for a in members]},
            schema={"published": pl.Datetime("us")}))
        exact = copies.elect(exact_copies([blob for *_, blob in rows],
                                          self.config.signatures.num_perm), days, ids)
        copied = copies.copies_by_version(np.arange(len(rows)), exact, ids)
        return [a for k, a in enumerate(members) if exact[k] == k], copied


def exact_copies(blobs: Sequence[bytes | None], num_perm: int) -> np.ndarray:
    """Each member's exact-copy representative (its position, or an earlier member's with
    the same copies signature; no signature, an empty text, copies no one)."""
    present = np.fromiter((b is not None for b in blobs), dtype=bool, count=len(blobs))
    sigs = np.zeros((len(blobs), num_perm), dtype=np.uint32)
    if present.any():
        sigs[present] = np.frombuffer(b"".join(b for b in blobs if b is not None),
                                      dtype=np.uint32).reshape(-1, num_perm)
    return copies.copy_groups(copies.signature_keys(sigs), present).exact
