"""What placement reads, in memory: articles' terms, clusters, LSH tables, DF, edges and
the refresh queue; loaded from SQLite (``load_state``) and kept in step with it."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dedup import copies, refine
from dedup.candidates import spans
from dedup.config import Config
from dedup.index.bands import BandIndex, Rules
from dedup.index.openings import OpeningRows, load_openings

BLOCKS = ("body", "names", "title", "numbers")  # term id = block * N_FEATURES + column


class Queue(dict[str, None]):
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


@dataclass(slots=True)
class Doc:
    """An indexed article's id and cluster (terms in ``TermStore``, text in SQLite)."""

    id: str
    cluster: str


class YearSets:
    """Numbers the year sets of articles, with a boolean (set, year) table, so the year
    conflicts of thousands of pairs are two table lookups (``Vectors.years``)."""

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


class TermStore:
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
        self.years = YearSets()
        # By row: a 64-bit digest of its term ids and TF, equal for rows with the same
        # vector (verbatim copies): ``Vectors`` scores such rows once (#18).
        self.content = np.zeros(0, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros(0, dtype=np.float32)
        self.used = 0
        self.garbage = 0

    def add(self, rows: np.ndarray, ids: np.ndarray, tf: np.ndarray, lengths: np.ndarray,
            published: np.ndarray, years: Sequence[frozenset[str]]) -> None:
        """Append articles (``ids`` and ``tf`` concatenated, ``lengths`` terms each)."""
        if len(rows) and rows.max() >= len(self.start):
            size = max(int(rows.max()) + 1, 2 * len(self.start))
            for name in ("start", "length", "published", "year_set", "content"):
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
        self.content[rows] = content_digests(ids, tf, lengths)
        self.used = end

    def _compact(self) -> None:
        live = np.flatnonzero(self.length)
        lengths = self.length[live]
        positions = spans(self.start[live], lengths)
        self.ids, self.tf = self.ids[positions], self.tf[positions]
        self.start[live] = np.cumsum(lengths) - lengths
        self.used, self.garbage = len(self.ids), 0

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, TF, lengths) of ``rows``, concatenated in order."""
        lengths = self.length[rows]
        positions = spans(self.start[rows], lengths)
        return self.ids[positions], self.tf[positions], lengths

    def remove(self, rows: np.ndarray) -> None:
        self.garbage += int(self.length[rows].sum())
        self.length[rows] = 0
        if self.garbage > self.used // 2:
            self._compact()


def content_digests(ids: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> list[int]:
    """Per article (``lengths`` of the concatenated int32 ``ids`` and float32 ``tf``), a
    signed 64-bit BLAKE2b digest of its stored term ids and TF: equal digests, equal vectors
    (a chance collision is 2^-64 a pair: ~1e-8 over a million distinct texts)."""
    id_bytes = np.ascontiguousarray(ids, dtype=np.int32).data.cast("B")
    tf_bytes = np.ascontiguousarray(tf, dtype=np.float32).data.cast("B")
    ends = (4 * np.cumsum(lengths)).tolist()
    out = []
    start = 0
    for end in ends:
        digest = hashlib.blake2b(id_bytes[start:end], digest_size=8)
        digest.update(tf_bytes[start:end])
        out.append(int.from_bytes(digest.digest(), "little", signed=True))
        start = end
    return out


@dataclass(slots=True)
class ClusterState:
    seq: int
    members: list[int] = field(default_factory=list)  # rows, in insertion order


@dataclass(slots=True)
class State:
    """Everything placement reads, loaded from SQLite and kept in step with it."""

    generation: int
    next_row: int
    next_seq: int
    df: np.ndarray  # term id (block * N_FEATURES + hashed column) -> document frequency
    terms: int  # term ids with a positive DF
    docs: dict[int, Doc]
    store: TermStore
    clusters: dict[str, ClusterState]
    copies: BandIndex
    events: BandIndex
    retired: set[str]  # ids never to hand out again (see the ``retired`` table)
    edges: dict[int, list[int]]  # row -> rows it shares a stored edge with
    # Live cluster ids, least recently linked first (the refresh re-links from the front).
    queue: Queue
    # Exact copies (#18): copies-signature key -> live rows with it, ascending. Only the
    # first row of each key counts in DF and ``distinct``, as the batch counts a copy
    # group once: three hundred outlets running one text do not make its words common.
    copy_rows: dict[int, list[int]] = field(default_factory=dict)
    copy_key: dict[int, int] = field(default_factory=dict)  # row -> its key
    distinct: int = 0  # rows counted in DF
    # By row: its opening key and short flag (``dedup.index.openings``, #19).
    openings: OpeningRows = field(default_factory=OpeningRows)



def count_copies(state: State, rows: Sequence[int], copy_sigs: np.ndarray,
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


def count_df(state: State, ids: np.ndarray, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) one article's worth of DF per term in ``ids``
    (term ids of whole articles, unique per article), keeping ``state.terms``."""
    changed, df_counts = np.unique(ids, return_counts=True)
    if sign > 0:
        state.df[changed] += df_counts.astype(state.df.dtype)
        state.terms += int(np.count_nonzero(state.df[changed] == df_counts))
    else:
        np.subtract.at(state.df, ids, 1)
        state.terms -= int(np.count_nonzero(state.df[changed] <= 0))


@dataclass(slots=True)
class _Rows:
    """The per-article columns ``load_state`` reads, before they become arrays."""

    docs: dict[int, Doc] = field(default_factory=dict)
    sigs: dict[str, tuple[list[int], list[bytes]]] = field(
        default_factory=lambda: {"copies": ([], []), "events": ([], [])})
    term_blobs: list[bytes] = field(default_factory=list)
    tf_blobs: list[bytes] = field(default_factory=list)
    published: list[float] = field(default_factory=list)
    year_sets: list[frozenset[str]] = field(default_factory=list)


def _read_rows(conn: sqlite3.Connection, clusters: Mapping[str, ClusterState]) -> _Rows:
    """Every article's row, id, cluster, date, signatures and terms, in row order."""
    out = _Rows()
    cursor = conn.execute(
        "SELECT a.row, a.id, a.cluster_id, a.published_ts, s.copies, s.events, s.term_ids,"
        " s.term_tf, s.years FROM articles a JOIN signatures s ON s.row = a.row"
        " ORDER BY a.row"
    )
    for row, aid, cid, pub, copy_blob, events, term_ids, term_tf, years in cursor:
        out.docs[row] = Doc(aid, cid)
        out.term_blobs.append(term_ids)
        out.tf_blobs.append(term_tf)
        out.published.append(math.nan if pub is None else pub)
        out.year_sets.append(frozenset(years.split()))
        clusters[cid].members.append(row)
        for name, blob in (("copies", copy_blob), ("events", events)):
            if blob is not None:
                out.sigs[name][0].append(row)
                out.sigs[name][1].append(blob)
    return out


def _band_table(sigs: tuple[list[int], list[bytes]], rules: Rules) -> BandIndex:
    """The LSH table of the stored signatures of one kind."""
    table = BandIndex(rules)
    ids, blobs = sigs
    if ids:
        matrix = np.frombuffer(b"".join(blobs), dtype=np.uint32).reshape(len(ids), -1)
        table.build(np.asarray(ids, dtype=np.int64), rules.keys(matrix))
    return table


def load_state(conn: sqlite3.Connection, config: Config, copy_bands: tuple[int, int],
               event_bands: tuple[int, int], counters: Mapping[str, int]) -> State:
    """Read per-article terms and signatures, count DF; rebuild the LSH tables.

    ``counters``: the meta table's ``generation``, ``next_row`` and ``next_seq``.
    """
    clusters = {
        cid: ClusterState(seq)
        for cid, seq in conn.execute("SELECT id, seq FROM clusters ORDER BY seq")
    }
    read = _read_rows(conn, clusters)
    docs = read.docs
    store = TermStore()
    term_ids = np.frombuffer(b"".join(read.term_blobs), dtype=np.int32)
    store.add(np.fromiter(docs, dtype=np.int64, count=len(docs)), term_ids,
              np.frombuffer(b"".join(read.tf_blobs), dtype=np.float32),
              np.fromiter(map(len, read.term_blobs), dtype=np.int64, count=len(docs)) // 4,
              np.asarray(read.published, dtype=np.float64), read.year_sets)
    copy_rows: dict[int, list[int]] = {}
    copy_key: dict[int, int] = {}
    copy_ids, copy_blobs = read.sigs["copies"]
    if copy_ids:
        keys = copies.signature_keys(np.frombuffer(b"".join(copy_blobs), dtype=np.uint32)
                                     .reshape(len(copy_ids), -1))
        for row, key in zip(copy_ids, keys.tolist(), strict=True):
            copy_key[row] = key
            copy_rows.setdefault(key, []).append(row)
    doc_rows = np.fromiter(docs, dtype=np.int64, count=len(docs))
    counted = np.fromiter((r not in copy_key or copy_rows[copy_key[r]][0] == r
                           for r in doc_rows.tolist()), dtype=bool, count=len(docs))
    df = np.zeros(len(BLOCKS) * refine.N_FEATURES, dtype=np.int32)  # 16 MB, cache-kinder
    if len(term_ids):
        entries = np.repeat(counted, [len(b) // 4 for b in read.term_blobs])
        df += np.bincount(term_ids[entries], minlength=len(df)).astype(np.int32)
    cand = config.candidates
    return State(
        generation=counters["generation"],
        next_row=counters["next_row"],
        next_seq=counters["next_seq"],
        df=df,
        terms=int(np.count_nonzero(df)),
        docs=docs,
        store=store,
        clusters=clusters,
        copies=_band_table(read.sigs["copies"], Rules.of(cand.lsh_options("copies"), copy_bands)),
        events=_band_table(read.sigs["events"], Rules.of(cand.lsh_options("events"), event_bands)),
        retired={r[0] for r in conn.execute("SELECT id FROM retired")},
        edges=load_edges(conn),
        queue=load_queue(conn, clusters),
        copy_rows=copy_rows,
        copy_key=copy_key,
        distinct=int(counted.sum()),
        openings=load_openings(conn, counters["next_row"]),
    )


def load_queue(conn: sqlite3.Connection, clusters: Mapping[str, ClusterState]) -> Queue:
    """The refresh queue as the last add left it: positions from the ``queue`` table,
    clusters without one first, by age (``clusters`` is in ``seq`` order)."""
    pos = dict(conn.execute("SELECT cluster_id, pos FROM queue"))
    order = sorted(clusters, key=lambda c: (c in pos, pos.get(c, 0), clusters[c].seq))
    return Queue(order, max(pos.values(), default=0) + 1)


def load_edges(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """The stored edge graph, as row -> rows it shares an edge with."""
    edges: dict[int, list[int]] = {}
    for a, b in conn.execute("SELECT a, b FROM edges"):
        edges.setdefault(a, []).append(b)
        edges.setdefault(b, []).append(a)
    return edges
