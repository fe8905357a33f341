"""StoryIndex internals that stand in for library calls: they must give the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from dedup import clustering
from dedup.clustering import weighted_link as _weighted_link
from dedup.config import ClusterConfig
from dedup.index import _radix_directory, _radix_search

_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)


def _batch_groups(sim: np.ndarray, config: ClusterConfig) -> list[list[int]]:
    rows = np.arange(len(sim))
    parts = clustering.link_component(rows, _NO_PAIRS, _NO_SCORES,
                                      lambda sub: sim[np.ix_(sub, sub)], config)
    return sorted(p.tolist() for p in parts)


@pytest.mark.parametrize("seed", range(40))
def test_weighted_link_matches_scipy(seed: int) -> None:
    """Random score matrices: stories (blocks of high scores), noise, exact duplicates
    (ties at distance 0), scores below zero and above one, slight asymmetry."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    story = rng.integers(0, max(1, n // 3), size=n)
    sim = np.where(story[:, None] == story[None, :], rng.uniform(0.05, 0.6, (n, n)),
                   rng.uniform(-0.05, 0.2, (n, n)))
    sim = (sim + sim.T) / 2
    twins = rng.choice(n, size=min(n, 4), replace=False)
    sim[twins[1:]] = sim[twins[0]]
    sim[:, twins[1:]] = sim[:, [twins[0]]]
    sim[np.ix_(twins, twins)] = 1.0 + rng.uniform(0, 1e-12)
    sim = sim + rng.uniform(0, 1e-15, (n, n))  # as a matrix product may leave it
    for threshold in (0.13, 0.3):
        config = ClusterConfig(link_threshold=threshold, edge_threshold=threshold)
        ours = sorted(g.tolist() for g in _weighted_link(sim, threshold))
        assert ours == _batch_groups(sim, config)


def test_radix_search_matches_searchsorted() -> None:
    rng = np.random.default_rng(7)
    edges = np.array([0, 5, 5, 5, 2**64 - 1, 2**64 - 1], dtype=np.uint64)
    for n in (0, 3, 1000, 300_000):
        keys = np.sort(np.concatenate(
            [rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2), edges]))
        directory = _radix_directory(keys)
        queries = np.sort(np.concatenate([
            keys[rng.integers(0, len(keys), 500)],
            rng.integers(0, 2**63, 500, dtype=np.int64).astype(np.uint64),
            np.array([0, 1, 4, 5, 6, 2**64 - 1], dtype=np.uint64)]))
        for side in ("left", "right"):
            assert np.array_equal(_radix_search(keys, directory, queries, side),
                                  np.searchsorted(keys, queries, side))
