from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import signatures
from dedup.config import SignatureConfig
from dedup.signatures import MinHasher, TokenHasher, copy_shingles, shingle_hash, term_shingles

VOCAB = "the quake hit lima at dawn killing 143 people".split()
VOCAB = "the quake hit lima at dawn killing 143 people".split()
words = st.lists(st.sampled_from(VOCAB), max_size=40)


def _reference(tokens: list[str], n: int, num_perm: int, seed: int) -> np.ndarray:
    """datasketch's own MinHash over the same shingles, one document at a time."""
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    width = min(n, len(tokens))
    if tokens:
        m.update_batch(
            [" ".join(tokens[i : i + width]).encode() for i in range(len(tokens) - width + 1)]
        )
    return m.hashvalues


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(words, min_size=1, max_size=8), seed=st.integers(1, 1000),
       num_perm=st.sampled_from([16, 64, 128]))
def test_vectorised_signatures_equal_datasketch(docs: list[list[str]], seed: int,
                                                 num_perm: int) -> None:
    config = SignatureConfig(num_perm=num_perm, seed=seed)
    got = MinHasher(num_perm, seed).signatures(copy_shingles(docs, config, TokenHasher()))
    for row, tokens in zip(got, docs, strict=True):
        assert np.array_equal(row, _reference(tokens, config.shingle_size, num_perm, seed))


def test_equal_to_datasketch_default_sha1_for_single_token_shingles() -> None:
    """With one token per shingle our hash is datasketch's default sha1_hash32 itself."""
    terms = ["crocus", "moscow", "143", "islamic"]
    ours = MinHasher(128, 1).signatures(term_shingles([terms], TokenHasher()))[0]
    ref = MinHash(num_perm=128, seed=1)
    ref.update_batch([t.encode() for t in terms])
    assert np.array_equal(ours, ref.hashvalues)
    assert all(shingle_hash(t.encode()) == sha1_hash32(t.encode()) for t in terms)


def test_batches_larger_than_one_chunk_match_small_batches() -> None:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(500)]
    docs = [list(rng.choice(vocab, size=int(rng.integers(0, 400)))) for _ in range(300)]
    hasher, minhasher = TokenHasher(), MinHasher(128, 1)
    sets = copy_shingles(docs, SignatureConfig(), hasher)
    together = minhasher.signatures(sets)
    one_by_one = np.vstack([minhasher.signatures([s]) for s in sets])
    assert np.array_equal(together, one_by_one)


def test_empty_document_has_all_max_signature() -> None:
    sig = MinHasher(8, 1).signatures([np.empty(0, dtype=np.uint32)])
    assert (sig == np.iinfo(np.uint32).max).all()


def test_jaccard_estimate_within_tolerance() -> None:
    a = [f"t{i}" for i in range(200)]
    b = a[:100] + [f"u{i}" for i in range(100)]  # true Jaccard 100/300
    sig = MinHasher(256, 3).signatures(term_shingles([a, b], TokenHasher()))
    assert abs(float(np.mean(sig[0] == sig[1])) - 1 / 3) < 0.08


def test_column_shingles_equal_term_shingles_of_their_strings() -> None:
    from dedup.refine import Salient

    salient = Salient(np.array([0, 3, 3, 5]), np.array([7, 1_048_575, 42, 42, 0]))
    by_column = signatures.column_shingles(salient.offsets, salient.columns)
    by_string = signatures.term_shingles(salient.terms(), signatures.TokenHasher())
    assert [sorted(a.tolist()) for a in by_column] == [sorted(b.tolist()) for b in by_string]
    assert [len(a) for a in by_column] == [3, 0, 2]


def test_leading_columns_equal_the_full_signatures_first_columns() -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(300)]
    docs = [list(rng.choice(vocab, size=int(rng.integers(0, 200)))) for _ in range(120)]
    sets = copy_shingles(docs, SignatureConfig(), TokenHasher())
    minhasher = MinHasher(128, 1)
    full = minhasher.signatures(sets)
    for width in (1, 82, 128):
        assert np.array_equal(minhasher.signatures(sets, columns=width), full[:, :width])
    for bad in (0, 129):
        with pytest.raises(ValueError, match="columns"):
            minhasher.signatures(sets, columns=bad)
