"""Sentence alignment: the story as a sequence of nodes, each the member sentences stating it.

Why: a story sentence must cite every version that states it, and a sentence only some
versions carry must land where it fits. Members are aligned one by one, in ranking order,
against the story built so far. Exact copies (syndication) take a shortcut that builds
the same story without a cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dedup.config import MergeConfig
from dedup.merge.members import published_key
from dedup.merge.similarity import BAND, EPS, Member, Similarity, cosine


@dataclass(slots=True, eq=False)
class Node:
    """One story sentence: the member sentences (member id -> indices) that state it.

    Compared by identity (``story.index``): no two nodes share a representative, so field
    equality meant identity anyway, at the cost of comparing dicts.
    """

    carriers: dict[str, list[int]] = field(default_factory=dict)
    reps: list[tuple[str, int]] = field(default_factory=list)


def align_members(
    ordered: Sequence[Member], config: MergeConfig, sims: Similarity | None = None
) -> list[Node]:
    """Build the story: the base's sentences, then each member aligned against it.

    Greedy best-match one-to-one (cosine >= ``align_threshold``) against the story built so
    far; a sentence contained in a story sentence (a split sentence of a near-copy) is attached
    to it as well; the rest are inserted after the story sentence their predecessor landed in.
    """
    by_id = {m.id: m for m in ordered}
    base = ordered[0]
    story = [Node({base.id: [i]}, [(base.id, i)]) for i in range(len(base.sentences))]
    if len(ordered) == 1:
        return story  # a singleton: nothing to align, nothing joined
    if sims is None:
        sims = Similarity(ordered)
    cut = config.align_threshold - EPS
    width = config.max_node_representatives
    for member in ordered[1:]:
        if not member.sentences:
            continue
        reps = _rep_rows(story, sims, width)
        pairs = _aligned_pairs(member, story, reps, sims, by_id, cut)
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        placed: dict[int, int] = {}
        used: set[int] = set()
        for _, si, ni in pairs:
            if si in placed or ni in used:
                continue
            placed[si] = ni
            used.add(ni)
        placed.update(_contained(member, placed, reps, sims, config))
        node_of = {si: story[ni] for si, ni in placed.items()}
        for si in range(len(member.sentences)):
            if si in node_of:
                continue
            new = Node({}, [(member.id, si)])
            prev = next((node_of[p] for p in range(si - 1, -1, -1) if p in node_of), None)
            if prev is not None:
                at = story.index(prev) + 1
            else:
                nxt = next(
                    (node_of[p] for p in range(si + 1, len(member.sentences)) if p in node_of),
                    None,
                )
                at = story.index(nxt) if nxt is not None else len(story)
            story.insert(at, new)
            node_of[si] = new
        for si in range(len(member.sentences)):
            node = node_of[si]
            node.carriers.setdefault(member.id, []).append(si)
            if len(node.reps) < config.max_node_representatives and (member.id, si) not in (
                node.reps
            ):
                node.reps.append((member.id, si))
    _add_joined_carriers(story, ordered, sims, config)
    return story


def _aligned_pairs(
    member: Member,
    story: Sequence[Node],
    reps: np.ndarray,
    sims: Similarity,
    by_id: dict[str, Member],
    cut: float,
) -> list[tuple[float, int, int]]:
    """(cosine, sentence, node) for every member sentence and story node that align.

    The cosine with a node is the best over its representatives. The matrix product only
    proposes candidates; their cosines are recomputed with ``cosine``, since ties between
    pairs are broken by these exact values.
    """
    if not story:
        return []
    by_rep = sims.cosines(member)[:, reps]  # sentence x node x representative
    near = by_rep.max(axis=2)
    rows, cols = np.nonzero(near > cut - BAND)
    # Only a representative within the error band of the best can hold the exact maximum.
    close = (by_rep[rows, cols] >= (near[rows, cols] - 2 * BAND)[:, None]).tolist()
    pairs = []
    for si, ni, ok in zip(rows.tolist(), cols.tolist(), close, strict=True):
        vec = member.vectors[si]
        node_reps = story[ni].reps
        if len(node_reps) == 1:  # then it is the best (padding repeats it)
            mid, k = node_reps[0]
            sim = sims.exact(vec, by_id[mid].vectors[k])
        else:
            sim = max(
                sims.exact(vec, by_id[mid].vectors[k])
                for (mid, k), good in zip(node_reps, ok, strict=False)
                if good
            )
        if sim >= cut:
            pairs.append((sim, si, ni))
    return pairs


def _contained(
    member: Member,
    placed: dict[int, int],
    reps: np.ndarray,
    sims: Similarity,
    config: MergeConfig,
) -> dict[int, int]:
    """Unplaced sentences (3+ stems) whose stems lie mostly inside one story node: the first
    node with the highest containment, if that reaches ``containment_threshold``.

    Shared-stem counts are exact integers, so the ratios equal ``containment``'s.
    """
    todo = [si for si, stems in enumerate(member.stemsets) if si not in placed and len(stems) >= 3]
    if not todo:
        return {}
    a = sims.start[member.id]
    shared = sims.overlaps([a + si for si in todo])[:, reps].max(axis=2)
    out = {}
    for row, si in enumerate(todo):
        share = shared[row] / len(member.stemsets[si])
        best_ni = int(np.argmax(share)) if share.size and share.max() > 0.0 else -1
        best = float(share[best_ni]) if best_ni >= 0 else 0.0
        if best >= config.containment_threshold:
            out[si] = best_ni
    return out


def _add_joined_carriers(
    story: Sequence[Node], ordered: Sequence[Member], sims: Similarity, config: MergeConfig
) -> None:
    """A member whose long sentence states a story sentence it was not aligned to still
    carries that claim (a joined sentence): add it to the sources, not to the text."""
    by_id = {m.id: m for m in ordered}
    heads = [node for node in story if len(by_id[node.reps[0][0]].stemsets[node.reps[0][1]]) >= 3]
    if not heads:
        return
    shared = sims.overlaps([sims.row(*node.reps[0]) for node in heads])
    sizes = np.array([len(by_id[mid].stemsets[k]) for mid, k in (n.reps[0] for n in heads)])
    hits = np.zeros((len(heads), len(ordered)), dtype=bool)  # node x member
    for mi, m in enumerate(ordered):
        if m.sentences:
            a = sims.start[m.id]
            best = shared[:, a : a + len(m.sentences)].max(axis=1)
            hits[:, mi] = best / sizes >= config.containment_threshold
    for h, mi in np.argwhere(hits):  # node by node, members in order, as carriers are listed
        node, mid = heads[h], ordered[mi].id
        if mid not in node.carriers:
            node.carriers[mid] = []


# --------------------------------------------------------------------------- exact copies


def all_copies(members: Sequence[Member]) -> bool:
    """True when every member has the same cleaned title and sentences (syndicated copies,
    page furniture aside)."""
    first = members[0]
    return all(m.title == first.title and m.sentences == first.sentences for m in members)


def copies_order(members: Sequence[Member]) -> list[Member]:
    """``order_members`` for copies that pass ``aligns_only_to_itself``, without cosines.

    Every document vector is the same, so every member's centrality is the same mean of
    equal cosines; each member carries every other member's sentence k with its own sentence
    k, so completeness is 1.0. Scores then differ only by the boilerplate share, and are
    computed with the same float operations as ``base_scores``.
    """
    n = len(members)
    doc = members[0].doc
    centrality = sum([cosine(doc, doc)] * (n - 1)) / (n - 1)
    scores = [centrality + 1.0 - m.boilerplate for m in members]
    ranked = sorted(
        zip(scores, members, strict=True),
        key=lambda sm: (-round(sm[0], 9), published_key(sm[1].article.published), sm[1].id),
    )
    return [m for _, m in ranked]


def aligns_only_to_itself(member: Member, config: MergeConfig) -> bool:
    """True when each sentence reaches ``align_threshold`` with itself and with no other.

    Then, among exact copies of ``member``, ``order_members`` sees equal scores (ties: earliest
    published, then id) and ``align_members`` maps each copy's sentence k onto story sentence k: the
    result ``copies_story`` builds without any cosine beyond this check.
    """
    if not member.sentences:
        return True
    cut = config.align_threshold - EPS
    block = Similarity([member]).cosines(member)
    aligned = block >= cut + BAND
    for i, j in np.argwhere((block > cut - BAND) & ~aligned):
        aligned[i, j] = cosine(member.vectors[i], member.vectors[j]) >= cut
    return bool(np.array_equal(aligned, np.eye(len(member.sentences), dtype=bool)))


def copies_story(ordered: Sequence[Member]) -> list[Node]:
    """``align_members``'s story for exact copies that pass ``aligns_only_to_itself``.

    Only the first representative is kept: later ones serve alignment, which is skipped.
    """
    base = ordered[0]
    return [
        Node({m.id: [i] for m in ordered}, [(m.id, i) for m in ordered[:1]])
        for i in range(len(base.sentences))
    ]


def _rep_rows(story: Sequence[Node], sims: Similarity, width: int) -> np.ndarray:
    """Matrix rows of each story node's representatives, padded with its first one."""
    start = sims.start
    rows = [[start[mid] + k for mid, k in node.reps] for node in story]
    width = max(width, 1)
    padded = [r + r[:1] * (width - len(r)) for r in rows]
    return np.array(padded, dtype=np.intp).reshape(len(story), width)
