"""Linkage, canonical members and stories of whole components, in the bucket of each
component's label: ``clustering.link_component`` over the component's rows in index
order (as the local engine sees them), then ``merge`` and ``assemble``'s rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from dedup import clustering, copies, excerpts, refine
from dedup.assemble import assignments_frame, most_central
from dedup.config import Config
from dedup.engine_dask.records import (
    Assigned,
    Edges,
    Finished,
    GroupRows,
    Linked,
    Messages,
    Weighed,
)
from dedup.engine_dask.routing import owner, route, split, take
from dedup.engine_dask.scoring import features_of, ship, stack
from dedup.merge import merge as merge_story
from dedup.prepare import to_articles
from dedup.records import Cluster, Story
from dedup.timing import release_memory

__all__ = ["finish", "link", "rows_by_group"]


def rows_by_group(frame: pl.DataFrame, weighed: Weighed, offset: int, groups: np.ndarray,
                  buckets: int, *labels: Messages) -> list[GroupRows]:
    """Rows in a component (everything linkage and merging read, and each row's copy
    group representative), sent to its bucket."""
    gidx = np.concatenate([s.node for s in labels] or [np.empty(0, np.int64)])
    label = np.concatenate([s.label for s in labels] or [np.empty(0, np.int64)])
    order = np.argsort(gidx)
    gidx, label = gidx[order], label[order]
    rows = ship(weighed, gidx - offset, offset)
    out = []
    for (idx,) in split(route(label, buckets), buckets, np.arange(len(gidx))):
        out.append(GroupRows(label[idx], rows.subset(idx), take(frame, gidx[idx] - offset),
                             groups[gidx[idx]]))
    return out


@dataclass
class _Bucket:
    """A linkage bucket's rows in global index order, and what linkage reads of them."""

    label: np.ndarray
    gidx: np.ndarray
    rep_local: np.ndarray  # each row's copy-group representative, as a local index
    version: np.ndarray  # each row's copy group's version for the merger (``copies.elect``)
    weights: np.ndarray
    openings: excerpts.Openings  # a copy group's members are all here: spans are whole
    pairs: np.ndarray
    score: np.ndarray
    similarity: clustering.ReusingSimilarity
    ids: list[str]
    published: list[Any]
    frame: pl.DataFrame


def _bucket(template: refine.Features, rows_in: list[GroupRows],
            edges_in: list[Edges]) -> _Bucket:
    label = np.concatenate([r.label for r in rows_in] or [np.empty(0, np.int64)])
    width = (template.matrix.shape[1], template.years.shape[1])
    rows = stack([r.rows for r in rows_in], width)
    frame = pl.concat([r.frame for r in rows_in], how="diagonal_relaxed")
    rep_of = np.concatenate([r.rep for r in rows_in] or [np.empty(0, np.int64)])
    order = np.argsort(rows.gidx)  # local index order == global order, as in pipeline
    label, rows, frame = label[order], rows.subset(order), take(frame, order)
    rep_local = np.searchsorted(rows.gidx, rep_of[order])
    features = features_of(template, rows)
    src, dst, score = (np.concatenate([getattr(e, f) for e in edges_in])
                       for f in ("src", "dst", "score"))
    pairs = np.stack([np.searchsorted(rows.gidx, src), np.searchsorted(rows.gidx, dst)], axis=1)

    def block(local: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, local)

    openings = excerpts.Openings(rows.keys, rows.short, rows.days, rows.days).dated(
        rows.days, rep_local)
    ids = frame["id"].to_list()
    return _Bucket(label, rows.gidx, rep_local, copies.elect(rep_local, rows.days, ids),
                   np.bincount(rep_local, minlength=len(rep_local)), openings, pairs, score,
                   clustering.ReusingSimilarity(block), ids, frame["published"].to_list(),
                   frame)


def link(config: Config, with_stories: bool, offsets: np.ndarray, template: refine.Features,
         rows_in: list[GroupRows], edges_in: list[Edges]) -> Linked:
    """Average linkage, cohesion, canonical article and story of every component here."""
    b = _bucket(template, rows_in, edges_in)
    articles = to_articles(b.frame) if with_stories else []
    out: list[Assigned] = []
    clusters: list[Cluster] = []
    stories: list[Story] = []
    by_label = np.argsort(b.label, kind="stable")
    bounds = np.flatnonzero(np.diff(b.label[by_label])) + 1
    for rows_here in np.split(by_label, bounds) if len(b.label) else []:
        component = np.sort(rows_here)
        # Linkage over copy groups' representatives; each group brings its copies along
        # (``copies.expand`` in the local engine).
        reps = component[b.rep_local[component] == component]
        for linked in clustering.link_component(reps, b.pairs, b.score, b.similarity,
                                                config.clustering, b.weights, b.openings):
            rep_close = np.round(clustering.cohesion(linked, b.similarity, b.weights), 6)
            group = component[np.isin(b.rep_local[component], linked)]
            close = rep_close[np.searchsorted(linked, b.rep_local[group])]
            member_ids = [b.ids[r] for r in group]
            cid = clustering.cluster_id(member_ids)
            if with_stories:
                versions = group[b.version[group] == group]
                story = merge_story([articles[r] for r in versions], cid, config,
                                    copies=copies.copies_by_version(group, b.version, b.ids))
                stories.append(story)
                base = member_ids.index(story.base)
            else:
                base = most_central(close, [b.published[r] for r in group], member_ids)
            flags = np.zeros(len(group), dtype=bool)
            flags[base] = True
            out.append(Assigned(b.gidx[group], np.array([cid] * len(group), dtype=object),
                                flags, close))
            clusters.append(Cluster(cid, tuple(sorted(member_ids)), member_ids[base]))
    release_memory()  # merging freed millions of small objects: hand the heap back
    return Linked(_by_partition(out, offsets), clusters, stories)


def _by_partition(found: list[Assigned], offsets: np.ndarray) -> list[Assigned]:
    """Linked rows' assignments, split by the partition holding each row."""
    gidx = np.concatenate([a.gidx for a in found] or [np.empty(0, np.int64)])
    cids = (np.concatenate([a.cluster_ids for a in found]) if found
            else np.array([], dtype=object))
    return [Assigned(*s) for s in split(
        owner(gidx, offsets), len(offsets) - 1, gidx, cids,
        np.concatenate([a.canonical for a in found] or [np.empty(0, bool)]),
        np.concatenate([a.closeness for a in found] or [np.empty(0)]))]


def finish(frame: pl.DataFrame, offset: int, config: Config, with_stories: bool,
           copy_keys: tuple[np.ndarray, np.ndarray], *assigned: Assigned) -> Finished:
    """The partition's assignments; articles in no accepted edge are their own cluster.
    ``copy_keys``: ``stages.copy_keys`` of the partition, for its ``copy_group`` labels."""
    n = frame.height
    ids: list[str] = frame["id"].to_list()
    cluster_of = np.empty(n, dtype=object)
    canonical = np.ones(n, dtype=bool)
    closeness = np.ones(n, dtype=np.float64)
    alone = np.ones(n, dtype=bool)
    for a in assigned:
        local = a.gidx - offset
        cluster_of[local], canonical[local], closeness[local] = (a.cluster_ids, a.canonical,
                                                                 a.closeness)
        alone[local] = False
    clusters, stories = [], []
    singles = np.flatnonzero(alone)
    articles = to_articles(take(frame, singles)) if with_stories else []
    for k, row in enumerate(singles):
        cid = clustering.cluster_id([ids[row]])
        cluster_of[row] = cid
        clusters.append(Cluster(cid, (ids[row],), ids[row]))
        if with_stories:
            stories.append(merge_story([articles[k]], cid, config))
    return Finished(assignments_frame(frame, cluster_of, canonical, closeness,
                                      copies.group_labels(*copy_keys)), clusters, stories)
