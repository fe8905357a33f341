"""Scored pairs -> clusters, without chaining unrelated stories.

Connected components over accepted edges alone would glue A~B~C into one blob when B
mentions two events. So components only bound the search: inside each one, weighted
average linkage (WPGMA) merges groups only while their mean similarity stays above
``link_threshold``. Because a merge needs at least one pair above the threshold, no
cluster can span two components when ``edge_threshold == link_threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from dedup.config import ClusterConfig
from dedup.excerpts import Openings, regroup
from dedup.records import cluster_id as cluster_id  # the id rule, here for its callers

try:  # see ``weighted_link``
    from scipy.cluster._hierarchy import nn_chain as _nn_chain
    from scipy.cluster.hierarchy import _LINKAGE_METHODS

    _WEIGHTED = _LINKAGE_METHODS["weighted"]
except ImportError:  # pragma: no cover - a scipy that moved them
    _nn_chain = None
    _WEIGHTED = -1

Similarity = Callable[[np.ndarray], np.ndarray]


def components(n: int, pairs: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Component label per document over pairs scoring at least ``threshold``."""
    keep = scores >= threshold
    graph = sp.coo_matrix(
        (np.ones(int(keep.sum()), dtype=np.int8), (pairs[keep, 0], pairs[keep, 1])), shape=(n, n)
    )
    return connected_components(graph, directed=False)[1]


def dense_components(adjacent: np.ndarray) -> list[np.ndarray]:
    """Connected components (sorted index arrays) of a small dense boolean adjacency
    matrix, in order of their first index: ``component_rows`` for a block already at
    hand (``StoryIndex`` re-links neighbourhoods of a few rows, where building scipy's
    sparse graph costs more than this search)."""
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


def _split_large(
    rows: np.ndarray, pairs: np.ndarray, scores: np.ndarray, threshold: float, limit: int
) -> list[np.ndarray]:
    """Cut an oversized component by raising its edge threshold until every part fits."""
    local = {int(r): k for k, r in enumerate(rows)}
    inside = np.isin(pairs[:, 0], rows) & np.isin(pairs[:, 1], rows)
    sub_pairs = np.vectorize(local.__getitem__, otypes=[np.int64])(pairs[inside])
    sub_scores = scores[inside]
    step = threshold
    while True:
        step += 0.05
        labels = components(len(rows), sub_pairs.reshape(-1, 2), sub_scores, step)
        parts = [rows[labels == c] for c in np.unique(labels)]
        if all(len(p) <= limit for p in parts) or step >= 1.0:
            return parts


def _average_link(rows: np.ndarray, similarity: Similarity, threshold: float) -> list[np.ndarray]:
    if len(rows) <= 2:
        return [rows]
    return [rows[group] for group in weighted_link(similarity(rows), threshold)]


def weighted_link(sim: np.ndarray, threshold: float, *, nn_chain: bool = True
                  ) -> list[np.ndarray]:
    """Groups (sorted index arrays) of weighted average linkage (WPGMA) over ``sim`` cut at
    ``threshold``: scipy's ``linkage`` tree, cut here rather than by ``fcluster``, whose
    validation cost more than the linkage itself on components of a few articles. WPGMA
    is monotone, so the cut keeps exactly the merges at most 1 - threshold apart (the
    groups ``fcluster(t=1 - threshold, criterion="distance")`` gives).

    The tree comes from ``_hierarchy.nn_chain``, the routine ``linkage(method="weighted")``
    runs, called directly: on a few articles ``linkage``'s input handling took twice as
    long as the linkage itself. Should that private function move, ``linkage`` is used
    (``nn_chain=False`` uses it always: what a test compares the shortcut with).
    """
    n = len(sim)
    dist = np.clip(1.0 - sim, 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    condensed = squareform(dist, checks=False)
    if nn_chain and _nn_chain is not None and np.isfinite(condensed).all():
        tree = _nn_chain(condensed, n, _WEIGHTED)
    else:
        tree = linkage(condensed, method="weighted")
    parent = list(range(2 * n - 1))
    cut = 1.0 - threshold
    for k, (a, b, height, _) in enumerate(tree.tolist()):
        if height > cut:
            break  # merges come sorted by height
        parent[int(a)] = parent[int(b)] = n + k
    groups: dict[int, list[int]] = {}
    for i in range(n):
        root = i
        while parent[root] != root:
            root = parent[root]
        groups.setdefault(root, []).append(i)
    return [np.asarray(g) for g in groups.values()]


def cluster_documents(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    config: ClusterConfig,
) -> list[np.ndarray]:
    """Groups of document indices (each sorted; groups in order of their first member)."""
    return [rows for rows, _ in cluster_with_cohesion(n, pairs, scores, similarity, config,
                                                      with_cohesion=False)]


def cluster_with_cohesion(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    config: ClusterConfig,
    *,
    with_cohesion: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``cluster_documents`` groups, each with its members' ``cohesion``.

    Cohesion is taken while a component's similarity block is at hand (see
    ``ReusingSimilarity``), not recomputed afterwards.
    """
    out = link_components(component_rows(n, pairs, scores, config.edge_threshold), pairs,
                          scores, similarity, config, with_cohesion=with_cohesion)
    out.sort(key=lambda item: int(item[0][0]))
    return out


def component_rows(n: int, pairs: np.ndarray, scores: np.ndarray, threshold: float
                   ) -> list[np.ndarray]:
    """Each connected component's rows (sorted), components in label order."""
    if n == 0:
        return []
    labels = components(n, pairs, scores, threshold)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [np.sort(rows) if len(rows) > 1 else rows for rows in np.split(order, bounds)]


def link_components(
    parts: Sequence[np.ndarray],
    pairs: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    config: ClusterConfig,
    *,
    with_cohesion: bool = True,
    weights: np.ndarray | None = None,
    openings: Openings | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``link_component`` groups of each component (rows sorted), with their cohesion, in
    component order.

    Components are independent, so batches of them may be linked in other processes;
    ``pairs`` and ``scores`` are read only for components above ``max_component_size``.
    ``weights``: members each row stands for (its copy group's size, ``dedup.copies``),
    indexed by row; cohesion counts each member. ``openings`` (indexed by row): where
    excerpts may move after linkage (``dedup.excerpts``).
    """
    reusing = ReusingSimilarity(similarity)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for rows in parts:
        if len(rows) == 1:  # most articles: nothing to link
            out.append((rows, _ALONE))
            continue
        for group in link_component(rows, pairs, scores, reusing, config, weights, openings):
            out.append((group, cohesion(group, reusing, weights) if with_cohesion else _ALONE))
    return out


_ALONE = np.ones(1)


def link_component(
    rows: np.ndarray,
    pairs: np.ndarray,
    scores: np.ndarray,
    similarity: Similarity,
    config: ClusterConfig,
    weights: np.ndarray | None = None,
    openings: Openings | None = None,
) -> list[np.ndarray]:
    """Groups of one connected component (``rows`` sorted), each sorted.

    Components are independent, so a distributed engine runs this per component wherever
    the component's rows are; ``pairs`` may hold only the component's accepted edges.
    An oversized component is first cut by raising its edge threshold, then each part is
    split by weighted average linkage; in a part of ``rejoin_min_size`` rows or more, the
    groups are then joined while their true mean similarity allows (``rejoin``).
    ``weights`` (indexed by row): members each row stands for (copy groups). With
    ``openings`` (indexed by row), excerpts then join their story (``excerpts.regroup``).
    """
    parts = (
        _split_large(rows, pairs, scores, config.edge_threshold, config.max_component_size)
        if len(rows) > config.max_component_size
        else [rows]
    )
    groups: list[np.ndarray] = []
    for part in parts:
        found = _average_link(part, similarity, config.link_threshold)
        if len(found) > 1 and len(part) >= config.rejoin_min_size:
            local = [np.searchsorted(part, g) for g in found]
            w = None if weights is None else weights[part]
            found = [part[g] for g in rejoin(local, similarity(part), config.link_threshold, w)]
        groups.extend(found)
    if openings is not None and len(groups) > 1:
        groups = regroup(groups, openings, config.excerpt_max_days, config.max_component_size)
    return groups


def rejoin(groups: Sequence[np.ndarray], sim: np.ndarray, threshold: float,
           weights: np.ndarray | None = None) -> list[np.ndarray]:
    """Join linkage groups (index arrays into ``sim``) while the highest true mean
    similarity between two of them reaches ``threshold`` (UPGMA over the groups, each
    article counted ``weights`` times); groups come back sorted by first index.

    Why: WPGMA averages the two halves of a merge equally, whatever their sizes, so in a
    big event of hundreds of distinct rewrites a late merge can fall under the threshold
    while the two groups' mean similarity is well above it (a 26-version group at a mean
    0.19 to the other 272 split off at 0.13). A join still needs the mean over all pairs
    to reach the threshold, so two events bridged by a few articles stay apart. Cost:
    one pass over ``sim`` (it is at hand), then a few operations per join.
    """
    n, m = len(sim), len(groups)
    if m < 2:
        return [np.sort(g) for g in groups]
    w = np.ones(n) if weights is None else weights.astype(np.float64)
    label = np.empty(n, dtype=np.int64)
    for k, g in enumerate(groups):
        label[g] = k
    onehot = sp.csr_matrix((w, (np.arange(n), label)), shape=(n, m))
    total = np.asarray((onehot.T @ sim) @ onehot)  # sum of w_i w_j sim_ij per group pair
    size = np.asarray(onehot.sum(axis=0)).ravel()
    mean = total / np.outer(size, size)
    np.fill_diagonal(mean, -np.inf)
    members = [list(np.asarray(g).tolist()) for g in groups]
    alive = np.ones(m, dtype=bool)
    while True:
        best = int(np.argmax(mean))
        a, b = divmod(best, m)
        if not mean[a, b] >= threshold:
            break
        a, b = min(a, b), max(a, b)
        joined = (size[a] * mean[a] + size[b] * mean[b]) / (size[a] + size[b])
        mean[a], mean[:, a] = joined, joined
        size[a] += size[b]
        mean[b], mean[:, b] = -np.inf, -np.inf
        mean[a, a] = -np.inf
        alive[b] = False
        members[a].extend(members[b])
    out = [np.sort(np.asarray(members[k])) for k in np.flatnonzero(alive)]
    return sorted(out, key=lambda g: int(g[0]))


def cohesion(rows: np.ndarray, similarity: Similarity, weights: np.ndarray | None = None
             ) -> np.ndarray:
    """Each member's mean similarity to the other members (1.0 for a singleton).

    ``weights`` (indexed by row): how many members each row stands for; row ``i``'s copies
    score ``sim[i, i]`` with it, so its mean over the others is
    ``(sum_j w_j sim[i, j] - sim[i, i]) / (W - 1)`` with ``W`` the total weight.
    """
    w = None if weights is None else weights[rows]
    if w is not None and np.all(w == 1):
        w = None
    if len(rows) == 1:  # alone, or a copy group alone: its copies are the same text
        return np.ones(1)
    sim = similarity(rows)
    if w is None:
        return (sim.sum(axis=1) - np.diag(sim)) / (len(rows) - 1)
    return (sim @ w.astype(np.float64) - np.diag(sim)) / (float(w.sum()) - 1.0)


class ReusingSimilarity:
    """A similarity function that answers a subset of its last block by slicing it.

    Linkage computes a component's block; the cohesion of each group it yields is then
    a slice instead of a second sparse product (entries are the same dot products summed
    in the same order, so the values are identical).
    """

    def __init__(self, similarity: Similarity) -> None:
        self._similarity = similarity
        self._rows = np.empty(0, dtype=np.int64)
        self._block = np.empty((0, 0))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if len(self._rows) and len(rows) <= len(self._rows):
            at = np.searchsorted(self._rows, rows)
            if np.all(at < len(self._rows)) and np.array_equal(self._rows[np.minimum(
                    at, len(self._rows) - 1)], rows):
                return self._block[np.ix_(at, at)]
        block = self._similarity(rows)
        if len(rows) > 2 and np.all(rows[1:] > rows[:-1]):
            self._rows, self._block = np.asarray(rows), block
        return block
