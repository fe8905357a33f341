from __future__ import annotations

import numpy as np

from dedup import pipeline, refine, signatures
from dedup.candidates import lsh_pairs, union_pairs
from dedup.config import Config
from tests.conftest import DISTRACTORS, read_seeds


def _event_pairs(docs: list[dict[str, str]]) -> tuple[np.ndarray, int]:
    config = Config()
    prepared = [pipeline.prepare(d["text"], d["title"], frozenset()) for d in docs]
    features = refine.build_features([p.terms for p in prepared], config.refine)
    sets = signatures.term_shingles(features.salient, signatures.TokenHasher())
    sigs = signatures.MinHasher(128, 1).signatures(sets)
    pairs, _ = lsh_pairs(sigs, np.ones(len(docs), dtype=bool),
                         threshold=config.candidates.events_threshold, seed=1,
                         max_bucket_size=config.candidates.max_bucket_size)
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
    pairs, stats = lsh_pairs(sigs, np.ones(3, dtype=bool), threshold=0.5, seed=1,
                             max_bucket_size=100)
    assert pairs.tolist() == [[0, 1]]
    assert stats.bands * stats.rows <= 128


def test_oversized_buckets_are_skipped_and_counted() -> None:
    sigs = np.zeros((50, 16), dtype=np.uint32)  # 50 identical signatures: one giant bucket
    pairs, stats = lsh_pairs(sigs, np.ones(50, dtype=bool), threshold=0.5, seed=1,
                             max_bucket_size=10)
    assert len(pairs) == 0 and stats.oversized_buckets > 0
    pairs, _ = lsh_pairs(sigs, np.ones(50, dtype=bool), threshold=0.5, seed=1,
                         max_bucket_size=100)
    assert len(pairs) == 50 * 49 // 2


def test_absent_documents_never_pair() -> None:
    sigs = np.zeros((3, 16), dtype=np.uint32)
    pairs, _ = lsh_pairs(sigs, np.array([True, False, True]), threshold=0.5, seed=1,
                         max_bucket_size=10)
    assert pairs.tolist() == [[0, 2]]


def test_union_pairs_dedupes_and_sorts() -> None:
    a = np.array([[0, 2], [1, 3]])
    b = np.array([[0, 2], [0, 1]])
    assert union_pairs(a, b).tolist() == [[0, 1], [0, 2], [1, 3]]
