"""Word n-gram shingle hashes straight from normalized UTF-8 bytes, for ``dedupe`` (#21).

Why: near-duplicate removal is judged on speed, and splitting a text into Python token
strings, then hashing each through a dict, cost more than everything else in the job. Here
one loop walks a chunk's bytes, hashes each token as it ends (FNV-1a, then MurmurHash3's
finalizer), folds n-grams as ``signatures`` does, and keys each whole text, never making a
string. The loop is compiled by numba when the chunk is big enough to repay loading it
(as ``jit`` decides for ``kernels``), and runs as plain Python otherwise, or with
``DEDUP_JIT=0`` or without numba: the same source, so both give the same values (a test
compares them).

Tokens: runs of word bytes (ASCII letters, digits, ``_``, and every byte of a non-ASCII
character), joined across one ``.``, ``'`` or ``-`` between word bytes: "U.S." gives
"u.s" and "IS-K" gives "is-k", as ``normalize.tokens`` does for ASCII text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

# Bytes from which a chunk is hashed by the compiled loop: loading numba (~0.5 s) costs
# what the Python loop spends on about this many bytes.
COMPILE_FROM_BYTES = 1 << 20


def shingle_loop(
    buf: np.ndarray, ends: np.ndarray, n: int, out: np.ndarray, out_ends: np.ndarray,
    key_hi: np.ndarray, key_lo: np.ndarray, tokens: np.ndarray, hashes: np.ndarray,
) -> None:
    """For each document ``buf[ends[d-1]:ends[d]]``: its n-gram shingle hashes appended to
    ``out`` (ending at ``out_ends[d]``; a document of fewer than ``n`` tokens is one shingle
    of all of them), two 32-bit halves of a key of its token sequence, and its number of
    tokens. ``out`` and ``hashes`` (scratch) need room for one entry per token.

    Plain Python that numba can compile (``shingling_jit``): no calls, ints masked to 32
    bits, so both give the same values. MurmurHash3's finalizer is written out inline.
    """
    at = 0
    start = 0
    for d in range(ends.shape[0]):
        end = ends[d]
        count = 0
        hi = 2166136261  # FNV-1a offset basis
        i = start
        while i < end:
            b = int(buf[i])
            if not ((48 <= b <= 57) or (97 <= b <= 122) or (65 <= b <= 90) or b == 95
                    or b >= 128):
                i += 1
                continue
            h = 2166136261
            while i < end:
                b = int(buf[i])
                word = ((48 <= b <= 57) or (97 <= b <= 122) or (65 <= b <= 90) or b == 95
                        or b >= 128)
                if not word and (b == 46 or b == 39 or b == 45) and i + 1 < end:
                    c = int(buf[i + 1])  # a joiner between word bytes stays in the token
                    word = ((48 <= c <= 57) or (97 <= c <= 122) or (65 <= c <= 90) or c == 95
                            or c >= 128)
                if not word:
                    break
                h = ((h ^ b) * 16777619) & 0xFFFFFFFF
                hi = ((hi ^ b) * 16777619) & 0xFFFFFFFF
                i += 1
            h ^= h >> 16
            h = (h * 0x85EBCA6B) & 0xFFFFFFFF
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & 0xFFFFFFFF
            hashes[count] = h ^ (h >> 16)
            hi = ((hi ^ 32) * 16777619) & 0xFFFFFFFF  # a token boundary in the key
            count += 1
        width = min(n, count)
        # Shingles (all n-grams; one of all tokens if fewer), then the sequence's key.
        for k in range(count - width + 2 if count else 0):
            last = k == count - width + 1
            g = int(hashes[0]) if last else int(hashes[k])
            for j in range(1, count if last else width):
                g = ((g * 16777619) & 0xFFFFFFFF) ^ int(hashes[(0 if last else k) + j])
                g ^= g >> 16
                g = (g * 0x85EBCA6B) & 0xFFFFFFFF
                g ^= g >> 13
                g = (g * 0xC2B2AE35) & 0xFFFFFFFF
                g ^= g >> 16
            if last:
                key_lo[d] = g
            else:
                out[at] = g
                at += 1
        if count == 0:
            key_lo[d] = 0
        out_ends[d] = at
        key_hi[d] = hi
        tokens[d] = count
        start = end


_compiled: Callable[..., Any] | None = None
_unavailable = False


def _kernel(size: int) -> Callable[..., Any]:
    """The compiled loop for a chunk of ``size`` bytes, or the Python one."""
    global _compiled, _unavailable
    if _compiled is not None:
        return _compiled
    if _unavailable or size < COMPILE_FROM_BYTES or os.environ.get("DEDUP_JIT", "1") == "0":
        return shingle_loop
    try:
        from dedup.shingling_jit import compiled_shingle_loop
    except ImportError:  # pragma: no cover - numba is a dependency
        _unavailable = True
        return shingle_loop
    _compiled = compiled_shingle_loop
    return _compiled


def shingle_hashes(
    buf: np.ndarray, ends: np.ndarray, n: int, *, compiled: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flat uint32 shingle hashes, each document's end in them, uint64 key of each
    document's token sequence, tokens per document) of documents given as UTF-8 ``buf``
    ending at ``ends``. ``compiled``: force the compiled (True) or Python (False) loop."""
    docs = len(ends)
    out = np.empty(max(len(buf) // 2 + 1, 1), dtype=np.int64)  # at most a token per 2 bytes
    out_ends = np.empty(docs, dtype=np.int64)
    hi = np.empty(docs, dtype=np.int64)
    lo = np.empty(docs, dtype=np.int64)
    tokens = np.empty(docs, dtype=np.int64)
    scratch = np.empty(max(len(buf) // 2 + 1, 1), dtype=np.int64)
    if compiled is None:
        loop = _kernel(len(buf))
    elif compiled:
        loop = _kernel(1 << 62)
    else:
        loop = shingle_loop
    loop(buf, ends.astype(np.int64), n, out, out_ends, hi, lo, tokens, scratch)
    keys = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
    return out[: out_ends[-1] if docs else 0].astype(np.uint32), out_ends, keys, tokens
