from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from datasketch import LeanMinHash, MinHashLSH
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from dedup import candidates, pipeline, refine, signatures
from dedup.candidates import lsh_pairs, lsh_params, union_pairs
from dedup.config import Config
from dedup.tuning import LshBuffers
from tests.conftest import DISTRACTORS, read_seeds


def _event_pairs(docs: list[dict[str, str]]) -> tuple[np.ndarray, int]:
    config = Config()
    prepared = [pipeline.prepare(d["text"], d["title"], frozenset()) for d in docs]
    features = refine.build_features([p.terms for p in prepared], config.refine)
    sets = signatures.term_shingles(features.salient.terms(), signatures.TokenHasher())
    sigs = signatures.MinHasher(128, 1).signatures(sets)
    pairs, _ = lsh_pairs(sigs, np.ones(len(docs), dtype=bool),
                         threshold=config.candidates.events_threshold,
                         max_bucket_size=config.candidates.events_max_bucket_size)
    return pairs, len(docs)


def test_seed_rewrites_become_event_candidates() -> None:
    pairs, _ = _event_pairs(DISTRACTORS + read_seeds())
    n = len(DISTRACTORS)
    assert [n, n + 1] in pairs.tolist()


def test_copies_signature_finds_syndicated_copy_not_rewrite() -> None:
    seeds = read_seeds()
    copy = seeds[0]["text"].replace("Share.", "Read more at our site")
    config = Config()
    hasher, minhasher = signatures.TokenHasher(), signatures.MinHasher(128, 1)
    toks = [pipeline.prepare(t, "", frozenset()).tokens
            for t in (seeds[0]["text"], copy, seeds[1]["text"])]
    sigs = minhasher.signatures(signatures.copy_shingles(toks, config.signatures, hasher))
    pairs, stats = lsh_pairs(sigs, np.ones(3, dtype=bool), threshold=0.5,
                             max_bucket_size=100)
    assert pairs.tolist() == [[0, 1]]
    assert stats.bands * stats.rows <= 128


def test_oversized_buckets_are_skipped_and_counted() -> None:
    sigs = np.zeros((50, 16), dtype=np.uint32)  # 50 identical signatures: one giant bucket
    pairs, stats = lsh_pairs(sigs, np.ones(50, dtype=bool), threshold=0.5,
                             max_bucket_size=10)
    assert len(pairs) == 0 and stats.oversized_buckets > 0
    pairs, _ = lsh_pairs(sigs, np.ones(50, dtype=bool), threshold=0.5,
                         max_bucket_size=100)
    assert len(pairs) == 50 * 49 // 2


def test_crowded_bucket_is_connected_by_a_linear_chain() -> None:
    """#18: a bucket over every cap is the biggest story, not noise: the default options
    connect all its members with a number of pairs linear in its size (2 per member)."""
    n = 600
    sigs = np.zeros((n, 128), dtype=np.uint32)  # one story in every band: one giant bucket
    present = np.ones(n, dtype=bool)
    for signal in ("copies", "events"):
        pairs, stats = lsh_pairs(sigs, present, **Config().candidates.lsh_options(signal))
        assert stats.oversized_buckets > 0
        assert len(pairs) == (n - 1) + (n - 2)  # the same chain in every band, counted once
        graph = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        assert connected_components(graph, directed=False)[0] == 1


def test_chained_pairs_survive_the_per_article_cap() -> None:
    """Each article of a crowded bucket has a stronger partner elsewhere (its buddy, 20
    shared bands); the cap of 1 partner per article keeps the buddies, and the chain still
    connects the bucket (#18: the cap used to cut a big story into pairs)."""
    n = 30
    sigs = np.arange(n * 128, dtype=np.uint32).reshape(n, 128) + 1  # nothing in common
    sigs[:, 0] = 0  # band 0: one bucket of all 30, over the cap of 10
    for a in range(0, n, 2):
        sigs[a + 1, 1:21] = sigs[a, 1:21]  # buddies share 20 bands
    pairs, _ = lsh_pairs(sigs, np.ones(n, dtype=bool), threshold=0.02, max_bucket_size=10,
                         max_per_doc=1, chain=2)
    graph = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    assert connected_components(graph, directed=False)[0] == 1
    assert len(pairs) == n // 2 + (n - 1) + (n - 2) - n // 2  # buddies are chain links too


def test_chain_links_each_member_to_the_next_by_document() -> None:
    members = np.array([9, 3, 7, 5, 1, 8])  # two buckets: [9, 3, 7] and [5, 1, 8]
    codes = candidates.chain_pairs(members, np.array([0, 3]), np.array([3, 3]), 10, 2)
    pairs = sorted((int(c) // 10, int(c) % 10) for c in codes)
    assert pairs == [(1, 5), (1, 8), (3, 7), (3, 9), (5, 8), (7, 9)]


def test_absent_documents_never_pair() -> None:
    sigs = np.zeros((3, 16), dtype=np.uint32)
    pairs, _ = lsh_pairs(sigs, np.array([True, False, True]), threshold=0.5,
                         max_bucket_size=10)
    assert pairs.tolist() == [[0, 2]]


def test_union_pairs_dedupes_and_sorts() -> None:
    a = np.array([[0, 2], [1, 3]])
    b = np.array([[0, 2], [0, 1]])
    assert union_pairs(a, b).tolist() == [[0, 1], [0, 2], [1, 3]]


def test_pairs_equal_datasketch_minhashlsh_queries() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 4, size=(200, 128)).astype(np.uint32)
    for threshold in (0.02, 0.3, 0.5, 0.8):
        pairs, stats = lsh_pairs(sigs, np.ones(200, dtype=bool), threshold=threshold,
                                 max_bucket_size=10**9)
        lsh = MinHashLSH(threshold=threshold, num_perm=128)
        minhashes = [LeanMinHash(seed=1, hashvalues=row, scheme="affine32") for row in sigs]
        for i, m in enumerate(minhashes):
            lsh.insert(i, m)
        expected = {(min(i, j), max(i, j)) for i, m in enumerate(minhashes)
                    for j in lsh.query(m) if j != i}
        assert {tuple(p) for p in pairs.tolist()} == expected
        assert (stats.bands, stats.rows) == (lsh.b, lsh.r)


def test_per_document_cap_keeps_strongest_partners() -> None:
    # Document 0 shares 3 bands with doc 1, 2 with doc 2 and 1 with doc 3.
    sigs = np.arange(4 * 8, dtype=np.uint32).reshape(4, 8) + 100
    sigs[1, :3] = sigs[0, :3]
    sigs[2, 3:5] = sigs[0, 3:5]
    sigs[3, 5] = sigs[0, 5]
    everything, _ = lsh_pairs(sigs, np.ones(4, dtype=bool), threshold=0.01,
                              max_bucket_size=10)
    assert everything.tolist() == [[0, 1], [0, 2], [0, 3]]
    capped, _ = lsh_pairs(sigs, np.ones(4, dtype=bool), threshold=0.01, max_bucket_size=10,
                          max_per_doc=1)
    # 0 keeps 1; 2 and 3 each keep 0 as their only partner.
    assert capped.tolist() == [[0, 1], [0, 2], [0, 3]]
    # A hub (4) sharing one band with everyone keeps only its first partner, while the
    # strong pairs 0-1 and 2-3 keep each other.
    hub = np.arange(5 * 8, dtype=np.uint32).reshape(5, 8) + 1000
    hub[1, :3] = hub[0, :3]
    hub[3, :3] = hub[2, :3]
    for k in range(4):
        hub[k, 7 - k] = hub[4, 7 - k]
    capped, _ = lsh_pairs(hub, np.ones(5, dtype=bool), threshold=0.01, max_bucket_size=10,
                          max_per_doc=1)
    assert capped.tolist() == [[0, 1], [0, 4], [2, 3]]
    strict, _ = lsh_pairs(sigs, np.ones(4, dtype=bool), threshold=0.01, max_bucket_size=10,
                          min_collisions=2)
    assert strict.tolist() == [[0, 1], [0, 2]]


def test_crowded_bucket_is_split_by_further_min_hashes() -> None:
    # Bands of 2 rows (threshold 0.5 over 8 min-hashes). Ten articles share band 0 (a
    # common pair of terms); only 0-1 and 2-3 also share the first min-hash of band 1,
    # which is no band match on its own. With a bucket limit of 5 the crowd gives no
    # pairs unless it is split by that min-hash.
    assert lsh_params(0.5, 8)[1] == 2
    sigs = np.arange(10 * 8, dtype=np.uint32).reshape(10, 8) + 1000
    sigs[:, 0:2] = 7
    sigs[1, 2] = sigs[0, 2]
    sigs[3, 2] = sigs[2, 2]
    dropped, stats = lsh_pairs(sigs, np.ones(10, dtype=bool), threshold=0.5,
                               max_bucket_size=5)
    assert len(dropped) == 0 and stats.oversized_buckets == 1
    split, stats = lsh_pairs(sigs, np.ones(10, dtype=bool), threshold=0.5,
                             max_bucket_size=5, split_depth=1)
    assert split.tolist() == [[0, 1], [2, 3]] and stats.oversized_buckets == 0


def test_bounded_memory_counting_equals_one_pass() -> None:
    """Folding codes a few bands at a time and ranking documents a range at a time must
    give exactly the pairs of the all-at-once computation."""
    rng = np.random.default_rng(5)
    # Few distinct values per column: many buckets, many multi-band collisions.
    sigs = rng.integers(0, 40, size=(600, 128)).astype(np.uint32)
    present = np.ones(600, dtype=bool)
    present[::17] = False
    options: dict[str, Any] = dict(threshold=0.02, max_bucket_size=30, min_collisions=1,
                                   max_per_doc=5, split_depth=1)
    whole, _ = candidates.lsh_pairs(sigs, present, **options)
    small = LshBuffers(codes_per_doc=1, rank_per_doc=1, minimum=500)
    pieces, _ = candidates.lsh_pairs(sigs, present, **options, buffers=small)
    assert len(whole) > 1000
    np.testing.assert_array_equal(whole, pieces)


def test_bands_on_threads_give_the_pairs_of_one_thread() -> None:
    """Bands grouped on threads are counted in band order: the same pairs and stats."""
    rng = np.random.default_rng(11)
    sigs = rng.integers(0, 40, size=(500, 128)).astype(np.uint32)
    present = np.ones(500, dtype=bool)
    present[::13] = False
    all_options: list[dict[str, Any]] = [
        dict(threshold=0.02, max_bucket_size=30, max_per_doc=5, split_depth=2),
        dict(threshold=0.5, max_bucket_size=100)]
    for options in all_options:
        if options["threshold"] == 0.5:  # five rows per band: fewer values to collide
            sigs = sigs % 3
        one, one_stats = candidates.lsh_pairs(sigs, present, **options, threads=1)
        three, three_stats = candidates.lsh_pairs(sigs, present, **options, threads=3)
        assert len(one) > 0
        np.testing.assert_array_equal(one, three)
        assert one_stats == three_stats


def test_lsh_options_name_each_signal_and_refuse_others() -> None:
    cand = Config().candidates
    assert cand.lsh_options("copies") == {"threshold": 0.5, "max_bucket_size": 100,
                                          "chain": cand.crowded_chain}
    assert cand.lsh_options("events")["max_per_doc"] == cand.events_max_per_doc
    with pytest.raises(ValueError, match="unknown candidate signal 'names'"):
        cand.lsh_options("names")  # type: ignore[arg-type]  # mypy refuses it too


@pytest.mark.parametrize("size", [0, 1, 2, 1000])
def test_unique_sorted_equals_numpy_unique(size: int) -> None:
    values = np.random.default_rng(size).integers(0, 50, size)
    assert np.array_equal(candidates.unique_sorted(values), np.unique(values))


def test_union_pairs_equals_row_unique() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 40, (300, 2)), rng.integers(0, 40, (200, 2))
    assert np.array_equal(union_pairs(a, b), np.unique(np.concatenate([a, b]), axis=0))


@pytest.mark.parametrize("n", [60, 2**40])  # packed sort key, and lexsort past its bit fields
def test_strongest_entries_follow_the_rank_rule(n: int) -> None:
    rng = np.random.default_rng(11)
    codes = np.unique(rng.integers(0, 60 * 60, 900))
    src, dst = codes // 60, codes % 60
    strength = rng.integers(1, 6, len(src))
    chosen = candidates.strongest_entries(src, dst, strength, 3, n)
    expected = []
    for doc in np.unique(src):
        mine = np.flatnonzero(src == doc)
        ranked = sorted(mine, key=lambda k: (-strength[k], dst[k]))
        expected.extend(ranked[:3])
    assert sorted(chosen.tolist()) == sorted(int(k) for k in expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=30), max_size=12), st.integers(1, 40),
       st.booleans())
def test_code_counter_equals_one_unique_count(
    batches: list[list[int]], budget: int, runs_sorted: bool
) -> None:
    # Folded a few batches at a time, sorted runs (as bands give them) or not.
    from dedup.candidates import _CodeCounter

    counter = _CodeCounter(budget=budget)
    for batch in batches:
        codes = np.array(sorted(batch) if runs_sorted else batch, dtype=np.int64)
        counter.add(codes)
    codes, counts = counter.result()
    everything = np.array([c for b in batches for c in b], dtype=np.int64)
    want_codes, want_counts = np.unique(everything, return_counts=True)
    assert np.array_equal(codes, want_codes) and np.array_equal(counts, want_counts)


def test_bands_read_only_their_columns_of_the_signatures() -> None:
    """Signatures cut to the bands x rows columns the LSH reads give the same pairs, as long
    as the bands are derived for the full length; fewer columns than that are refused."""
    rng = np.random.default_rng(12)
    sigs = rng.integers(0, 40, size=(400, 128)).astype(np.uint32)
    present = np.ones(400, dtype=bool)
    options: dict[str, Any] = dict(threshold=0.02, max_bucket_size=30, max_per_doc=5,
                                   split_depth=2)
    bands, rows = lsh_params(0.02, 128)
    assert bands * rows < 128
    full, full_stats = lsh_pairs(sigs, present, **options)
    cut, cut_stats = lsh_pairs(sigs[:, : bands * rows].copy(), present, **options,
                               num_perm=128)
    assert len(full) > 0
    np.testing.assert_array_equal(full, cut)
    assert full_stats == cut_stats
    with pytest.raises(ValueError, match="min-hashes"):
        lsh_pairs(sigs[:, : bands * rows - 1], present, **options, num_perm=128)
