"""Placement (one ``StoryIndex.add``): terms and DF, signatures, candidates and their
scores for the whole batch, greedy placement one article at a time, then the re-linkage
and the rows, clusters and meta of the same transaction."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dedup import signatures
from dedup.index import bands, openings, terms
from dedup.index.ids import new_cluster_id
from dedup.index.records import Added, Placement, Progress, RetiredCluster, epoch, from_epoch
from dedup.index.relink import Relinked, Relinker
from dedup.index.state import ClusterState, Doc, State, count_copies, count_df
from dedup.index.texts import TextTerms
from dedup.index.vectors import Scratch, Vectors
from dedup.records import Article


@dataclass(slots=True)
class _Batch:
    """What steps 1 to 3 of ``Placer._place`` compute for a batch, before placing it."""

    rows: list[int]
    ids: np.ndarray  # term ids of all articles, concatenated
    tf: np.ndarray
    lengths: np.ndarray  # terms per article
    published: np.ndarray  # epoch seconds, nan when undated
    years: list[frozenset[str]]
    copy_sigs: np.ndarray
    has_copy: np.ndarray
    event_sigs: np.ndarray
    has_event: np.ndarray
    copy_keys: np.ndarray
    event_keys: np.ndarray
    vectors: Vectors
    candidates: list[np.ndarray] = field(default_factory=list)
    scores: list[dict[int, float]] = field(default_factory=list)


@dataclass(slots=True)
class _Placed:
    """What the greedy placement (step 4) leaves for the rest of the add."""

    made: set[str] = field(default_factory=set)
    edges: list[list[int]] = field(default_factory=list)
    edge_rows: list[tuple[int, int]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    article_rows: list[tuple[Any, ...]] = field(default_factory=list)
    signature_rows: list[tuple[Any, ...]] = field(default_factory=list)


class Placer(Relinker):
    """The placement steps of ``StoryIndex.add`` (see ``dedup.index``'s docstring)."""

    _vocabulary: terms.Vocabulary
    _minhasher: signatures.MinHasher
    _scratch: Scratch

    def _place(
        self,
        conn: sqlite3.Connection,
        state: State,
        batch: Sequence[Article],
        texts: Sequence[TextTerms],
        progress: Progress | None,
    ) -> Added:
        now = time.time()
        found = self._signatures(state, texts, [a.published for a in batch])
        # 3. Candidates and their scores for the whole batch at once: neither depends on
        # where the batch's earlier articles are placed (each article sees those before it).
        found.candidates = bands.lookup(
            state.copies, state.events, found.copy_keys, found.has_copy, found.event_keys,
            found.has_event, found.rows[0],
            self.index_config.events_candidates or self.config.candidates.events_max_per_doc)
        found.scores = self._batch_scores(state, found.vectors, found.rows,
                                          [c.tolist() for c in found.candidates])
        placed = self._greedy(state, batch, found, now, progress)
        self._tie_excerpts(conn, state, found.rows, placed)
        row_array = np.asarray(found.rows, dtype=np.int64)
        state.copies.insert(row_array[found.has_copy], found.copy_keys[found.has_copy])
        state.events.insert(row_array[found.has_event], found.event_keys[found.has_event])
        self._flush_rows(conn, placed.article_rows, placed.signature_rows)
        conn.executemany("INSERT OR IGNORE INTO edges (a, b) VALUES (?, ?)", placed.edge_rows)
        # 5. Re-link the batch's neighbourhoods with the batch's average linkage.
        merged: dict[str, list[str]] = {}
        ctx = Relinked(placed.made, found.rows[0], found.vectors)
        touched = placed.touched
        if self.index_config.relink:
            self._relink(state, found.rows, placed.edges, ctx)
            conn.executemany("UPDATE articles SET cluster_id = ? WHERE row = ?",
                             [(state.docs[r].cluster, r) for r in sorted(ctx.moved)])
            touched.update(state.docs[r].cluster for r in ctx.moved)
            touched.update(old for old in ctx.moved.values() if old in state.clusters)
            for old, into in sorted(ctx.retired.items()):
                merged.setdefault(into, []).append(old)
            self._retire(conn, state, ctx.retired, now)
        touched = {cid for cid in touched if cid in state.clusters}
        created = {cid: state.clusters[cid].seq for cid in touched if cid in placed.made}
        placements = self._placements(state, found.rows, ctx, created, merged)
        # 6. Clusters, stories, meta: the rest of the same transaction.
        self._touch(conn, state, touched, created, now)
        state.generation += 1
        self._set_meta(conn, generation=state.generation, next_row=state.next_row,
                       next_seq=state.next_seq, terms=state.terms)
        state.queue.saved(conn)
        when = from_epoch(now)
        return Added(placements, (RetiredCluster(cid, into, into, when, "merged")
                                  for cid, into in sorted(ctx.retired.items())))

    def _signatures(self, state: State, texts: Sequence[TextTerms],
                    dates: Sequence[Any]) -> _Batch:
        """Steps 1 and 2 of an add: terms, DF and signatures of the whole batch."""
        cfg = self.config
        # 1. Streaming DF: the whole batch is counted before any of it is placed.
        ids = np.concatenate([t.ids for t in texts])
        tf = np.concatenate([t.tf for t in texts])
        lengths = np.fromiter((len(t.ids) for t in texts), dtype=np.int64, count=len(texts))
        first = state.next_row
        rows = list(range(first, first + len(texts)))
        has_copy = np.fromiter((t.copy_sig is not None for t in texts), dtype=bool,
                               count=len(rows))
        copy_sigs = np.zeros((len(rows), cfg.signatures.num_perm), dtype=np.uint32)
        if has_copy.any():
            copy_sigs[has_copy] = np.stack([t.copy_sig for t in texts if t.copy_sig is not None])
        counted = count_copies(state, rows, copy_sigs, has_copy)
        count_df(state, ids[np.repeat(counted, lengths)], 1)
        published = np.array([math.nan if d is None else epoch(d) for d in dates],
                             dtype=np.float64)
        years = [t.years for t in texts]
        state.store.add(np.asarray(rows, dtype=np.int64), ids, tf, lengths, published, years)
        state.openings.set(np.asarray(rows, dtype=np.int64),
                           np.fromiter((t.opening for t in texts), dtype=np.uint64,
                                       count=len(rows)),
                           np.fromiter((t.short for t in texts), dtype=bool, count=len(rows)),
                           counted)
        vectors = Vectors(cfg.refine, state, state.distinct, self._scratch)
        # 2. Signatures (events terms ranked with the current IDF), vectorised per batch.
        salient = terms.salient_columns(vectors, ids, tf, lengths, cfg.refine.salient_terms)
        event_sets = [self._vocabulary.column_hashes(columns) for columns in salient]
        event_sigs = self._minhasher.signatures(event_sets)
        has_event = np.fromiter((len(s) > 0 for s in event_sets), dtype=bool, count=len(rows))
        return _Batch(rows, ids, tf, lengths, published, years, copy_sigs, has_copy,
                      event_sigs, has_event, state.copies.rules.keys(copy_sigs),
                      state.events.rules.keys(event_sigs), vectors)

    def _greedy(self, state: State, batch: Sequence[Article], found: _Batch, now: float,
                progress: Progress | None) -> _Placed:
        """Step 4: place one by one (greedy); later articles of the batch see the earlier
        ones. Rows, edges and clusters go to ``state``; the SQLite rows are returned."""
        out = _Placed()
        ends = np.cumsum(found.lengths).tolist()
        starts = (np.cumsum(found.lengths) - found.lengths).tolist()
        stamps = found.published.tolist()
        copied, evented = found.has_copy.tolist(), found.has_event.tolist()
        for k, article in enumerate(batch):
            row = found.rows[k]
            cid, linked = self._choose(state, found.vectors, row,
                                       found.candidates[k].tolist(), found.scores[k])
            state.next_row += 1
            if not cid:
                cid = new_cluster_id(state, article.id)
                out.made.add(cid)
                state.clusters[cid] = ClusterState(state.next_seq)
                state.next_seq += 1
                state.queue[cid] = None
            state.clusters[cid].members.append(row)
            state.docs[row] = Doc(article.id, cid)
            for other in linked:
                state.edges.setdefault(row, []).append(other)
                state.edges.setdefault(other, []).append(row)
            out.edge_rows.extend((row, other) for other in linked)
            out.touched.add(cid)
            out.edges.append(linked)
            out.article_rows.append(self._article_row(row, article, now, stamps[k], cid))
            out.signature_rows.append((
                row,
                found.copy_sigs[k].tobytes() if copied[k] else None,
                found.event_sigs[k].tobytes() if evented[k] else None,
                found.ids[starts[k] : ends[k]].tobytes(),
                found.tf[starts[k] : ends[k]].tobytes(),
                " ".join(sorted(found.years[k])),
            ))
            if progress:
                progress("add", k + 1, len(batch))
        return out

    def _tie_excerpts(self, conn: sqlite3.Connection, state: State, rows: Sequence[int],
                      placed: _Placed) -> None:
        """Step 4b: the batch's openings stored, and excerpts tied to longer articles with
        their opening as stored edges (``openings.tie``), in the graph and in the new rows'
        edges that re-linkage starts from."""
        found = state.openings
        conn.executemany("INSERT INTO openings (row, key, short, first) VALUES (?, ?, ?, ?)",
                         openings.stored_rows(rows, found.key[rows].tolist(),
                                              found.short[rows].tolist(),
                                              found.first[rows].tolist()))
        for a, b in openings.tie(conn, state, rows, self.config.clustering):
            state.edges.setdefault(a, []).append(b)
            state.edges.setdefault(b, []).append(a)
            placed.edge_rows.append((a, b))
            placed.edges[a - rows[0]].append(b)

    def _batch_scores(self, state: State, vectors: Vectors, rows: Sequence[int],
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

    def _placements(self, state: State, rows: Sequence[int], ctx: Relinked,
                    created: Mapping[str, int], merged: Mapping[str, list[str]]
                    ) -> list[Placement]:
        """Each new article's ``Placement`` in its final cluster, scored with the current
        IDF: with the last ``max_link_members`` members besides itself (read off the last
        keep + 1: a big story's thousands of members are not walked for each new article),
        from the re-linkage's scores where they cover them, else in one ``pair_scores``
        pass for the batch."""
        keep = self.index_config.max_link_members
        others: list[list[int]] = []
        scores: dict[int, np.ndarray] = {}
        pending: list[int] = []
        for row in rows:
            members = state.clusters[state.docs[row].cluster].members
            mine = [r for r in (members[-(keep + 1):] if keep > 0 else members) if r != row]
            mine = mine[-keep:]
            others.append(mine)
            known = ctx.sims.get(row)
            if not mine:
                continue
            if known is not None and set(mine) <= set(known[0]):
                scores[row] = known[1][np.searchsorted(known[0], mine)]
            else:
                pending.append(len(others) - 1)
        if pending:
            left = np.repeat(np.asarray([rows[k] for k in pending], dtype=np.int64),
                             [len(others[k]) for k in pending])
            right = np.asarray([r for k in pending for r in others[k]], dtype=np.int64)
            flat = ctx.vectors.pair_scores(left, right)
            at = 0
            for k in pending:
                scores[rows[k]] = flat[at : at + len(others[k])]
                at += len(others[k])
        edge = self.config.clustering.edge_threshold
        out = []
        for row, mine in zip(rows, others, strict=True):
            doc = state.docs[row]
            is_new, joined = doc.cluster in created, tuple(merged.get(doc.cluster, ()))
            if not mine:
                out.append(Placement(doc.id, doc.cluster, is_new, 1.0, (), joined))
                continue
            values = scores[row]
            matched = sorted(((s, state.docs[r].id) for r, s in zip(mine, values.tolist(),
                                                                    strict=True) if s >= edge),
                             key=lambda m: (-m[0], m[1]))
            out.append(Placement(doc.id, doc.cluster, is_new, round(float(values.mean()), 6),
                                 tuple(i for _, i in matched), joined))
        return out

    def _choose(self, state: State, vectors: Vectors, row: int, candidates: list[int],
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
