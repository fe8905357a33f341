from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dedup.clustering import (
    cluster_documents,
    cluster_id,
    cluster_with_cohesion,
    cohesion,
    rejoin,
)
from dedup.config import ClusterConfig, Config


def _sim_from(matrix: np.ndarray):  # type: ignore[no-untyped-def]
    return lambda rows: matrix[np.ix_(rows, rows)]


def test_chain_through_a_bridge_is_split() -> None:
    # 0,1 are one event; 3,4 another; 2 mentions both. Single link would chain all five.
    sim = np.eye(5)
    for i, j, s in [(0, 1, 0.8), (3, 4, 0.8), (1, 2, 0.3), (2, 3, 0.3), (0, 2, 0.25),
                    (2, 4, 0.25)]:
        sim[i, j] = sim[j, i] = s
    pairs = np.array([[i, j] for i in range(5) for j in range(i + 1, 5) if sim[i, j] > 0])
    scores = np.array([sim[i, j] for i, j in pairs])
    groups = cluster_documents(5, pairs, scores, _sim_from(sim), ClusterConfig(
        link_threshold=0.3, edge_threshold=0.3))
    as_lists = sorted(g.tolist() for g in groups)
    assert [0, 1] in as_lists or [0, 1, 2] in as_lists
    assert not any({0, 4} <= set(g) for g in as_lists)


def test_oversized_component_is_cut() -> None:
    n = 12
    sim = np.eye(n)
    pairs, scores = [], []
    for i in range(n - 1):  # a path whose weak links (0.2) join strong pairs (0.9)
        s = 0.9 if i % 2 == 0 else 0.2
        sim[i, i + 1] = sim[i + 1, i] = s
        pairs.append([i, i + 1])
        scores.append(s)
    groups = cluster_documents(n, np.array(pairs), np.array(scores), _sim_from(sim),
                               ClusterConfig(link_threshold=0.15, edge_threshold=0.15,
                                             max_component_size=4))
    assert all(len(g) <= 4 for g in groups)
    assert sum(len(g) for g in groups) == n


def test_every_document_in_exactly_one_group() -> None:
    rng = np.random.default_rng(0)
    n = 40
    sim = rng.random((n, n))
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1)
    pairs = np.array([[i, j] for i in range(n) for j in range(i + 1, n)])
    scores = sim[pairs[:, 0], pairs[:, 1]]
    groups = cluster_documents(n, pairs, scores, _sim_from(sim), ClusterConfig())
    assert sorted(np.concatenate(groups).tolist()) == list(range(n))


def test_cluster_id_is_order_free_and_distinct() -> None:
    assert cluster_id(["b", "a"]) == cluster_id(["a", "b"])
    assert cluster_id(["a", "b"]) != cluster_id(["a", "c"])
    assert cohesion(np.array([3]), _sim_from(np.eye(4))).tolist() == [1.0]


def test_cohesion_from_the_linkage_block_equals_a_fresh_block(
    ecbplus: list[dict[str, Any]],
) -> None:
    """Cohesion sliced from a component's block must be bit-identical to recomputing it."""
    from dedup import pipeline, refine
    from dedup.clustering import cluster_with_cohesion
    from dedup.config import Config

    config = Config()
    docs = [pipeline.prepare(r["text"], r["title"], frozenset()) for r in ecbplus[:200]]
    features = refine.build_features([d.terms for d in docs], config.refine)
    n = len(docs)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    scores = refine.pair_scores(features, pairs)

    def similarity(rows: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, rows)

    linked = cluster_with_cohesion(n, pairs, scores, similarity, config.clustering)
    assert any(len(rows) > 2 for rows, _ in linked)
    for rows, close in linked:
        assert np.array_equal(close, cohesion(rows, similarity))
    assert [rows.tolist() for rows, _ in linked] == [
        g.tolist() for g in cluster_documents(n, pairs, scores, similarity, config.clustering)]


@pytest.mark.parametrize("max_component_size", [3, 5000])
def test_linkage_in_batches_of_components_equals_one_pass(
    ecbplus: list[dict[str, Any]], max_component_size: int
) -> None:
    # The batch pipeline links batches of components on their own rows of the features
    # (in worker processes) and components above max_component_size in place: the groups
    # and cohesion must be those of one pass over the whole matrix.
    import dataclasses

    from dedup import pipeline, refine
    from dedup.parallel import WorkerPool

    config = Config()
    config = dataclasses.replace(config, clustering=dataclasses.replace(
        config.clustering, max_component_size=max_component_size))
    prepared = [pipeline.prepare(a["text"], "", frozenset()) for a in ecbplus]
    features = refine.build_features([p.terms for p in prepared], config.refine)
    n = len(prepared)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    scores = refine.pair_scores(features, pairs)
    want = cluster_with_cohesion(n, pairs, scores,
                                 lambda rows: refine.block_similarity(features, rows),
                                 config.clustering)
    with WorkerPool(2) as pool:  # several tasks, each on its own rows of the features
        got = pipeline.link(n, pairs, scores, features, config, pool, task_articles=30)
    assert any(len(rows) > 1 for rows, _ in want)
    assert len(got) == len(want)
    for (rows_a, close_a), (rows_b, close_b) in zip(got, want, strict=True):
        assert np.array_equal(rows_a, rows_b) and np.array_equal(close_a, close_b)


def _uneven_halves() -> np.ndarray:
    """a0, a1, a2 one tight event; b is about it too, close to a0 only. WPGMA merges a0+a1,
    then a2, so b sees (0.5 + 0.05) / 2 averaged with 0.05: 0.1625, under 0.18, while b's
    true mean similarity to the three is 0.2."""
    sim = np.eye(4)
    for i, j, s in [(0, 1, 0.95), (0, 2, 0.9), (1, 2, 0.9), (0, 3, 0.5), (1, 3, 0.05),
                    (2, 3, 0.05)]:
        sim[i, j] = sim[j, i] = s
    return sim


@pytest.mark.parametrize(("rejoin_min_size", "want"), [(1000, [[0, 1, 2], [3]]),
                                                         (2, [[0, 1, 2, 3]])])
def test_big_components_rejoin_groups_whose_true_mean_reaches_the_threshold(
    rejoin_min_size: int, want: list[list[int]]
) -> None:
    sim = _uneven_halves()
    pairs = np.array([[i, j] for i in range(4) for j in range(i + 1, 4)])
    scores = np.array([sim[i, j] for i, j in pairs])
    config = ClusterConfig(link_threshold=0.18, edge_threshold=0.0,
                           rejoin_min_size=rejoin_min_size)
    groups = cluster_documents(4, pairs, scores, _sim_from(sim), config)
    assert sorted(g.tolist() for g in groups) == want


def test_rejoin_never_chains_two_events_through_a_bridge() -> None:
    sim = np.eye(5)
    for i, j, s in [(0, 1, 0.8), (3, 4, 0.8), (1, 2, 0.3), (2, 3, 0.3), (0, 2, 0.25),
                    (2, 4, 0.25)]:
        sim[i, j] = sim[j, i] = s
    joined = rejoin([np.array([0, 1]), np.array([2]), np.array([3, 4])], sim, 0.3)
    assert not any({0, 4} <= set(g.tolist()) for g in joined)
    # Copies count: with a0 standing for two articles, b's mean to the a-group is
    # (2 * 0.5 + 0.05 + 0.05) / 4 = 0.275, over 0.21; counted once each it is 0.2, under.
    halves = [np.array([0, 1, 2]), np.array([3])]
    weighted = rejoin(halves, _uneven_halves(), 0.21, np.array([2, 1, 1, 1]))
    assert [g.tolist() for g in weighted] == [[0, 1, 2, 3]]
    plain = rejoin(halves, _uneven_halves(), 0.21)
    assert [g.tolist() for g in plain] == [[0, 1, 2], [3]]
