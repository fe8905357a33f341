"""MinHash signatures, computed for many documents at once.

The values equal datasketch's ``MinHash(num_perm, seed)`` (its default "affine32" scheme)
fed the same shingles through the same hash function: a test proves it. What differs is
the cost: tokens are hashed once per vocabulary entry, n-gram shingle hashes are combined
with array arithmetic, and the permutation + min step runs over a whole batch of documents
as one matrix operation instead of one Python call per document, or, in a process with
enough of this work to repay loading it, as one compiled loop (``jit``, ``kernels``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence

import numpy as np
from datasketch import MinHash

from dedup import jit
from dedup.config import SignatureConfig

_U32 = np.uint32
_MASK = 0xFFFFFFFF
_FNV_PRIME = 16777619
# Largest number of (shingle x permutation) cells computed at once: bounds batch memory.
_CELLS_PER_CHUNK = 1 << 17  # cache-sized: 1 << 25 was 12x slower per document


def token_hash(token: str) -> int:
    """32-bit hash of one token: the first 4 bytes of its SHA-1, as datasketch's sha1_hash32."""
    return int(struct.unpack("<I", hashlib.sha1(token.encode("utf-8")).digest()[:4])[0])


def _fmix32_int(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, elementwise; uint32 wraparound is the modulo."""
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


def shingle_hash(shingle: bytes) -> int:
    """Hash of a space-joined shingle, as ``signatures`` computes it; a datasketch hashfunc.

    Tokens are hashed once each and folded left to right, so n-gram hashes can be built
    from token hashes with array arithmetic.
    """
    h = 0
    for i, token in enumerate(shingle.decode("utf-8").split(" ")):
        t = token_hash(token)
        h = t if i == 0 else _fmix32_int(((h * _FNV_PRIME) & _MASK) ^ t)
    return h


class TokenHasher:
    """Caches token hashes: a corpus repeats its vocabulary, SHA-1 runs once per entry.

    The cache starts over past ``max_entries`` (~100 bytes each), so a long run's rare
    tokens (names, typos, numbers) cannot grow it without bound.
    """

    def __init__(self, max_entries: int = 1 << 21) -> None:
        self._cache: dict[str, int] = {}
        self.max_entries = max_entries

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        cache = self._cache
        if len(cache) > self.max_entries:
            cache.clear()
        for tok in set(tokens).difference(cache):
            cache[tok] = token_hash(tok)
        return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint32, count=len(tokens))


def ngram_hashes(token_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every n-gram of one document (one shingle of all tokens if shorter)."""
    m = len(token_hashes)
    if m == 0:
        return token_hashes
    width = min(n, m)
    h = token_hashes[: m - width + 1].copy()
    for j in range(1, width):
        h = _fmix32((h * _U32(_FNV_PRIME)) ^ token_hashes[j : m - width + 1 + j])
    return h


class MinHasher:
    """Vectorised MinHash with datasketch's permutations for ``num_perm`` and ``seed``."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        reference = MinHash(num_perm=num_perm, seed=seed)
        if reference.scheme != "affine32":  # pragma: no cover - guards a datasketch change
            raise RuntimeError(f"unsupported datasketch MinHash scheme {reference.scheme!r}")
        a, b = reference.permutations
        self.num_perm = num_perm
        self.seed = seed
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)

    def signatures(
        self, shingle_sets: Sequence[np.ndarray], columns: int | None = None
    ) -> np.ndarray:
        """One row per document of uint32 min-hashes; empty documents get all-max rows.

        ``columns``: only the first that many min-hashes (the same values as the full rows'
        first columns). An LSH of b bands of r rows reads no others; the events LSH uses 82
        of 128, so the rest would be computed for nothing.
        """
        width = self.num_perm if columns is None else columns
        if not 0 < width <= self.num_perm:
            raise ValueError(f"columns must be in 1..{self.num_perm}, got {columns}")
        a, b = self._a[:width], self._b[:width]
        out = np.full((len(shingle_sets), width), _MASK, dtype=np.uint32)
        lengths = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=len(shingle_sets))
        compiled = jit.kernels(int(lengths.sum()) * width)
        if compiled is not None:
            ends = np.cumsum(lengths)
            flat = np.concatenate(shingle_sets) if len(shingle_sets) else np.empty(0)
            compiled.minhash(flat.astype(np.uint32, copy=False), ends - lengths, ends,
                             np.ascontiguousarray(a), np.ascontiguousarray(b), out)
            return out
        for rows, hashes, starts in self._chunks(shingle_sets, width):
            phv = _fmix32(hashes)[:, None] * a + b
            out[rows] = np.minimum.reduceat(phv, starts, axis=0)
        return out

    def signatures_flat(self, flat: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``signatures`` of the documents whose shingles are ``flat[ends[d-1]:ends[d]]``:
        the same rows, without a Python object per document (``dedupe`` signs millions)."""
        compiled = jit.kernels(len(flat) * self.num_perm) if len(flat) else None
        if compiled is None:
            return self.signatures(np.split(flat, ends[:-1]) if len(ends) else [])
        out = np.full((len(ends), self.num_perm), _MASK, dtype=np.uint32)
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        compiled.minhash(flat.astype(np.uint32, copy=False), starts, ends.astype(np.int64),
                         self._a, self._b, out)
        return out

    @staticmethod
    def _chunks(
        shingle_sets: Sequence[np.ndarray], width: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Groups of non-empty documents whose shingles fit one bounded matrix."""
        limit = max(1, _CELLS_PER_CHUNK // width)
        rows: list[int] = []
        parts: list[np.ndarray] = []
        size = 0
        for i, hashes in enumerate(shingle_sets):
            if len(hashes) == 0:
                continue
            if rows and size + len(hashes) > limit:
                yield MinHasher._pack(rows, parts)
                rows, parts, size = [], [], 0
            rows.append(i)
            parts.append(hashes)
            size += len(hashes)
        if rows:
            yield MinHasher._pack(rows, parts)

    @staticmethod
    def _pack(
        rows: list[int], parts: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        return np.asarray(rows, dtype=np.int64), np.concatenate(parts), starts


def copy_shingles(
    token_lists: Sequence[Sequence[str]], config: SignatureConfig, hasher: TokenHasher
) -> list[np.ndarray]:
    """Word n-gram shingle hashes per document: the copies signal.

    All documents' tokens are hashed and folded as one array; n-grams that would cross a
    document boundary are simply never sliced out.
    """
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = hasher([tok for toks in token_lists for tok in toks])
    return hashed_shingles(flat, lengths, config.shingle_size)


def hashed_shingles(flat: np.ndarray, lengths: np.ndarray, n: int) -> list[np.ndarray]:
    """``copy_shingles`` of documents whose token hashes are concatenated in ``flat``,
    ``lengths`` tokens each (``StoryIndex`` hashes tokens through its own vocabulary)."""
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else lengths
    grams = ngram_hashes(flat, n) if len(flat) >= n else np.empty(0, dtype=np.uint32)
    out: list[np.ndarray] = []
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        if length >= n:
            out.append(grams[start : start + length - n + 1])
        else:  # a short document is one shingle of all its tokens
            out.append(ngram_hashes(flat[start : start + length], n))
    return out


def term_shingles(term_lists: Sequence[Sequence[str]], hasher: TokenHasher) -> list[np.ndarray]:
    """One shingle per term: the events signal over salient terms."""
    return [hasher(terms) for terms in term_lists]


def column_shingles(offsets: np.ndarray, columns: np.ndarray) -> list[np.ndarray]:
    """``term_shingles`` of integer terms given as a ragged array, without their strings.

    Each distinct column is hashed once (as its decimal string, so values equal
    ``term_shingles`` of ``str(column)``), then looked up for every occurrence.
    """
    distinct, inverse = np.unique(columns, return_inverse=True)
    table = np.fromiter((token_hash(str(c)) for c in distinct.tolist()), dtype=np.uint32,
                        count=len(distinct))
    return np.split(table[inverse.ravel()], offsets[1:-1])
