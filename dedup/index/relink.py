"""Re-linkage (issue #6): the neighbourhoods of new articles, and the least recently
linked clusters, clustered again as the batch's ``clustering`` stage does."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dedup import clustering
from dedup.index.ids import assign_ids
from dedup.index.openings import linkage
from dedup.index.state import State
from dedup.index.store import IndexStore
from dedup.index.vectors import Vectors

_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)



@dataclass(slots=True)
class Relinked:
    """What one ``add``'s re-linkage did, and what it needs to know of the add."""

    # Cluster ids first handed out by this add (any other live id was handed out before);
    # why not the set of ids live before: copying ~50k ids per add cost more than this.
    made: set[str]
    first_new: int  # rows from here on arrived in this add
    vectors: Vectors
    moved: dict[int, str] = field(default_factory=dict)  # row -> its cluster before
    retired: dict[str, str] = field(default_factory=dict)  # id -> the live id continuing it
    done: set[int] = field(default_factory=set)  # rows already re-linked in this add
    # new row -> (sorted rows of its neighbourhood, its dense scores with them)
    sims: dict[int, tuple[list[int], np.ndarray]] = field(default_factory=dict)
    # sorted rows of a neighbourhood about to be re-linked -> its dense scores
    # (``Vectors.dense_many``), computed together ahead of the one-by-one re-linkage
    prefetched: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)
    # row -> its ``reachable`` set as the plans found it (still exact when the re-linkage
    # reaches it: re-linking one closed component leaves every other unchanged)
    components: dict[int, set[int] | None] = field(default_factory=dict)


def reachable(state: State, row: int, limit: int) -> set[int] | None:
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



def one_hop(state: State, seeds: Sequence[tuple[int, Sequence[int]]], made: set[str]
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


def prefetch(plan: Sequence[list[int]], ctx: Relinked) -> None:
    """Score the planned neighbourhoods in one pass (see ``Vectors.dense_many``)."""
    ctx.prefetched.clear()
    ctx.prefetched.update(ctx.vectors.dense_many(plan))


class Relinker(IndexStore):
    """The re-linkage steps of ``StoryIndex.add``."""

    def _relink(self, state: State, rows: Sequence[int], edges: Sequence[Sequence[int]],
                ctx: Relinked) -> None:
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
        prefetch(self._relink_plan(state, rows, edges, ctx), ctx)
        fallback: list[tuple[int, Sequence[int]]] = []
        for row, linked in zip(rows, edges, strict=True):
            if row in ctx.done:
                continue
            component = self._planned_component(state, row, ctx)
            if component is None:
                fallback.append((row, linked))
            elif len(component) > 1:
                self._relink_set(state, sorted(component), ctx)
        for members in one_hop(state, fallback, ctx.made):
            if len(members) <= cap:
                self._relink_set(state, members, ctx)
        self._refresh(state, math.ceil(len(rows) * self.index_config.relink_refresh), ctx)

    def _refresh(self, state: State, budget: int, ctx: Relinked) -> None:
        """Re-link up to ``budget`` components of the least recently linked clusters, so
        that stories no new article touches still follow the drifting IDF."""
        prefetch(self._refresh_plan(state, budget, ctx), ctx)
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

    def _relink_plan(self, state: State, rows: Sequence[int],
                     edges: Sequence[Sequence[int]], ctx: Relinked) -> list[list[int]]:
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
            component = ctx.components[row] = reachable(state, row, cap)
            if component is None:
                fallback.append((row, linked))
            elif len(component) > 1:
                plan.append(sorted(component))
                claimed.update(component)
        plan.extend(m for m in one_hop(state, fallback, ctx.made) if len(m) <= cap)
        return plan

    def _refresh_plan(self, state: State, budget: int, ctx: Relinked) -> list[list[int]]:
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
            component = ctx.components[row] = reachable(state, row, cap)
            if component is not None and len(component) > 1:
                plan.append(sorted(component))
                claimed.update(component)
        return plan


    def _planned_component(self, state: State, row: int, ctx: Relinked) -> set[int] | None:
        """``reachable`` of ``row``, from the plan when it found it (once: the loops that
        call this re-link what they get, after which the rows are done)."""
        if row in ctx.components:
            return ctx.components.pop(row)
        return reachable(state, row, self.index_config.relink_max_size)


    def _relink_set(self, state: State, members: list[int], ctx: Relinked) -> None:
        """Cluster ``members`` (sorted rows, whole clusters) as ``cluster_documents`` does
        (components at ``edge_threshold`` and excerpts' ties, then weighted average linkage
        inside each, excerpts then moved by ``excerpts.regroup``) over their dense scores
        with the current IDF, and give the groups ids (``_assign_ids``).
        """
        sim = ctx.prefetched.pop(tuple(members), None)
        if sim is None:
            sim = ctx.vectors.dense(members)
        ctx.done.update(members)
        for k in range(bisect.bisect_left(members, ctx.first_new), len(members)):
            ctx.sims[members[k]] = (members, sim[k])  # for ``_placements``
        ccfg = self.config.clustering
        # Excerpts' ties join components, and excerpts then join their story (#19).
        parts, openings = linkage(state, members, sim, ccfg)
        groups = [[members[k] for k in rows.tolist()] for rows, _ in clustering.link_components(
            parts, _NO_PAIRS, _NO_SCORES, lambda sub: sim[np.ix_(sub, sub)], ccfg,
            with_cohesion=False, openings=openings)]
        groups.sort(key=lambda g: g[0])
        assign_ids(state, groups, ctx)
        for cid in {state.docs[r].cluster for r in members}:
            state.queue.pop(cid, None)
            state.queue[cid] = None  # just linked: to the back of the refresh queue
