"""``StoryIndex``: an incremental, persistent story index for feed aggregators.

Why: a feed delivers articles a few at a time, forever. Re-clustering everything on each
arrival costs O(corpus); the index places each new article against what it already holds
and keeps a rolling window on disk (embedded SQLite, WAL mode: one writer and any number of
readers in other processes).

How an article is placed (each choice mirrors a batch stage, see ``pipeline.cluster``):

- normalization: ``pipeline.prepare`` (fixed boilerplate patterns; per-source template
  lines are a corpus statistic the index does not learn);
- streaming TF-IDF: document frequencies (DF) per term are counted as articles arrive (and
  leave, on ``expire``), in memory; SQLite keeps each article's term ids, from which DF is
  counted again at open. Vectors are computed with the *current* IDF, with the blend of
  ``refine.build_features``: body and names with IDF^``idf_power``, title, numbers,
  L2-normalised per block and weighted, plus the year-conflict factor. A batch's DF is
  counted before any of its articles is placed, so within one ``add`` a vector never
  changes and each is computed once (``_Vectors``);
- candidates: copies and events MinHash signatures (``signatures``), the events terms being
  the top ``salient_terms`` body terms by TF-IDF with the DF at arrival. Signatures are
  stored as blobs and never recomputed. Bands and rows come from datasketch's
  ``MinHashLSH`` for the configured thresholds, as in ``candidates``, but buckets live in a
  compact sorted numpy table (see ``_BandIndex``) rebuilt at open in about a second,
  where inserting 20k articles into datasketch's dict storage took 13 s. A batch is
  looked up, and its candidates scored, all at once: both are independent of where its
  earlier articles are placed (each article still sees the batch's earlier articles);
- placement, first greedy: the new article joins the existing cluster whose *average*
  similarity with its members is highest, if that reaches ``link_threshold`` and at least
  one member scored ``edge_threshold``; otherwise it starts a new cluster. Its candidate
  pairs scoring at least ``IndexConfig.relink_edge_threshold`` are stored as edges;
- re-linkage (issue #6; ``IndexConfig.relink``), in the same transaction: the new
  articles' neighbourhood (their connected component over stored edges, closed over
  cluster membership; the one-hop neighbourhood when that exceeds ``relink_max_size``;
  nothing when even that does) is clustered again exactly as ``clustering``'s
  ``cluster_documents`` does in a batch (components at ``edge_threshold``, then weighted
  average linkage at ``link_threshold``) over dense scores with the *current* IDF; then
  ``relink_refresh`` components per new article are re-linked from a queue of the least
  recently linked clusters, so stories no article touches follow the drifting IDF. On
  ecbplus-dev in file order this agrees with batch ``cluster`` at ARI 0.987 (one article
  per add) and 0.972 (ten per add), against 0.810 for greedy placement alone.

Cluster id rules (the re-linkage may move members, merge and split clusters):

- a group of re-linked articles keeps an existing id by maximal overlap: ids handed out
  before this add are matched to groups greedily, largest overlap (members from before
  this add) first, ties by the older cluster, then the group's earliest article; each id
  and each group is matched at most once;
- bridging: an article matching two stories goes wherever the linkage puts it; the
  stories merge only when the linkage joins them (their weighted average similarity,
  bridge included, reaches ``link_threshold``). Then the older id continues the merged
  story and the other is *retired* into it: ``story(old)`` raises ``RetiredClusterError``
  (a KeyError naming the live id; ``follow=True`` returns the live story), ``resolve``
  maps it to the live id, ``retired(updated_since)`` lists it, ``Placement.merged``
  reports it;
- a group left without an id (a new story, or the part split off an old one) gets a new
  id, ``"c" + sha1(first member id)[:12]`` (the batch id of that singleton), salted when a
  live or retired cluster has it: an id is never handed out twice. Clusters emptied by
  ``expire`` are retired too (reason ``"expired"``);
- every cluster whose members changed is marked updated, so ``clusters(updated_since)``
  and ``stories(updated_since)`` report it.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "feeds.db"
    >>> with StoryIndex.open(path) as index:
    ...     placed = index.add([{"id": "a", "text": "Quake hits Lima, 40 dead."}])
    ...     placed[0].is_new_cluster, index.story(placed[0].cluster_id).members
    (True, ('a',))
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import polars as pl

from dedup import candidates, clustering, copies, normalize, pipeline, refine, signatures
from dedup.config import Config, IndexConfig
from dedup.configfile import config_from_mapping, config_to_json
from dedup.merge import merge, story_from_dict, story_to_dict
from dedup.pipeline import DedupInputError
from dedup.records import Article, Story

__all__ = ["FORMAT", "FORMAT_VERSION", "ClusterInfo", "Placement", "RetiredCluster",
           "RetiredClusterError", "StoryIndex", "StoryIndexError"]

FORMAT = "dedup.StoryIndex"
# 2: no ``terms`` table; DF is counted from the stored term ids at load (issue #6: writing
# DF rows was a third of an add's disk writes). Version 1 files are upgraded when opened.
FORMAT_VERSION = 2
Progress = Callable[[str, int, int], None]

_BLOCKS = ("body", "names", "title", "numbers")
_SCHEMA = """
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
"""
_RETIRED_SCHEMA = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS retired"):]


class _Queue(dict[str, None]):
    """Live cluster ids, least recently linked first, that remembers what to persist.

    Setting an id always moves it to the back (and gives it the next position); the ids
    moved or dropped since the last ``saved`` are what the ``queue`` table needs.
    """

    def __init__(self, order: Iterable[str], next_pos: int) -> None:
        super().__init__(dict.fromkeys(order))
        self.next_pos = next_pos
        self.pos: dict[str, int] = {}
        self.dropped: set[str] = set()

    def __setitem__(self, key: str, value: None) -> None:
        if key in self:
            super().__delitem__(key)
        super().__setitem__(key, value)
        self.pos[key] = self.next_pos
        self.next_pos += 1
        self.dropped.discard(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.pos.pop(key, None)
        self.dropped.add(key)

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self:
            del self[key]
            return None
        return default

    def saved(self, conn: sqlite3.Connection) -> None:
        """Write the positions changed since the last save (inside the caller's write)."""
        conn.executemany("DELETE FROM queue WHERE cluster_id = ?",
                         [(c,) for c in sorted(self.dropped)])
        conn.executemany("INSERT OR REPLACE INTO queue (cluster_id, pos) VALUES (?, ?)",
                         sorted(self.pos.items()))
        self.pos.clear()
        self.dropped.clear()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translated(method: Callable[Concatenate[StoryIndex, _P], _R]
                ) -> Callable[Concatenate[StoryIndex, _P], _R]:
    """SQLite errors of a public method as one-line ``StoryIndexError``s naming the file."""

    @functools.wraps(method)
    def wrapper(self: StoryIndex, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as err:
            raise StoryIndexError(f"{self.path}: cannot read or write the story index "
                                  f"(SQLite: {err})") from None
        except sqlite3.DatabaseError as err:
            raise StoryIndexError(f"{self.path}: damaged story index (SQLite: {err}); restore "
                                  "it from a copy or rebuild it with `dedup index add`") from None

    return wrapper


class StoryIndexError(Exception):
    """The file is not a usable story index (not one, another format version, other
    signature settings, locked, closed); the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where ``add`` put one article, as committed (after the re-linkage).

    ``is_new_cluster`` says the cluster id was first handed out by this ``add``;
    ``similarity`` is the article's average similarity to the cluster's other members
    (the ``max_link_members`` most recent; 1.0 when alone); ``matched`` are those it scored
    at least ``ClusterConfig.edge_threshold`` with, best first. ``merged`` are the cluster
    ids this ``add`` retired into ``cluster_id`` (see ``StoryIndex.retired``).
    """

    id: str
    cluster_id: str
    is_new_cluster: bool
    similarity: float
    matched: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One cluster's bookkeeping: size and when it was created and last changed (UTC)."""

    cluster_id: str
    size: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RetiredCluster:
    """A cluster id no live story holds any more (it is never handed out again).

    ``reason`` is ``"merged"`` (the re-linkage joined its members to ``merged_into``'s
    story) or ``"expired"`` (``expire`` removed its last member; ``merged_into`` is None).
    ``live`` follows ``merged_into`` through later merges to the id holding the story
    now (None when that story expired).
    """

    cluster_id: str
    merged_into: str | None
    live: str | None
    retired_at: datetime
    reason: str


class RetiredClusterError(KeyError):
    """``story(cluster_id)`` for a retired id; ``live`` names the story that continues it."""

    def __init__(self, message: str, cluster_id: str, live: str | None) -> None:
        super().__init__(message)
        self.cluster_id = cluster_id
        self.live = live

    def __str__(self) -> str:
        return str(self.args[0])


# --------------------------------------------------------------------------- time


def _utc_naive(value: datetime) -> datetime:
    """Naive UTC: aware datetimes are converted, naive ones are taken as UTC already."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _epoch(value: datetime) -> float:
    return _utc_naive(value).replace(tzinfo=UTC).timestamp()


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- input

_CORE_COLUMNS = frozenset(pipeline.CORE_COLUMNS)


def _plain_articles(items: Sequence[Any]) -> list[Article] | None:
    """``to_articles(articles_frame(items))`` built directly when every item is plain: an
    ``Article`` without extras or a dict of core columns only, with a non-blank str id
    (unique), str text, str or None title and source, a naive datetime or None published
    (what the frame keeps as is). None otherwise: the frame handles the rest, errors too.

    Why: the round trip through a polars frame cost 2-3 ms per add of 100 dicts.
    """
    out: list[Article] = []
    for item in items:
        if type(item) is dict:
            if "id" not in item or "text" not in item or not item.keys() <= _CORE_COLUMNS:
                return None
            aid, text, title = item["id"], item["text"], item.get("title")
            published, source = item.get("published"), item.get("source")
        elif type(item) is Article and not item.extra:
            aid, text, title = item.id, item.text, item.title
            published, source = item.published, item.source
        else:
            return None
        if (type(aid) is not str or not aid.strip() or type(text) is not str
                or (title is not None and type(title) is not str)
                or (source is not None and type(source) is not str)
                or (published is not None and (type(published) is not datetime
                                               or published.tzinfo is not None))):
            return None
        out.append(Article(aid, text, title or "", published, source))
    if len({a.id for a in out}) != len(out):
        return None
    return out


# --------------------------------------------------------------------------- terms


class _Vocabulary:
    """Term strings seen lately, each with its hashed TF-IDF column (``refine.term_counts``)
    and its MinHash token hash (``signatures.token_hash``); body columns' hashes too.

    Why: a batch has ~40k term occurrences, and hashing each in Python, once for TF-IDF
    (sklearn's HashingVectorizer) and once for the copies shingles (``TokenHasher``), was
    a tenth of an add. Here each occurrence is one dict lookup and only strings never seen
    are hashed, by those same functions, so columns and hashes are unchanged. Past
    ``max_entries`` (~150 bytes each) it starts over, as ``TokenHasher`` does.
    """

    def __init__(self, max_entries: int = 1 << 21) -> None:
        self.max_entries = max_entries
        self.positions: dict[str, int] = {}
        self.columns = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint32)
        self.stop = np.zeros(0, dtype=bool)  # a function word (``normalize.STOPWORDS``)
        # ``token_hash(str(column))`` of body columns (the events shingles), filled lazily.
        self.column_table = np.zeros(refine.N_FEATURES, dtype=np.uint32)
        self.column_known = np.zeros(refine.N_FEATURES, dtype=bool)

    def lookup(self, terms: list[str]) -> np.ndarray:
        """Positions of ``terms`` in ``columns`` and ``hashes``; unseen terms are added."""
        if len(self.positions) > self.max_entries:
            self.positions = {}
        positions = self.positions
        found = np.fromiter(map(positions.get, terms, itertools.repeat(-1)), dtype=np.int64,
                            count=len(terms))
        missing = np.flatnonzero(found < 0).tolist()
        if missing:
            new = list(dict.fromkeys(terms[i] for i in missing))
            start, end = len(positions), len(positions) + len(new)
            if end > len(self.columns):
                size = max(end, 2 * len(self.columns))
                self.columns = np.resize(self.columns, size)
                self.hashes = np.resize(self.hashes, size)
                self.stop = np.resize(self.stop, size)
            one_each = refine.term_counts([[term] for term in new])  # a column per row
            self.columns[start:end] = one_each.indices
            self.hashes[start:end] = [signatures.token_hash(term) for term in new]
            self.stop[start:end] = [term in normalize.STOPWORDS for term in new]
            positions.update(zip(new, range(start, end), strict=True))
            found[missing] = [positions[terms[i]] for i in missing]
        return found

    def column_hashes(self, columns: np.ndarray) -> np.ndarray:
        """``signatures.token_hash(str(c))`` for each body column ``c``."""
        todo = np.unique(columns[~self.column_known[columns]])
        if len(todo):
            self.column_table[todo] = [signatures.token_hash(str(c)) for c in todo.tolist()]
            self.column_known[todo] = True
        return self.column_table[columns]


def _copy_shingles(hashes: np.ndarray, lengths: np.ndarray, n: int) -> list[np.ndarray]:
    """``signatures.copy_shingles`` of documents whose token hashes are concatenated in
    ``hashes``, ``lengths`` tokens each (n-grams crossing documents are never sliced)."""
    starts = np.cumsum(lengths) - lengths
    grams = signatures._ngram_hashes(hashes, n) if len(hashes) >= n else hashes[:0]
    out: list[np.ndarray] = []
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        if length >= n:
            out.append(grams[start : start + length - n + 1])
        else:  # a short document is one shingle of all its tokens
            out.append(signatures._ngram_hashes(hashes[start : start + length], n))
    return out


# --------------------------------------------------------------------------- LSH buckets

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)


def _band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (document, band): a mix of the band's ``rows`` min-hashes.

    Two documents share a key exactly when they share the band (up to a 2^-64 collision).
    """
    cube = sigs[:, : bands * rows].astype(np.uint64).reshape(len(sigs), bands, rows)
    with np.errstate(over="ignore"):
        h = (np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        h = np.broadcast_to(h, (len(sigs), bands)).copy()
        for c in range(rows):
            h ^= cube[:, :, c]
            h *= _MIX
            h ^= h >> _SHIFT
    return h


_Level = tuple[np.ndarray, np.ndarray]  # (sorted uint64 band keys, int64 rows)
_ROW_BITS = 40  # (document, row) pairs are packed as document << 40 | row


def _empty_level() -> _Level:
    return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)


_RADIX_BITS = 16
_RADIX_SHIFT = np.uint64(64 - _RADIX_BITS)
_RADIX_MIN = 1 << 18  # levels this large get a directory


def _radix_directory(keys: np.ndarray) -> np.ndarray:
    """Where each value of the top ``_RADIX_BITS`` bits starts in sorted ``keys``."""
    top = (keys >> _RADIX_SHIFT).astype(np.int64)
    return np.searchsorted(top, np.arange((1 << _RADIX_BITS) + 1))


def _radix_search(keys: np.ndarray, directory: np.ndarray, queries: np.ndarray, side: str
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


def _spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions starts[i], ..., starts[i] + lengths[i] - 1 for every i, concatenated."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def _ranges(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[i] : starts[i] + lengths[i]] for every i, concatenated."""
    return values[_spans(starts, lengths)]


class _BandIndex:
    """LSH buckets as sorted (key, row) tables in three levels: main, recent and small.

    Why not datasketch's dict-of-sets storage: one Python set per bucket costs ~1 KB per
    article, inserting 20k articles took 13 s and reopening 100k would rebuild for a
    minute; sorted uint64 tables cost 16 bytes per (article, band), rebuild with one
    argsort and answer a whole batch with a few ``searchsorted`` calls over its sorted
    keys (per-article lookups were a third of ``add``). A batch's keys are merged into
    ``small``, which is merged into ``recent`` past ``SMALL`` entries, which is merged into
    ``main`` when it reaches a quarter of it: inserts stay amortised O(1).
    Bucket semantics are the batch's: any shared band makes a candidate, and buckets
    larger than ``max_bucket_size`` are chained (a few most recent members), not skipped.
    """

    SMALL = 1 << 16

    def __init__(self, max_bucket_size: int, chain: int = 0) -> None:
        self.max_bucket_size = max_bucket_size
        self.chain = chain
        self.levels: list[_Level] = []
        self.directories: list[np.ndarray | None] = []
        self._set_levels([_empty_level(), _empty_level(), _empty_level()])

    def _set_levels(self, levels: list[_Level]) -> None:
        """Install new level tables; large ones changed get a new radix directory."""
        directories: list[np.ndarray | None] = []
        for k, (keys, _) in enumerate(levels):
            if len(keys) < _RADIX_MIN:
                directories.append(None)
            elif k < len(self.levels) and keys is self.levels[k][0]:
                directories.append(self.directories[k])
            else:
                directories.append(_radix_directory(keys))
        self.levels, self.directories = levels, directories

    def build(self, keys: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self._set_levels([(keys[order], rows[order]), _empty_level(), _empty_level()])

    @staticmethod
    def _merge(level: _Level, new: _Level) -> _Level:
        (keys, rows), (new_keys, new_rows) = level, new
        order = np.argsort(new_keys, kind="stable")
        at = np.searchsorted(keys, new_keys[order], side="right")
        return np.insert(keys, at, new_keys[order]), np.insert(rows, at, new_rows[order])

    def insert(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """Add documents: row ``rows[i]`` has band keys ``keys[i]``."""
        if not len(rows):
            return
        main, recent, small = self.levels
        small = self._merge(small, (keys.ravel(), np.repeat(rows, keys.shape[1])))
        if len(small[0]) > self.SMALL:
            recent, small = self._merge(recent, small), _empty_level()
        if len(recent[0]) > max(1 << 16, len(main[0]) // 4):
            main, recent = self._merge(main, recent), _empty_level()
        self._set_levels([main, recent, small])

    def remove(self, rows: np.ndarray) -> None:
        levels = []
        for keys, level_rows in self.levels:
            keep = ~np.isin(level_rows, rows)
            levels.append((keys[keep], level_rows[keep]))
        self._set_levels(levels)

    def query(self, keys: np.ndarray, valid: np.ndarray, first_row: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of a batch of new documents, as if each were queried, then inserted.

        Document ``i`` has band keys ``keys[i]`` (``valid[i]`` False: no signature, never
        a candidate) and will be row ``first_row + i``: it sees the table plus the batch's
        earlier documents. Returns (document, candidate row, shared bands), sorted by
        document then row; a bucket over the cap (counting earlier batch documents) gives
        only its ``chain`` most recent members of each level (none with ``chain`` 0).
        """
        nothing = np.empty(0, dtype=np.int64)
        docs = np.flatnonzero(valid)
        if not len(docs):
            return nothing, nothing, nothing
        bands = keys.shape[1]
        flat = keys[docs].ravel()
        order = np.argsort(flat, kind="stable")  # equal keys stay in document order
        sorted_keys = flat[order]
        doc_of = np.repeat(docs, bands)[order]
        # Earlier batch documents in the same bucket: the entries before this one among
        # equal keys (sorted keys make the searchsorted calls below cache-friendly too).
        position = np.arange(len(sorted_keys))
        new_group = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
        group_start = np.maximum.accumulate(np.where(new_group, position, 0))
        earlier = position - group_start
        lookups = []
        size = earlier.copy()
        for (level_keys, level_rows), directory in zip(self.levels, self.directories,
                                                       strict=True):
            if directory is None:
                lo = np.searchsorted(level_keys, sorted_keys, side="left")
                count = np.searchsorted(level_keys, sorted_keys, side="right") - lo
            else:
                lo = _radix_search(level_keys, directory, sorted_keys, "left")
                count = _radix_search(level_keys, directory, sorted_keys, "right") - lo
            lookups.append((level_rows, lo, count))
            size += count
        ok = (size > 0) & (size <= self.max_bucket_size)
        # A crowded bucket gives its ``chain`` most recent members from each source (the
        # batch's earlier documents, each level): the batch's ``candidates.chain_pairs``
        # link from the newest member's side, so the biggest story is never cut off (#18).
        crowded = (size > self.max_bucket_size) & (self.chain > 0)
        ok |= crowded
        take = np.where(crowded, np.minimum(earlier, self.chain), earlier)[ok]
        owner = doc_of[ok]
        found_docs = [np.repeat(owner, take)]
        found_rows = [first_row + _ranges(doc_of, (group_start + earlier)[ok] - take, take)]
        for level_rows, lo, count in lookups:
            take = np.where(crowded, np.minimum(count, self.chain), count)[ok]
            found_docs.append(np.repeat(owner, take))
            found_rows.append(_ranges(level_rows, (lo + count)[ok] - take, take))
        doc = np.concatenate(found_docs)
        row = np.concatenate(found_rows)
        own = row == first_row + doc  # only on a 64-bit key collision between two bands
        packed = (doc[~own] << _ROW_BITS) | row[~own]
        pairs, shared = np.unique(packed, return_counts=True)
        return pairs >> _ROW_BITS, pairs & ((1 << _ROW_BITS) - 1), shared


_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, 1)``, cached: ``dense_many`` asks for it per set."""
    return np.triu_indices(n, 1)


def _dense_components(adjacent: np.ndarray) -> list[np.ndarray]:
    """Connected components (sorted index arrays) of a small dense boolean adjacency
    matrix, in order of their first index; cheaper than scipy's csgraph for a few rows."""
    n = len(adjacent)
    if adjacent.all():  # a tight story: the search below would reach all in one step
        return [np.arange(n)]
    label = np.full(n, -1, dtype=np.int64)
    out: list[np.ndarray] = []
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start] = len(out)
        frontier = np.array([start])
        while len(frontier):
            reach = np.flatnonzero(adjacent[frontier].any(axis=0) & (label < 0))
            label[reach] = len(out)
            frontier = reach
        out.append(np.flatnonzero(label == len(out)))
    return out


# --------------------------------------------------------------------------- in-memory state


@dataclass(slots=True)
class _Doc:
    """An indexed article's id and cluster (terms in ``_TermStore``, text in SQLite)."""

    id: str
    cluster: str


class _YearSets:
    """Numbers the year sets of articles, with a boolean (set, year) table, so the year
    conflicts of thousands of pairs are two table lookups (``_Vectors._years``)."""

    def __init__(self) -> None:
        self.number: dict[frozenset[str], int] = {}
        self.year: dict[str, int] = {}
        self.table = np.zeros((64, 16), dtype=bool)

    def id(self, years: frozenset[str]) -> int:
        found = self.number.get(years)
        if found is None:
            found = len(self.number)
            columns = [self.year.setdefault(y, len(self.year)) for y in sorted(years)]
            rows, width = self.table.shape
            if found >= rows or len(self.year) > width:
                table = np.zeros((max(2 * rows, found + 1), max(2 * width, len(self.year))),
                                 dtype=bool)
                table[:rows, :width] = self.table
                self.table = table
            self.table[found, columns] = True
            self.number[years] = found
        return found


class _TermStore:
    """Every indexed article's term ids (int32) and TF (float32), as stored, in two flat
    arrays; by row: where its terms start, how many, its date and year set.

    Why: an add of 100 at 90k articles computes ~2.5k vectors (330k terms: candidates,
    members of the clusters it may join, re-linked neighbourhoods); gathering them from a
    pair of arrays per article cost five Python passes per vector, more than the
    arithmetic. Here they are gathered with a few array indexing calls. ``remove`` leaves
    holes, compacted once they are half the arrays.
    """

    def __init__(self) -> None:
        self.start = np.zeros(0, dtype=np.int64)  # by row
        self.length = np.zeros(0, dtype=np.int64)
        self.published = np.zeros(0, dtype=np.float64)  # epoch seconds, nan when undated
        self.year_set = np.zeros(0, dtype=np.int64)  # ``years`` number
        self.years = _YearSets()
        self.ids = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros(0, dtype=np.float32)
        self.used = 0
        self.garbage = 0

    def add(self, rows: np.ndarray, ids: np.ndarray, tf: np.ndarray, lengths: np.ndarray,
            published: np.ndarray, years: Sequence[frozenset[str]]) -> None:
        """Append articles (``ids`` and ``tf`` concatenated, ``lengths`` terms each)."""
        if len(rows) and rows.max() >= len(self.start):
            size = max(int(rows.max()) + 1, 2 * len(self.start))
            for name in ("start", "length", "published", "year_set"):
                setattr(self, name, np.resize(getattr(self, name), size))
        end = self.used + len(ids)
        if end > len(self.ids):
            self.ids = np.resize(self.ids, max(end, 2 * len(self.ids)))
            self.tf = np.resize(self.tf, max(end, 2 * len(self.tf)))
        self.ids[self.used : end] = ids
        self.tf[self.used : end] = tf
        self.start[rows] = self.used + np.cumsum(lengths) - lengths
        self.length[rows] = lengths
        self.published[rows] = published
        self.year_set[rows] = [self.years.id(y) for y in years]
        self.used = end

    def _compact(self) -> None:
        live = np.flatnonzero(self.length)
        lengths = self.length[live]
        positions = _spans(self.start[live], lengths)
        self.ids, self.tf = self.ids[positions], self.tf[positions]
        self.start[live] = np.cumsum(lengths) - lengths
        self.used, self.garbage = len(self.ids), 0

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, TF, lengths) of ``rows``, concatenated in order."""
        lengths = self.length[rows]
        positions = _spans(self.start[rows], lengths)
        return self.ids[positions], self.tf[positions], lengths

    def remove(self, rows: np.ndarray) -> None:
        self.garbage += int(self.length[rows].sum())
        self.length[rows] = 0
        if self.garbage > self.used // 2:
            self._compact()


@dataclass(slots=True)
class _ClusterState:
    seq: int
    members: list[int] = field(default_factory=list)  # rows, in insertion order


@dataclass(slots=True)
class _State:
    """Everything placement reads, loaded from SQLite and kept in step with it."""

    generation: int
    next_row: int
    next_seq: int
    df: np.ndarray  # term id (block * N_FEATURES + hashed column) -> document frequency
    terms: int  # term ids with a positive DF
    docs: dict[int, _Doc]
    store: _TermStore
    clusters: dict[str, _ClusterState]
    copies: _BandIndex
    events: _BandIndex
    retired: set[str]  # ids never to hand out again (see the ``retired`` table)
    edges: dict[int, list[int]]  # row -> rows it shares a stored edge with
    # Live cluster ids, least recently linked first (``_refresh`` re-links from the front).
    queue: _Queue
    # Exact copies (#18): copies-signature key -> live rows with it, ascending. Only the
    # first row of each key counts in DF and ``distinct``, as the batch counts a copy
    # group once: three hundred outlets running one text do not make its words common.
    copy_rows: dict[int, list[int]] = field(default_factory=dict)
    copy_key: dict[int, int] = field(default_factory=dict)  # row -> its key
    distinct: int = 0  # rows counted in DF


@dataclass(slots=True)
class _Relinked:
    """What one ``add``'s re-linkage did, and what it needs to know of the add."""

    # Cluster ids first handed out by this add (any other live id was handed out before);
    # why not the set of ids live before: copying ~50k ids per add cost more than this.
    made: set[str]
    first_new: int  # rows from here on arrived in this add
    vectors: _Vectors
    moved: dict[int, str] = field(default_factory=dict)  # row -> its cluster before
    retired: dict[str, str] = field(default_factory=dict)  # id -> the live id continuing it
    done: set[int] = field(default_factory=set)  # rows already re-linked in this add
    # new row -> (sorted rows of its neighbourhood, its dense scores with them)
    sims: dict[int, tuple[list[int], np.ndarray]] = field(default_factory=dict)
    # sorted rows of a neighbourhood about to be re-linked -> its dense scores
    # (``_Vectors.dense_many``), computed together ahead of the one-by-one re-linkage
    prefetched: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)
    # row -> its ``_component`` as the plans found it (still exact when the re-linkage
    # reaches it: re-linking one closed component leaves every other unchanged)
    components: dict[int, set[int] | None] = field(default_factory=dict)


class _Vectors:
    """Rows' TF-IDF vectors under one add's IDF, each computed once and shared by the
    placement, the re-linkage and the ``Placement`` scores of that add.

    Why: DF and the corpus size do not change while a batch is placed, so a row's vector
    is the same for every comparison of the add; recomputing IDF and norms per comparison
    was most of the scoring time. A vector is block b's TF-IDF (body and names with
    IDF^``idf_power``), L2-normalised per block and scaled by sqrt(weight_b): a dot product
    is ``refine``'s blended score, before the year-conflict factor and the date window.
    Vectors live in flat arrays (row -> slot -> span), gathered with one index per call.
    Every row asked about must be in ``state.store`` when this is made.
    """

    PAIRWISE_MAX = 10  # ``dense_many`` scores sets up to this many rows pair by pair

    def __init__(self, index: StoryIndex, state: _State, n_docs: int) -> None:
        refine_cfg = index.config.refine
        self.store = state.store
        self.df = state.df
        self.n_docs = n_docs
        self.idf_power = refine_cfg.idf_power
        self.weights = index._weights()
        self.year_factor = refine_cfg.year_conflict_factor
        window = refine_cfg.date_window_days
        self.window = None if window is None else window * 86400.0
        self.scratch, self.local = index._scratch_arrays(len(state.df))
        self.slot = np.full(len(self.store.start), -1, dtype=np.int64)  # by row
        self.n_slots = 0
        # By slot: where the vector starts, its length, the article's date and year set.
        self.starts = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.stamps = np.zeros(0, dtype=np.float64)
        self.year_sets = np.zeros(0, dtype=np.int64)
        # By position: term ids and weights of all vectors.
        self.ids = np.zeros(0, dtype=np.int32)
        self.values = np.zeros(0, dtype=np.float64)
        self.used = 0

    def idf_scale(self, ids: np.ndarray) -> np.ndarray:
        """Current smoothed IDF (scikit-learn's), raised to ``idf_power`` for body and names
        (computed in place: this runs over every term of every vector of an add)."""
        idf = self.df[ids].astype(np.float64)
        idf += 1.0
        np.divide(1.0 + self.n_docs, idf, out=idf)
        np.log(idf, out=idf)
        idf += 1.0
        if self.idf_power == 2.0:  # np.power gives x * x for 2.0, three times slower
            np.multiply(idf, idf, out=idf, where=ids < 2 * refine.N_FEATURES)
        elif self.idf_power != 1.0:
            np.power(idf, self.idf_power, out=idf, where=ids < 2 * refine.N_FEATURES)
        return idf

    def ensure(self, rows: Sequence[int] | np.ndarray) -> None:
        """Compute the vectors of ``rows`` not computed yet, all in one pass."""
        rows = np.asarray(rows, dtype=np.int64)
        todo = np.unique(rows[self.slot[rows] < 0])
        if not len(todo):
            return
        ids, tf, lengths = self.store.gather(todo)  # int32 and float32, as stored
        blk = ids // refine.N_FEATURES
        key = np.repeat(np.arange(0, 4 * len(todo), 4, dtype=np.int64), lengths) + blk
        w = self.idf_scale(ids)
        w *= tf
        # TF and IDF are positive, so every block that has a term has a positive norm.
        values = w / np.sqrt(np.bincount(key, w * w, minlength=4 * len(todo)))[key]
        values *= self.weights[blk]
        first, end = self.n_slots, self.used + len(ids)
        if end > len(self.ids):
            size = max(end, 2 * len(self.ids))
            self.ids = np.resize(self.ids, size)
            self.values = np.resize(self.values, size)
        if first + len(todo) > len(self.starts):
            size = max(first + len(todo), 2 * len(self.starts))
            self.starts = np.resize(self.starts, size)
            self.lengths = np.resize(self.lengths, size)
            self.stamps = np.resize(self.stamps, size)
            self.year_sets = np.resize(self.year_sets, size)
        self.ids[self.used : end] = ids
        self.values[self.used : end] = values
        slots = slice(first, first + len(todo))
        self.starts[slots] = self.used + np.cumsum(lengths) - lengths
        self.lengths[slots] = lengths
        self.stamps[slots] = self.store.published[todo]
        self.year_sets[slots] = self.store.year_set[todo]
        self.slot[todo] = np.arange(first, first + len(todo))
        self.n_slots += len(todo)
        self.used = end

    def slots(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.slot[np.asarray(rows, dtype=np.int64)]

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, values, lengths) of computed vectors, concatenated in order."""
        lengths = self.lengths[slots]
        positions = _spans(self.starts[slots], lengths)
        return self.ids[positions], self.values[positions], lengths

    def _years(self, slots: np.ndarray) -> np.ndarray:
        """Which years (``_YearSets``) each slot's article names, as a boolean matrix."""
        return self.store.years.table[self.year_sets[slots]]

    def _adjust(self, scores: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The year-conflict factor (both name years, none in common) and the date window
        for the pairs of slots (left[i], right[i]), in place."""
        if self.year_factor != 1.0 and len(left):
            a, b = self._years(left), self._years(right)
            conflict = a.any(axis=1) & b.any(axis=1) & ~(a & b).any(axis=1)
            scores[conflict] *= self.year_factor
        if self.window is not None:
            gap = np.abs(self.stamps[left] - self.stamps[right])
            scores[gap > self.window] = 0.0  # NaN (undated) passes
        return scores

    def scores(self, row: int, rows: Sequence[int]) -> np.ndarray:
        """Blended scores of ``row`` with each of ``rows`` (``refine.pair_scores``)."""
        if not len(rows):
            return np.empty(0, dtype=np.float64)
        self.ensure([row, *rows])
        a_slot = self.slots([row])
        b_slots = self.slots(rows)
        a_ids, a_values, _ = self.gather(a_slot)
        ids, values, lengths = self.gather(b_slots)
        scratch = self.scratch
        scratch[a_ids] = a_values
        try:
            product = values * scratch[ids]
        finally:
            scratch[a_ids] = 0.0
        seg = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        scores = np.bincount(seg, product, minlength=len(rows))
        return self._adjust(scores, np.repeat(a_slot, len(rows)), b_slots)

    def pair_scores(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Blended scores of the pairs (left[i], right[i]), ``left`` sorted.

        The left rows (a batch's new articles) are laid out densely over their own terms,
        64 at a time, plus a zero column that every other term maps to; each right row's
        entries then look their partner's weight up by index: one pass over all pairs
        instead of one scoring call per article.
        """
        out = np.zeros(len(left), dtype=np.float64)
        if not len(left):
            return out
        self.ensure(np.concatenate([left, right]))
        left_slots, right_slots = self.slots(left), self.slots(right)
        lefts = np.unique(left)
        for start in range(0, len(lefts), 64):
            block = lefts[start : start + 64]
            lo = int(np.searchsorted(left, block[0], side="left"))
            hi = int(np.searchsorted(left, block[-1], side="right"))
            columns, values, lengths = self.gather(self.slots(block))
            dense = np.zeros((len(block), self._columns(columns) + 1))  # -1: not here
            dense[np.repeat(np.arange(len(block)), lengths), self.local[columns]] = values
            ids, values, lengths = self.gather(right_slots[lo:hi])
            try:
                cols = self.local[ids]
            finally:
                self.local[columns] = -1
            pair = np.repeat(np.arange(hi - lo), lengths)
            owner = np.searchsorted(block, left[lo:hi])[pair]
            # Flat positions: a term not in the block (column -1) lands on the zero column
            # ending the row before (the last row's for row 0).
            width = dense.shape[1]
            out[lo:hi] = np.bincount(pair, values * dense.ravel().take(owner * width + cols),
                                     minlength=hi - lo)
        return self._adjust(out, left_slots, right_slots)

    def dense_many(self, sets: Sequence[Sequence[int]]) -> dict[tuple[int, ...], np.ndarray]:
        """``dense`` of several sets of rows (sorted), keyed by the tuple of rows.

        Why: most re-linked neighbourhoods have a few rows, where ``dense``'s fixed cost
        (a dozen array calls) outweighs its arithmetic; the pairs of all sets up to
        ``PAIRWISE_MAX`` rows go through one ``pair_scores`` pass instead (the same
        scores, up to rounding in the last bit). Larger sets use ``dense``.
        """
        out: dict[tuple[int, ...], np.ndarray] = {}
        small = [s for s in sets if len(s) <= self.PAIRWISE_MAX]
        for rows in sets:
            if len(rows) > self.PAIRWISE_MAX:
                out[tuple(rows)] = self.dense(rows)
        if not small:
            return out
        flat = [r for rows in small for r in rows]
        self.ensure(flat)
        _, values, lengths = self.gather(self.slots(flat))
        squares = np.bincount(np.repeat(np.arange(len(flat)), lengths), values * values,
                              minlength=len(flat)).tolist()
        left: list[int] = []
        right: list[int] = []
        for rows in small:
            for i, a in enumerate(rows):
                left.extend(itertools.repeat(a, len(rows) - i - 1))
                right.extend(rows[i + 1 :])
        left_array = np.asarray(left, dtype=np.int64)
        order = np.argsort(left_array, kind="stable")
        scores = np.empty(len(left), dtype=np.float64)
        scores[order] = self.pair_scores(left_array[order],
                                         np.asarray(right, dtype=np.int64)[order])
        at = start = 0
        for rows in small:
            n = len(rows)
            upper = _upper(n)
            sim = np.empty((n, n), dtype=np.float64)
            count = n * (n - 1) // 2
            sim[upper] = scores[at : at + count]
            sim[upper[1], upper[0]] = scores[at : at + count]
            np.fill_diagonal(sim, squares[start : start + n])
            out[tuple(rows)] = sim
            at += count
            start += n
        return out

    def _columns(self, ids: np.ndarray) -> int:
        """Number the distinct terms of ``ids`` 0, 1, ... in ``self.local`` (the caller
        resets ``self.local[ids]`` to -1); returns how many there are.

        Why not ``np.unique``: it sorts every gathered term; writing positions into the
        all-terms map, reading them back and ranking the kept ones is a few linear passes
        (columns come in no particular order, which only moves the last bit of a sum).
        """
        local = self.local
        local[ids] = np.arange(len(ids), dtype=np.int32)
        kept = np.zeros(len(ids), dtype=bool)
        kept[local[ids]] = True  # one position per distinct term
        rank = np.cumsum(kept, dtype=np.int32)
        local[ids] = rank[local[ids]] - 1
        return int(rank[-1]) if len(rank) else 0

    def dense(self, rows: Sequence[int]) -> np.ndarray:
        """All-pairs blended scores among ``rows`` (as ``refine.block_similarity``).

        Only terms two of the rows share can add to an off-diagonal score, so the product
        runs over those columns (a fraction of them all); the diagonal is each row's own
        sum of squares.
        """
        self.ensure(rows)
        slots = self.slots(rows)
        ids, values, lengths = self.gather(slots)
        try:
            n_columns = self._columns(ids)
            cols = self.local[ids]
            shared = np.bincount(cols, minlength=n_columns) > 1
        finally:
            self.local[ids] = -1
        seg = np.repeat(np.arange(len(rows)), lengths)
        local = np.cumsum(shared) - 1
        keep = shared[cols]
        matrix = np.zeros((len(rows), int(local[-1]) + 1 if len(local) else 0))
        matrix[seg[keep], local[cols[keep]]] = values[keep]
        sim = matrix @ matrix.T
        np.fill_diagonal(sim, np.bincount(seg, values * values, minlength=len(rows)))
        if self.year_factor != 1.0:
            years = self._years(slots).astype(np.float64)
            dated = years.sum(axis=1) > 0
            conflict = np.outer(dated, dated) & ((years @ years.T) == 0)
            sim[conflict] *= self.year_factor
        if self.window is not None:
            stamps = self.stamps[slots]
            sim[np.abs(stamps[:, None] - stamps[None, :]) > self.window] = 0.0
        return sim


# --------------------------------------------------------------------------- the index


class StoryIndex:
    """An incremental, persistent index of stories; see the module docstring for the rules.

    Open with ``StoryIndex.open(path)``; use it as a context manager or call ``close``.
    One ``StoryIndex`` object is for one thread; many processes may open the same file.
    A new index stores the settings it was created with (``read_config``); the CLI opens
    it with them, while ``open`` uses the ``config`` it is given (defaults when None) and
    checks only the signature settings against the file.
    """

    def __init__(
        self,
        path: str | Path,
        config: Config | None = None,
        *,
        index_config: IndexConfig | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.config = config or Config()
        self.index_config: IndexConfig = (
            index_config or getattr(self.config, "index", None) or IndexConfig()
        )
        if self.index_config.story_refresh not in ("read", "add"):
            raise ValueError(
                f"story_refresh must be 'read' or 'add', not {self.index_config.story_refresh!r}"
            )
        cand, sig = self.config.candidates, self.config.signatures
        self._copy_bands = candidates.lsh_params(cand.copies_threshold, sig.num_perm)
        self._event_bands = candidates.lsh_params(cand.events_threshold, sig.num_perm)
        self._vocabulary = _Vocabulary()
        self._minhasher = signatures.MinHasher(sig.num_perm, sig.seed)
        self._state: _State | None = None
        self._scratch = np.zeros(0, dtype=np.float64)
        self._local = np.zeros(0, dtype=np.int32)
        self._conn = self._connect(create)

    @classmethod
    def open(
        cls,
        path: str | Path,
        config: Config | None = None,
        *,
        index_config: IndexConfig | None = None,
        create: bool = True,
    ) -> StoryIndex:
        """Open the index at ``path``, creating it when missing (unless ``create=False``).

        Raises StoryIndexError for a file that is not a story index, one written by another
        format version, or one built with other signature settings.
        """
        return cls(path, config, index_config=index_config, create=create)

    def __enter__(self) -> StoryIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._state = None

    # -- opening --------------------------------------------------------------------

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
            raise self._fail(f"not a dedup story index, or a damaged one (SQLite: {err})"
                             ) from None
        except BaseException:
            conn.close()
            raise
        return conn

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
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in self._meta().items()]
                + [("generation", "0"), ("next_row", "1"), ("next_seq", "1"), ("terms", "0"),
                   ("created_at", str(time.time())),
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
        if not {"edges", "queue"} <= tables:  # written before issues #6, #22: add them
            try:
                for statement in _RETIRED_SCHEMA.split(";"):
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

    def _current_state(self) -> _State:
        """The in-memory state, reloaded when another process wrote (call inside a write)."""
        generation = self._meta_int("generation")
        if self._state is None or self._state.generation != generation:
            self._state = None
            self._state = self._load(generation)
        return self._state

    def _load(self, generation: int) -> _State:
        """Read per-article terms and signatures, count DF; rebuild the LSH tables."""
        conn = self.conn
        clusters = {
            cid: _ClusterState(seq)
            for cid, seq in conn.execute("SELECT id, seq FROM clusters ORDER BY seq")
        }
        docs: dict[int, _Doc] = {}
        sigs: dict[str, tuple[list[int], list[bytes]]] = {"copies": ([], []), "events": ([], [])}
        term_blobs: list[bytes] = []
        tf_blobs: list[bytes] = []
        published: list[float] = []
        year_sets: list[frozenset[str]] = []
        cursor = conn.execute(
            "SELECT a.row, a.id, a.cluster_id, a.published_ts, s.copies, s.events, s.term_ids,"
            " s.term_tf, s.years FROM articles a JOIN signatures s ON s.row = a.row"
            " ORDER BY a.row"
        )
        for row, aid, cid, pub, copy_blob, events, term_ids, term_tf, years in cursor:
            docs[row] = _Doc(aid, cid)
            term_blobs.append(term_ids)
            tf_blobs.append(term_tf)
            published.append(math.nan if pub is None else pub)
            year_sets.append(frozenset(years.split()))
            clusters[cid].members.append(row)
            for name, blob in (("copies", copy_blob), ("events", events)):
                if blob is not None:
                    sigs[name][0].append(row)
                    sigs[name][1].append(blob)
        store = _TermStore()
        term_ids = np.frombuffer(b"".join(term_blobs), dtype=np.int32)
        store.add(np.fromiter(docs, dtype=np.int64, count=len(docs)), term_ids,
                  np.frombuffer(b"".join(tf_blobs), dtype=np.float32),
                  np.fromiter(map(len, term_blobs), dtype=np.int64, count=len(docs)) // 4,
                  np.asarray(published, dtype=np.float64), year_sets)
        copy_rows: dict[int, list[int]] = {}
        copy_key: dict[int, int] = {}
        copy_ids, copy_blobs = sigs["copies"]
        if copy_ids:
            keys = copies.signature_keys(np.frombuffer(b"".join(copy_blobs), dtype=np.uint32)
                                         .reshape(len(copy_ids), -1))
            for row, key in zip(copy_ids, keys.tolist(), strict=True):
                copy_key[row] = key
                copy_rows.setdefault(key, []).append(row)
        doc_rows = np.fromiter(docs, dtype=np.int64, count=len(docs))
        counted = np.fromiter((r not in copy_key or copy_rows[copy_key[r]][0] == r
                               for r in doc_rows.tolist()), dtype=bool, count=len(docs))
        df = np.zeros(len(_BLOCKS) * refine.N_FEATURES, dtype=np.int32)  # 16 MB, cache-kinder
        if len(term_ids):
            entries = np.repeat(counted, [len(b) // 4 for b in term_blobs])
            df += np.bincount(term_ids[entries], minlength=len(df)).astype(np.int32)
        tables = []
        cand = self.config.candidates
        for name, (bands, rows_per_band), cap in (
            ("copies", self._copy_bands, cand.copies_max_bucket_size),
            ("events", self._event_bands, cand.events_max_bucket_size),
        ):
            table = _BandIndex(cap, cand.crowded_chain)
            ids, blobs = sigs[name]
            if ids:
                matrix = np.frombuffer(b"".join(blobs), dtype=np.uint32).reshape(len(ids), -1)
                keys = _band_keys(matrix, bands, rows_per_band)
                table.build(keys.ravel(), np.repeat(np.asarray(ids, dtype=np.int64), bands))
            tables.append(table)
        return _State(
            generation=generation,
            next_row=self._meta_int("next_row"),
            next_seq=self._meta_int("next_seq"),
            df=df,
            terms=int(np.count_nonzero(df)),
            docs=docs,
            store=store,
            clusters=clusters,
            copies=tables[0],
            events=tables[1],
            retired={r[0] for r in conn.execute("SELECT id FROM retired")},
            edges=self._load_edges(conn),
            queue=self._load_queue(conn, clusters),
            copy_rows=copy_rows,
            copy_key=copy_key,
            distinct=int(counted.sum()),
        )

    @staticmethod
    def _load_queue(conn: sqlite3.Connection, clusters: Mapping[str, _ClusterState]) -> _Queue:
        """The refresh queue as the last add left it: positions from the ``queue`` table,
        clusters without one first, by age (``clusters`` is in ``seq`` order)."""
        pos = dict(conn.execute("SELECT cluster_id, pos FROM queue"))
        order = sorted(clusters, key=lambda c: (c in pos, pos.get(c, 0), clusters[c].seq))
        return _Queue(order, max(pos.values(), default=0) + 1)

    @staticmethod
    def _load_edges(conn: sqlite3.Connection) -> dict[int, list[int]]:
        edges: dict[int, list[int]] = {}
        for a, b in conn.execute("SELECT a, b FROM edges"):
            edges.setdefault(a, []).append(b)
            edges.setdefault(b, []).append(a)
        return edges

    # -- public API: writing ------------------------------------------------------------

    @_translated
    def add(
        self,
        articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
        *,
        progress: Progress | None = None,
    ) -> list[Placement]:
        """Place new articles, in order, into the index's clusters; one transaction.

        Args:
            articles: what ``dedup.cluster`` takes (a frame, dicts or ``Article`` records).
            progress: called as ``progress("add", done, total)`` while placing.

        Returns one ``Placement`` per article, in input order. Raises ``DedupInputError``
        for a missing id or text column, an empty id, an id repeated in the batch or
        already in the index; the index is then unchanged. A crash or kill mid-batch
        leaves the index as it was before the batch.

        Example:
            >>> index.add([{"id": "b", "text": "Lima quake: 40 dead."}])[0].cluster_id
            ... # doctest: +SKIP
            'c...'
        """
        if not isinstance(articles, pl.DataFrame):
            articles = list(articles)
        batch = None if isinstance(articles, pl.DataFrame) else _plain_articles(articles)
        if batch is None:
            batch = pipeline.to_articles(pipeline.articles_frame(articles))
        if not batch:
            return []
        prepared = [pipeline.prepare(a.text, a.title, frozenset(), body=False) for a in batch]
        with self._write() as conn:
            self._reject_known([a.id for a in batch])
            state = self._current_state()
            try:
                return self._place(conn, state, batch, prepared, progress)
            except BaseException:
                self._state = None  # memory may hold half a batch: reload on next use
                raise

    def _reject_known(self, ids: Sequence[str]) -> None:
        known = self.existing(ids)
        if known:
            first = next(i for i in ids if i in known)
            raise DedupInputError(
                f"duplicate id {first!r}: it is already in the index {self.path} "
                f"({len(known)} of this batch are); ids must be unique"
            )

    @_translated
    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are in the index."""
        out: set[str] = set()
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                r[0]
                for r in self.conn.execute(f"SELECT id FROM articles WHERE id IN ({marks})", chunk)
            )
        return out

    def _place(
        self,
        conn: sqlite3.Connection,
        state: _State,
        batch: Sequence[Article],
        prepared: Sequence[pipeline.Prepared],
        progress: Progress | None,
    ) -> list[Placement]:
        now = time.time()
        cfg = self.config
        # 1. Streaming DF: the whole batch is counted before any of it is placed.
        ids, tf, lengths, token_hashes, token_counts = self._count_terms(state, prepared)
        first = state.next_row
        rows = list(range(first, first + len(batch)))
        copy_sets = _copy_shingles(token_hashes, token_counts, cfg.signatures.shingle_size)
        copy_sigs = self._minhasher.signatures(copy_sets)
        has_copy = np.fromiter((len(s) > 0 for s in copy_sets), dtype=bool, count=len(batch))
        counted = self._count_copies(state, rows, copy_sigs, has_copy)
        self._count_df(state, ids[np.repeat(counted, lengths)], 1)
        n_docs = state.distinct
        published = np.array([math.nan if a.published is None else _epoch(a.published)
                              for a in batch], dtype=np.float64)
        years = [frozenset(p.terms.years) for p in prepared]
        state.store.add(np.asarray(rows, dtype=np.int64), ids, tf, lengths, published, years)
        vectors = _Vectors(self, state, n_docs)
        # 2. Signatures (events terms ranked with the current IDF), vectorised per batch.
        salient = self._salient(vectors, ids, tf, lengths)
        event_sets = [self._vocabulary.column_hashes(columns) for columns in salient]
        event_sigs = self._minhasher.signatures(event_sets)
        copy_keys = _band_keys(copy_sigs, *self._copy_bands)
        event_keys = _band_keys(event_sigs, *self._event_bands)
        has_event = np.fromiter((len(s) > 0 for s in event_sets), dtype=bool, count=len(batch))
        # 3. Candidates and their scores for the whole batch at once: neither depends on
        # where the batch's earlier articles are placed (each article sees those before it).
        candidates = self._candidates(state, copy_keys, has_copy, event_keys, has_event, first)
        scores = self._batch_scores(state, vectors, rows, [c.tolist() for c in candidates])
        # 4. Place one by one (greedy); later articles of the batch see the earlier ones.
        made: set[str] = set()
        edges: list[list[int]] = []
        edge_rows: list[tuple[int, int]] = []
        touched: set[str] = set()
        article_rows: list[tuple[Any, ...]] = []
        signature_rows: list[tuple[Any, ...]] = []
        ends = np.cumsum(lengths).tolist()
        starts = (np.cumsum(lengths) - lengths).tolist()
        stamps, copied, evented = published.tolist(), has_copy.tolist(), has_event.tolist()
        for k, article in enumerate(batch):
            row = first + k
            cid, linked = self._choose(state, vectors, row, candidates[k].tolist(), scores[k])
            state.next_row += 1
            if not cid:
                cid = self._new_cluster_id(state, article.id)
                made.add(cid)
                state.clusters[cid] = _ClusterState(state.next_seq)
                state.next_seq += 1
                state.queue[cid] = None
            state.clusters[cid].members.append(row)
            state.docs[row] = _Doc(article.id, cid)
            for other in linked:
                state.edges.setdefault(row, []).append(other)
                state.edges.setdefault(other, []).append(row)
            edge_rows.extend((row, other) for other in linked)
            touched.add(cid)
            edges.append(linked)
            article_rows.append(self._article_row(row, article, now, stamps[k], cid))
            signature_rows.append((
                row,
                copy_sigs[k].tobytes() if copied[k] else None,
                event_sigs[k].tobytes() if evented[k] else None,
                ids[starts[k] : ends[k]].tobytes(),
                tf[starts[k] : ends[k]].tobytes(),
                " ".join(sorted(years[k])),
            ))
            if progress:
                progress("add", k + 1, len(batch))
        row_array = np.asarray(rows, dtype=np.int64)
        state.copies.insert(row_array[has_copy], copy_keys[has_copy])
        state.events.insert(row_array[has_event], event_keys[has_event])
        self._flush_rows(conn, article_rows, signature_rows)
        conn.executemany("INSERT OR IGNORE INTO edges (a, b) VALUES (?, ?)", edge_rows)
        # 5. Re-link the batch's neighbourhoods with the batch's average linkage.
        merged: dict[str, list[str]] = {}
        ctx = _Relinked(made, rows[0], vectors)
        if self.index_config.relink:
            self._relink(state, rows, edges, ctx)
            conn.executemany("UPDATE articles SET cluster_id = ? WHERE row = ?",
                             [(state.docs[r].cluster, r) for r in sorted(ctx.moved)])
            touched.update(state.docs[r].cluster for r in ctx.moved)
            touched.update(old for old in ctx.moved.values() if old in state.clusters)
            for old, into in sorted(ctx.retired.items()):
                merged.setdefault(into, []).append(old)
            self._retire(conn, state, ctx.retired, now)
        touched = {cid for cid in touched if cid in state.clusters}
        created = {cid: state.clusters[cid].seq for cid in touched if cid in made}
        placements = [
            self._placement(state, row, ctx, cid in created, tuple(merged.get(cid, ())))
            for row in rows
            for cid in (state.docs[row].cluster,)
        ]
        # 6. Clusters, stories, meta: the rest of the same transaction.
        self._touch(conn, state, touched, created, now)
        state.generation += 1
        self._set_meta(conn, generation=state.generation, next_row=state.next_row,
                       next_seq=state.next_seq, terms=state.terms)
        state.queue.saved(conn)
        return placements

    def _batch_scores(self, state: _State, vectors: _Vectors, rows: Sequence[int],
                      candidates: Sequence[list[int]]) -> list[dict[int, float]]:
        """Per new article, its scores with its candidates and with the members ``_choose``
        will average over (those of the clusters holding a candidate it matches, as the
        index stands before the batch): two vectorised passes instead of two scoring calls
        per article. ``_choose`` scores what the batch's own placements add."""
        left = np.repeat(np.asarray(rows, dtype=np.int64), [len(c) for c in candidates])
        right = np.asarray([r for c in candidates for r in c], dtype=np.int64)
        flat = vectors.pair_scores(left, right).tolist()
        scores, at = [], 0
        for found in candidates:
            scores.append(dict(zip(found, flat[at : at + len(found)], strict=True)))
            at += len(found)
        edge, keep = self.config.clustering.edge_threshold, self.index_config.max_link_members
        more: list[tuple[int, int]] = []
        for k, known in enumerate(scores):
            clusters = {state.docs[r].cluster for r, score in known.items()
                        if score >= edge and r in state.docs}
            more.extend((k, m) for cid in sorted(clusters)
                        for m in state.clusters[cid].members[-keep:] if m not in known)
        if more:
            index = np.asarray([k for k, _ in more], dtype=np.int64)
            members = np.asarray([m for _, m in more], dtype=np.int64)
            values = vectors.pair_scores(np.asarray(rows, dtype=np.int64)[index], members)
            for k, m, value in zip(index.tolist(), members.tolist(), values.tolist(),
                                   strict=True):
                scores[k][m] = value
        return scores

    def _placement(self, state: _State, row: int, ctx: _Relinked, is_new: bool,
                   merged: tuple[str, ...]) -> Placement:
        """An article's ``Placement`` in its final cluster, scored with the current IDF."""
        doc = state.docs[row]
        others = [r for r in state.clusters[doc.cluster].members if r != row]
        others = others[-self.index_config.max_link_members:]
        if not others:
            return Placement(doc.id, doc.cluster, is_new, 1.0, (), merged)
        known = ctx.sims.get(row)
        if known is not None and set(others) <= set(known[0]):
            scores = known[1][np.searchsorted(known[0], others)]
        else:
            scores = ctx.vectors.scores(row, others)
        edge = self.config.clustering.edge_threshold
        matched = sorted(((s, state.docs[r].id) for r, s in zip(others, scores.tolist(),
                                                                strict=True) if s >= edge),
                         key=lambda m: (-m[0], m[1]))
        return Placement(doc.id, doc.cluster, is_new, round(float(scores.mean()), 6),
                         tuple(i for _, i in matched), merged)

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
        pub = None if article.published is None else _utc_naive(article.published).isoformat()
        extra = json.dumps(article.extra, default=str) if article.extra else None
        stamp = None if math.isnan(published) else published
        return (row, article.id, article.title, article.text, pub, article.source, extra, now,
                stamp, now if stamp is None else stamp, cid)

    def _set_meta(self, conn: sqlite3.Connection, **values: int) -> None:
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                         [(str(v), k) for k, v in values.items()])

    def _touch(
        self,
        conn: sqlite3.Connection,
        state: _State,
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
            story = merge(self._members(cid), cid, self.config)
            conn.execute(
                "INSERT OR REPLACE INTO stories (cluster_id, version, json) VALUES (?, ?, ?)",
                (cid, version, json.dumps(story_to_dict(story), ensure_ascii=False)),
            )

    def _count_terms(
        self, state: _State, prepared: Sequence[pipeline.Prepared]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Term ids (int32, sorted per article) and sublinear TF (float32) of all articles,
        concatenated, and each article's count (DF is ``_count_df``'s). Then the copies
        tokens' hashes, concatenated too, and each article's count.

        A term id is block b's hashed column c (``refine.term_counts``) as b * N_FEATURES
        + c, blocks in ``_BLOCKS`` order; one sort over (article, term id) counts them all.
        The body block is the tokens that are not function words (``pipeline.prepare``), so
        it is read off the tokens' lookups instead of looking each body word up again.
        """
        flat: list[str] = []
        lengths: list[int] = []
        for p in prepared:
            for part in (p.tokens, *(getattr(p.terms, name) for name in _BLOCKS[1:])):
                flat.extend(part)
                lengths.append(len(part))
        vocabulary = self._vocabulary
        position = vocabulary.lookup(flat)
        n, width = len(prepared), len(_BLOCKS) * refine.N_FEATURES
        counts = np.asarray(lengths, dtype=np.int64)
        # Part 0 is the tokens, part k >= 1 is block k (the body, block 0, comes from part 0).
        part = np.repeat(np.tile(np.arange(len(_BLOCKS)), n), counts)
        doc = np.repeat(np.arange(n, dtype=np.int64), counts.reshape(n, -1).sum(axis=1))
        is_token = part == 0
        token_positions = position[is_token]
        token_hashes = vocabulary.hashes[token_positions]
        body = ~vocabulary.stop[token_positions]
        term = ~is_token
        keys = np.concatenate((
            doc[is_token][body] * width + vocabulary.columns[token_positions[body]],
            doc[term] * width + part[term] * refine.N_FEATURES + vocabulary.columns[position[term]],
        ))
        keys, occurrences = np.unique(keys, return_counts=True)
        ids = keys % width
        tf = occurrences.astype(np.float64)
        if self.config.refine.sublinear_tf:
            tf = 1.0 + np.log(tf)
        # Kept as stored (int32, float32) so a reopened index scores exactly the same.
        per_article = np.bincount(keys // width, minlength=n)
        return (ids.astype(np.int32), tf.astype(np.float32), per_article, token_hashes,
                counts[:: len(_BLOCKS)])

    @staticmethod
    def _count_copies(state: _State, rows: Sequence[int], copy_sigs: np.ndarray,
                      has_copy: np.ndarray) -> np.ndarray:
        """Record the new rows' copies keys; True where a row counts in DF (no live row
        before it has its copies signature: the batch's exact copy rule, #18)."""
        counted = np.ones(len(rows), dtype=bool)
        keys = copies.signature_keys(copy_sigs).tolist()
        for k, row in enumerate(rows):
            if not has_copy[k]:
                continue
            state.copy_key[row] = key = keys[k]
            same = state.copy_rows.setdefault(key, [])
            counted[k] = not same
            same.append(row)
        state.distinct += int(counted.sum())
        return counted

    @staticmethod
    def _count_df(state: _State, ids: np.ndarray, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) one article's worth of DF per term in ``ids``
        (term ids of whole articles, unique per article), keeping ``state.terms``."""
        changed, df_counts = np.unique(ids, return_counts=True)
        if sign > 0:
            state.df[changed] += df_counts.astype(state.df.dtype)
            state.terms += int(np.count_nonzero(state.df[changed] == df_counts))
        else:
            np.subtract.at(state.df, ids, 1)
            state.terms -= int(np.count_nonzero(state.df[changed] <= 0))

    def _salient(self, vectors: _Vectors, term_ids: np.ndarray, tf: np.ndarray,
                 lengths: np.ndarray) -> list[np.ndarray]:
        """Per article (``lengths`` of the concatenated ``term_ids`` and ``tf`` each), the
        top ``salient_terms`` body columns by current TF-IDF (ties by column), whose names
        (``refine.salient_terms``) are the events shingles; one sort for the whole batch."""
        if not len(lengths):
            return []
        doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        ids = term_ids.astype(np.int64)
        body = ids < refine.N_FEATURES
        doc, cols = doc[body], ids[body]
        weights = tf[body] * vectors.idf_scale(cols)
        order = np.lexsort((cols, -weights, doc))
        doc, cols = doc[order], cols[order]
        rank = np.arange(len(doc)) - np.searchsorted(doc, doc, side="left")
        keep = rank < self.config.refine.salient_terms
        doc, cols = doc[keep], cols[keep]
        bounds = np.searchsorted(doc, np.arange(1, len(lengths)))
        return np.split(cols, bounds)

    def _weights(self) -> np.ndarray:
        r = self.config.refine
        return np.sqrt(np.array([r.text_weight, r.names_weight, r.title_weight,
                                 r.numbers_weight], dtype=np.float64))

    def _scratch_arrays(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Zeroed float scratch and -1 filled column map over all term ids, kept between
        adds (allocating 48 MB per add would cost more than the scoring)."""
        if len(self._scratch) < size:
            self._scratch = np.zeros(size, dtype=np.float64)
            self._local = np.full(size, -1, dtype=np.int32)
        return self._scratch, self._local

    def _candidates(self, state: _State, copy_keys: np.ndarray, has_copy: np.ndarray,
                    event_keys: np.ndarray, has_event: np.ndarray, first_row: int
                    ) -> list[np.ndarray]:
        """Per new article (row ``first_row + i``), the sorted rows sharing a copies band,
        plus the events partners sharing the most bands.

        As ``candidates.lsh_pairs``: events partners need ``events_min_collisions`` shared
        bands and only the ``events_max_per_doc`` strongest are kept (ties: most recent),
        here seen from the new article's side only. Each article sees the index and the
        batch's articles before it.
        """
        cand = self.config.candidates
        copy_doc, copy_row, _ = state.copies.query(copy_keys, has_copy, first_row)
        event_doc, event_row, shared = state.events.query(event_keys, has_event, first_row)
        keep = shared >= cand.events_min_collisions
        event_doc, event_row, shared = event_doc[keep], event_row[keep], shared[keep]
        limit = self.index_config.events_candidates or cand.events_max_per_doc
        if limit is not None and len(event_doc):
            order = np.lexsort((-event_row, -shared, event_doc))
            event_doc, event_row = event_doc[order], event_row[order]
            rank = np.arange(len(event_doc)) - np.searchsorted(event_doc, event_doc)
            event_doc, event_row = event_doc[rank < limit], event_row[rank < limit]
        packed = np.unique(np.concatenate([(copy_doc << _ROW_BITS) | copy_row,
                                           (event_doc << _ROW_BITS) | event_row]))
        doc = packed >> _ROW_BITS
        bounds = np.searchsorted(doc, np.arange(1, len(copy_keys)))
        return np.split(packed & ((1 << _ROW_BITS) - 1), bounds)

    def _choose(self, state: _State, vectors: _Vectors, row: int, candidates: list[int],
                scores: dict[int, float]) -> tuple[str, list[int]]:
        """Greedy placement: the best existing cluster by average similarity ("" for a new
        cluster), and the candidate rows scoring at least ``relink_edge_threshold`` (the
        edges to store). ``scores`` holds the candidates' scores; members scored here are
        added to it."""
        icfg, ccfg = self.index_config, self.config.clustering
        store = ccfg.edge_threshold if icfg.relink_edge_threshold is None else min(
            icfg.relink_edge_threshold, ccfg.edge_threshold)
        linked = [r for r in candidates if scores[r] >= store]
        eligible = sorted({state.docs[r].cluster for r in linked
                           if scores[r] >= ccfg.edge_threshold})
        if not eligible:
            return "", linked
        members = {cid: state.clusters[cid].members[-icfg.max_link_members:]
                   for cid in eligible}
        missing = sorted({r for rs in members.values() for r in rs if r not in scores})
        scores.update(zip(missing, vectors.scores(row, missing).tolist(), strict=True))
        threshold = icfg.join_threshold if icfg.join_threshold is not None else (
            ccfg.link_threshold
        )
        best: tuple[float, int, str] | None = None
        for cid, rs in members.items():
            mean = sum(scores[r] for r in rs) / len(rs)
            key = (-mean, state.clusters[cid].seq, cid)
            if mean >= threshold and (best is None or key < best):
                best = key
        return ("" if best is None else best[2]), linked

    # -- re-linkage (issue #6) ---------------------------------------------------------

    def _relink(self, state: _State, rows: Sequence[int], edges: Sequence[Sequence[int]],
                ctx: _Relinked) -> None:
        """Re-cluster the neighbourhood of the new ``rows`` as the batch would.

        The neighbourhood of a new article is its connected component in the stored edge
        graph, closed over cluster membership (every member of a cluster it reaches). When
        that exceeds ``relink_max_size`` articles it shrinks to the one-hop neighbourhood:
        the new articles joined by their edges plus every member of the clusters (live
        before this add) they have an edge to; when even that is too large, the greedy
        placement stands. Then ``relink_refresh`` components per new article are re-linked
        from the front of the refresh queue. Each neighbourhood goes to ``_relink_set``;
        ``ctx`` collects the rows moved and the ids retired.
        """
        cap = self.index_config.relink_max_size
        self._prefetch(self._relink_plan(state, rows, edges, ctx), ctx)
        fallback: list[tuple[int, Sequence[int]]] = []
        for row, linked in zip(rows, edges, strict=True):
            if row in ctx.done:
                continue
            component = self._planned_component(state, row, ctx)
            if component is None:
                fallback.append((row, linked))
            elif len(component) > 1:
                self._relink_set(state, sorted(component), ctx)
        for members in self._one_hop(state, fallback, ctx.made):
            if len(members) <= cap:
                self._relink_set(state, members, ctx)
        self._refresh(state, math.ceil(len(rows) * self.index_config.relink_refresh), ctx)

    def _refresh(self, state: _State, budget: int, ctx: _Relinked) -> None:
        """Re-link up to ``budget`` components of the least recently linked clusters, so
        that stories no new article touches still follow the drifting IDF."""
        self._prefetch(self._refresh_plan(state, budget, ctx), ctx)
        for _ in range(4 * budget):
            if budget <= 0 or not state.queue:
                return
            cid = next(iter(state.queue))
            del state.queue[cid]
            state.queue[cid] = None
            row = state.clusters[cid].members[0]
            if row in ctx.done:
                continue
            component = self._planned_component(state, row, ctx)
            if component is None or len(component) == 1:
                continue
            self._relink_set(state, sorted(component), ctx)
            budget -= 1

    def _relink_plan(self, state: _State, rows: Sequence[int],
                     edges: Sequence[Sequence[int]], ctx: _Relinked) -> list[list[int]]:
        """The neighbourhoods ``_relink`` will re-link for the new ``rows``, found before
        any is re-linked (each is closed over edges and membership, so re-linking one
        leaves the others as they were); ``_prefetch`` scores them together."""
        cap = self.index_config.relink_max_size
        claimed = set(ctx.done)
        plan: list[list[int]] = []
        fallback: list[tuple[int, Sequence[int]]] = []
        ctx.components.clear()
        for row, linked in zip(rows, edges, strict=True):
            if row in claimed:
                continue
            component = ctx.components[row] = self._component(state, row, cap)
            if component is None:
                fallback.append((row, linked))
            elif len(component) > 1:
                plan.append(sorted(component))
                claimed.update(component)
        plan.extend(m for m in self._one_hop(state, fallback, ctx.made) if len(m) <= cap)
        return plan

    def _refresh_plan(self, state: _State, budget: int, ctx: _Relinked) -> list[list[int]]:
        """The components ``_refresh`` will most likely re-link: the first ``budget`` from
        the front of the queue, read without rotating it (a guess: ``_relink_set`` scores
        whatever was not prefetched)."""
        cap = self.index_config.relink_max_size
        claimed = set(ctx.done)
        plan: list[list[int]] = []
        ctx.components.clear()
        for cid in itertools.islice(state.queue, 4 * budget):
            if len(plan) >= budget:
                break
            row = state.clusters[cid].members[0]
            if row in claimed:
                continue
            component = ctx.components[row] = self._component(state, row, cap)
            if component is not None and len(component) > 1:
                plan.append(sorted(component))
                claimed.update(component)
        return plan

    @staticmethod
    def _prefetch(plan: Sequence[list[int]], ctx: _Relinked) -> None:
        """Score the planned neighbourhoods in one pass (see ``_Vectors.dense_many``)."""
        ctx.prefetched.clear()
        ctx.prefetched.update(ctx.vectors.dense_many(plan))

    def _planned_component(self, state: _State, row: int, ctx: _Relinked) -> set[int] | None:
        """``_component`` of ``row``, from the plan when it found it (once: the loops that
        call this re-link what they get, after which the rows are done)."""
        if row in ctx.components:
            return ctx.components.pop(row)
        return self._component(state, row, self.index_config.relink_max_size)

    @staticmethod
    def _component(state: _State, row: int, limit: int) -> set[int] | None:
        """Rows reachable from ``row`` over stored edges and shared clusters; None past
        ``limit`` rows."""
        seen = {row}
        stack = [row]
        clusters: set[str] = set()
        while stack:
            r = stack.pop()
            reach = state.edges.get(r, [])
            cid = state.docs[r].cluster
            if cid not in clusters:
                clusters.add(cid)
                members = state.clusters[cid].members
                if len(members) > limit:
                    return None
                reach = [*reach, *members]
            for other in reach:
                if other not in seen:
                    seen.add(other)
                    if len(seen) > limit:
                        return None
                    stack.append(other)
        return seen

    @staticmethod
    def _one_hop(
        state: _State, seeds: Sequence[tuple[int, Sequence[int]]], made: set[str]
    ) -> list[list[int]]:
        """New articles joined by their edges, plus the members of the old clusters they
        have an edge to: the fallback neighbourhoods (sorted rows) of ``_relink``."""
        parent: dict[Any, Any] = {}

        def find(x: Any) -> Any:
            root = x
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[x] != root:
                parent[x], x = root, parent[x]
            return root

        new = {row for row, _ in seeds}
        for row, linked in seeds:
            find(row)
            for other in linked:
                cid = state.docs[other].cluster
                if other in new or cid not in made:
                    parent[find(other if other in new else cid)] = find(row)
        sets: dict[Any, set[int]] = {}
        for node in list(parent):
            group = sets.setdefault(find(node), set())
            if isinstance(node, str):
                group.update(state.clusters[node].members)
            else:
                group.add(node)
        return [sorted(g) for g in sets.values() if len(g) > 1]

    def _relink_set(self, state: _State, members: list[int], ctx: _Relinked) -> None:
        """Cluster ``members`` (sorted rows, whole clusters) as ``cluster_documents`` does
        (components at ``edge_threshold``, then weighted average linkage inside each) over
        their dense scores with the current IDF, and give the groups ids (``_assign_ids``).
        """
        sim = ctx.prefetched.pop(tuple(members), None)
        if sim is None:
            sim = ctx.vectors.dense(members)
        ctx.done.update(members)
        for k in range(bisect.bisect_left(members, ctx.first_new), len(members)):
            ctx.sims[members[k]] = (members, sim[k])  # for ``_placement``
        adjacent = sim >= self.config.clustering.edge_threshold
        groups: list[list[int]] = []
        ccfg = self.config.clustering
        for component in _dense_components(adjacent):
            if len(component) <= 2:
                parts = [component]
            elif len(component) <= ccfg.max_component_size:  # else link_component cuts it
                block = sim[np.ix_(component, component)]
                found = clustering.weighted_link(block, ccfg.link_threshold)
                if len(component) >= ccfg.rejoin_min_size:  # as link_component does
                    found = clustering.rejoin(found, block, ccfg.link_threshold)
                parts = [component[g] for g in found]
            else:
                parts = clustering.link_component(
                    component, _NO_PAIRS, _NO_SCORES, lambda sub: sim[np.ix_(sub, sub)], ccfg)
            groups.extend([members[k] for k in part.tolist()] for part in parts)
        groups.sort(key=lambda g: g[0])
        self._assign_ids(state, groups, ctx)
        for cid in {state.docs[r].cluster for r in members}:
            state.queue.pop(cid, None)
            state.queue[cid] = None  # just linked: to the back of the refresh queue

    def _assign_ids(self, state: _State, groups: list[list[int]], ctx: _Relinked) -> None:
        """Give re-linked groups cluster ids; the id rules of the module docstring.

        Old ids (handed out before this add) are matched to groups greedily by overlap (how
        many of the id's members from before this add the group holds), largest first, ties
        by older cluster (lower ``seq``), then by the group's earliest row; each old id and
        each group is matched at most once. An unmatched old id is retired into the group
        holding most of its earlier members (ties: earliest row). A group left without an
        id gets a new one; clusters made earlier in this same add were never handed out,
        so they are dissolved first.
        """
        group_of = {r: g for g, rows in enumerate(groups) for r in rows}
        before = {r: state.docs[r].cluster for rows in groups for r in rows}
        olds = sorted({c for c in before.values() if c not in ctx.made},
                      key=lambda c: state.clusters[c].seq)
        overlap: dict[tuple[str, int], int] = {}
        for r, cid in before.items():
            if r < ctx.first_new and cid not in ctx.made:
                key = (cid, group_of[r])
                overlap[key] = overlap.get(key, 0) + 1
        for cid in set(olds) - {c for c, _ in overlap}:  # holds only new rows by now
            for r in state.clusters[cid].members:
                overlap[(cid, group_of[r])] = overlap.get((cid, group_of[r]), 0) + 1
        ranked = sorted(overlap.items(), key=lambda kv: (
            -kv[1], state.clusters[kv[0][0]].seq, groups[kv[0][1]][0]))
        id_of: dict[int, str] = {}
        owner: dict[str, int] = {}
        for (cid, g), _ in ranked:
            if cid not in owner and g not in id_of:
                owner[cid], id_of[g] = g, cid
        for cid in {c for c in before.values() if c in ctx.made}:
            del state.clusters[cid]  # made earlier in this add: never handed out
            state.queue.pop(cid, None)
        for cid in olds:
            if cid not in owner:
                best = min((g for c, g in overlap if c == cid),
                           key=lambda g: (-overlap[(cid, g)], groups[g][0]))
                ctx.retired[cid] = id_of[best]
                state.retired.add(cid)
                del state.clusters[cid]
                state.queue.pop(cid, None)
        for g, rows in enumerate(groups):
            found = id_of.get(g)
            if found is None:
                found = self._new_cluster_id(state, state.docs[rows[0]].id)
                ctx.made.add(found)
            cid = found
            rows = sorted(rows)  # row order, as a reopened index loads them
            if cid in state.clusters:
                state.clusters[cid].members = rows
            else:
                state.clusters[cid] = _ClusterState(state.next_seq, rows)
                state.next_seq += 1
            for r in rows:
                if before[r] != cid:
                    ctx.moved.setdefault(r, before[r])
                    state.docs[r].cluster = cid
                    if ctx.moved[r] == cid:
                        del ctx.moved[r]  # back where it was before this add
        for cid, into in list(ctx.retired.items()):
            while into in ctx.retired:
                into = ctx.retired[into]
            ctx.retired[cid] = into

    def _retire(self, conn: sqlite3.Connection, state: _State, retired: Mapping[str, str | None],
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

    def _new_cluster_id(self, state: _State, first_id: str) -> str:
        """``c`` + sha1(first member id)[:12]; salted only if a live cluster already has it."""
        salt = 0
        while True:
            text = first_id if salt == 0 else f"{first_id}\n{salt}"
            cid = "c" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
            if cid not in state.clusters and cid not in state.retired:
                return cid
            salt += 1

    @_translated
    def expire(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Remove articles dated before ``now - older_than``; return how many were removed.

        An article's date is its ``published`` time, or when it was added if it has none.
        Their terms leave the DF counts, their signatures the LSH table, their rows the
        disk (pages are given back with an incremental vacuum). Clusters left empty are
        deleted and their ids retired (reason ``"expired"``, see ``retired``); the others
        keep their id, are marked updated and get their story merged again from the members
        that remain. Remaining members are not re-clustered.
        """
        cutoff = _epoch(now or datetime.now(UTC)) - older_than.total_seconds()
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

    def _remove(
        self, conn: sqlite3.Connection, state: _State, doomed: Sequence[tuple[int, str]]
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
        self._count_df(state, state.store.gather(np.asarray(counted, dtype=np.int64))[0], -1)
        if promoted:
            self._count_df(state, state.store.gather(np.asarray(promoted, dtype=np.int64))[0], 1)
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
        conn.executemany("DELETE FROM articles WHERE row = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM signatures WHERE row = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM edges WHERE a = ?", [(r,) for r in gone])
        conn.executemany("DELETE FROM edges WHERE b = ?", [(r,) for r in gone])
        self._retire(conn, state, dict.fromkeys(empty), now, reason="expired")
        self._touch(conn, state, touched - set(empty), {}, now)
        state.generation += 1
        self._set_meta(conn, generation=state.generation, terms=state.terms)
        state.queue.saved(conn)

    # -- public API: reading ----------------------------------------------------------

    @_translated
    def __len__(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM articles").fetchone()[0])

    def _members(self, cluster_id: str) -> list[Article]:
        rows = self.conn.execute(
            "SELECT id, text, title, published, source FROM articles WHERE cluster_id = ?"
            " ORDER BY row",
            (cluster_id,),
        ).fetchall()
        return [
            Article(id=i, text=text, title=title,
                    published=None if pub is None else datetime.fromisoformat(pub),
                    source=source)
            for i, text, title, pub, source in rows
        ]

    @_translated
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
                        ) -> tuple[str, int, Story | list[Article]]:
        """Inside ``_snapshot``: (live id, version, cached story or the members to merge)."""
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
        return cluster_id, version, self._members(cluster_id)

    def _merged(self, found: Sequence[tuple[str, int, Story | list[Article]]]) -> list[Story]:
        """Stories of ``_snapshot_story`` results, merging (and caching) the uncached ones
        after the snapshot ends (a merge must not hold the read open)."""
        out = []
        for cluster_id, version, held in found:
            if isinstance(held, Story):
                out.append(held)
                continue
            story = merge(held, cluster_id, self.config)
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
        stamp = _from_epoch(when).isoformat(timespec="seconds")
        if reason == "merged":
            why = (f"was merged into {into!r} on {stamp} UTC"
                   + (f", which is now part of {live!r}" if live and live != into else "")
                   + ("" if live else ", which has since expired"))
        else:
            why = f"expired on {stamp} UTC (its last article was removed)"
        hint = f"; read story({live!r}) or pass follow=True" if live else ""
        return RetiredClusterError(f"cluster {cluster_id!r} in {self.path} {why}{hint}",
                                   cluster_id, live)

    @_translated
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

    @_translated
    def retired(self, updated_since: datetime | None = None) -> list[RetiredCluster]:
        """Cluster ids retired at or after ``updated_since`` (all without it), oldest first:
        what a poller of ``stories(updated_since)`` needs to drop or redirect."""
        since = -math.inf if updated_since is None else _epoch(updated_since)
        conn = self.conn
        conn.execute("BEGIN")
        try:
            rows = conn.execute(
                "SELECT id, merged_into, retired_at, reason FROM retired WHERE retired_at >= ?"
                " ORDER BY retired_at, id", (since,)).fetchall()
            return [RetiredCluster(cid, into, self._chain(cid)[1], _from_epoch(when), reason)
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

    @_translated
    def clusters(self, updated_since: datetime | None = None) -> list[ClusterInfo]:
        """Clusters changed at or after ``updated_since`` (all without it), oldest change
        first. Naive datetimes are UTC."""
        return self._clusters(updated_since)

    def _clusters(self, updated_since: datetime | None) -> list[ClusterInfo]:
        since = -math.inf if updated_since is None else _epoch(updated_since)
        rows = self.conn.execute(
            "SELECT id, size, created_at, updated_at FROM clusters WHERE updated_at >= ?"
            " ORDER BY updated_at, seq",
            (since,),
        ).fetchall()
        return [ClusterInfo(cid, size, _from_epoch(c), _from_epoch(u)) for cid, size, c, u in rows]

    @_translated
    def stories(self, updated_since: datetime | None = None) -> list[Story]:
        """Stories of the clusters changed at or after ``updated_since`` (see ``clusters``).

        "At or after" means a poller passing the time of its previous poll may see a story
        twice but never misses a change. All are read in one snapshot: an add committing
        meanwhile is seen entirely or not at all.
        """
        return [story for _, story in self.updates(updated_since)]

    @_translated
    def updates(self, updated_since: datetime | None = None) -> list[tuple[ClusterInfo, Story]]:
        """``clusters(updated_since)`` with each cluster's story, read in one snapshot (what
        ``dedup index stories`` prints)."""
        with self._snapshot():
            infos = self._clusters(updated_since)
            found = [self._snapshot_story(info.cluster_id, False) for info in infos]
        return list(zip(infos, self._merged(found), strict=True))

    @_translated
    def assignments(self) -> dict[str, str]:
        """Every indexed article id -> the cluster holding it now, in arrival order."""
        return dict(self.conn.execute("SELECT id, cluster_id FROM articles ORDER BY row"))

    @_translated
    def cluster_of(self, article_id: str) -> str | None:
        """The cluster holding ``article_id``, or None if the index does not hold it."""
        row = self.conn.execute("SELECT cluster_id FROM articles WHERE id = ?",
                                (article_id,)).fetchone()
        return None if row is None else str(row[0])

    @_translated
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
            "oldest": None if oldest is None else _from_epoch(oldest).isoformat(),
            "newest": None if newest is None else _from_epoch(newest).isoformat(),
            "bytes_on_disk": sum(f.stat().st_size for f in files if f.exists()),
        }
