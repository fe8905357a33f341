"""Stable cluster ids: which re-linked group keeps which id, which ids retire, new ids."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from dedup.index.state import ClusterState, State

if TYPE_CHECKING:
    from dedup.index.relink import Relinked


def new_cluster_id(state: State, first_id: str) -> str:
    """``c`` + sha1(first member id)[:12] (the batch id of that singleton); salted only
    when a live or retired cluster already has it: an id is never handed out twice."""
    salt = 0
    while True:
        text = first_id if salt == 0 else f"{first_id}\n{salt}"
        cid = "c" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
        if cid not in state.clusters and cid not in state.retired:
            return cid
        salt += 1


def assign_ids(state: State, groups: list[list[int]], ctx: Relinked) -> None:
    """Give re-linked groups cluster ids; the id rules of ``dedup.index``'s docstring.

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
            found = new_cluster_id(state, state.docs[rows[0]].id)
            ctx.made.add(found)
        cid = found
        rows = sorted(rows)  # row order, as a reopened index loads them
        if cid in state.clusters:
            state.clusters[cid].members = rows
        else:
            state.clusters[cid] = ClusterState(state.next_seq, rows)
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
