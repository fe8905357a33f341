"""Compiled loops (numba) for the numeric hot spots of ``signatures`` and ``refine``.

Why: a MinHash row is a min over shingles x permutations of ``h * a + b``. numpy must write
every product to memory before it can reduce them; a compiled loop keeps them in registers,
15x faster over the synthetic corpus's copies shingles. Sparse row dot products and the
small Gram blocks of clustering are merge joins that scipy wraps in per-call object work.

Each kernel gives the same values, bit for bit, as the numpy or scipy code it stands in for
(tests compare them), and is used only through ``load``: numba is imported on first need,
not by ``import dedup``, and never when ``DEDUP_JIT=0`` or numba is missing.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

_MASK = np.uint64(0xFFFFFFFF)


@_jit
def minhash(
    hashes: np.ndarray, starts: np.ndarray, ends: np.ndarray, a: np.ndarray, b: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[d, p] = min over hashes[starts[d]:ends[d]] of fmix32(h) * a[p] + b[p]`` (mod
    2**32), lowered where smaller than what ``out`` holds (all-max for a fresh row)."""
    width = a.shape[0]
    for d in range(starts.shape[0]):
        for i in range(starts[d], ends[d]):
            h = np.uint64(hashes[i])
            h ^= h >> np.uint64(16)
            h = (h * np.uint64(0x85EBCA6B)) & _MASK
            h ^= h >> np.uint64(13)
            h = (h * np.uint64(0xC2B2AE35)) & _MASK
            h ^= h >> np.uint64(16)
            for p in range(width):
                v = np.uint32((h * np.uint64(a[p]) + np.uint64(b[p])) & _MASK)
                if v < out[d, p]:
                    out[d, p] = v


@_jit
def _block_sum(values: np.ndarray, start: int, n: int) -> float:
    """numpy's sum of a run of at most 128 float64 values: one by one below 8, else eight
    interleaved partial sums combined in a fixed tree, then the remainder one by one."""
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        at = start + i
        r0 += values[at]
        r1 += values[at + 1]
        r2 += values[at + 2]
        r3 += values[at + 3]
        r4 += values[at + 4]
        r5 += values[at + 5]
        r6 += values[at + 6]
        r7 += values[at + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += values[start + i]
        i += 1
    return total


@_jit
def _pairwise_sum(values: np.ndarray, start: int, n: int) -> float:
    """numpy's pairwise summation of ``values[start:start + n]`` (``pairwise_sum`` in its
    ``loops_utils.h``): what ``np.add.reduce`` returns for a contiguous float64 run.

    numpy recurses on halves (rounded down to a multiple of 8) above 128 values. Here the
    recursion is an explicit stack: numba cannot cache a function that calls itself (the
    cached code then fails to load in the next process).
    """
    if n <= 128:
        return _block_sum(values, start, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    phase = np.zeros(64, dtype=np.int64)
    lefts = np.empty(64)
    top = 0
    starts[0], sizes[0] = start, n
    result = 0.0
    while top >= 0:
        at, size = starts[top], sizes[top]
        if size <= 128:
            result = _block_sum(values, at, size)
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        if phase[top] == 0:  # first the left half
            phase[top] = 1
            top += 1
            starts[top], sizes[top], phase[top] = at, half, 0
        elif phase[top] == 1:  # then the right half
            lefts[top] = result
            phase[top] = 2
            top += 1
            starts[top], sizes[top], phase[top] = at + half, size - half, 0
        else:
            result = lefts[top] + result
            top -= 1
    return result


@_jit
def _shared(
    indptr: np.ndarray, indices: np.ndarray, i: int, j: int, at_i: np.ndarray, at_j: np.ndarray
) -> int:
    """Where CSR rows ``i`` and ``j`` (sorted indices) store the same columns, in column
    order, written to ``at_i`` / ``at_j``; returns how many."""
    p, p_end = indptr[i], indptr[i + 1]
    q, q_end = indptr[j], indptr[j + 1]
    n = 0
    while p < p_end and q < q_end:
        cp, cq = indices[p], indices[q]
        if cp == cq:
            at_i[n] = p
            at_j[n] = q
            n += 1
            p += 1
            q += 1
        elif cp < cq:
            p += 1
        else:
            q += 1
    return n


@_jit
def _longest_row(indptr: np.ndarray) -> int:
    longest = 1
    for r in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[r + 1] - indptr[r])
    return longest


@_jit
def row_dots(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, left: np.ndarray,
    right: np.ndarray, out: np.ndarray,
) -> None:
    """``out[k]`` = dot product of CSR rows ``left[k]`` and ``right[k]`` (sorted indices),
    as ``matrix[left].multiply(matrix[right]).sum(axis=1)`` computes it: the nonzero products
    in column order, the first plus numpy's pairwise sum of the rest (``np.add.reduceat``)."""
    longest = _longest_row(indptr)
    at_i = np.empty(longest, dtype=np.int64)
    at_j = np.empty(longest, dtype=np.int64)
    products = np.empty(longest)
    for k in range(left.shape[0]):
        n = 0
        for t in range(_shared(indptr, indices, left[k], right[k], at_i, at_j)):
            v = data[at_i[t]] * data[at_j[t]]
            if v != 0.0:  # scipy's elementwise product keeps no zeros
                products[n] = v
                n += 1
        out[k] = 0.0 if n == 0 else products[0] + _pairwise_sum(products, 1, n - 1)


@_jit
def gram(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[i, j]`` = dot product of CSR rows ``rows[i]`` and ``rows[j]`` (sorted indices),
    summed one by one in row i's stored order from 0.0, as scipy's sparse product does."""
    longest = 1
    for r in rows:
        longest = max(longest, indptr[r + 1] - indptr[r])
    at_i = np.empty(longest, dtype=np.int64)
    at_j = np.empty(longest, dtype=np.int64)
    for i in range(rows.shape[0]):
        for j in range(rows.shape[0]):
            total = 0.0
            for t in range(_shared(indptr, indices, rows[i], rows[j], at_i, at_j)):
                total += data[at_i[t]] * data[at_j[t]]
            out[i, j] = total


@_jit
def _rotl32(x: np.uint64, r: int) -> np.uint64:
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _MASK


@_jit
def _murmur3_32(buf: np.ndarray, start: int, end: int) -> np.uint64:
    """MurmurHash3 x86 32-bit (seed 0) of ``buf[start:end]``, as an unsigned 32-bit value."""
    c1 = np.uint64(0xCC9E2D51)
    c2 = np.uint64(0x1B873593)
    h = np.uint64(0)
    n = end - start
    at = start
    for _ in range(n // 4):
        k = np.uint64(buf[at]) | (np.uint64(buf[at + 1]) << np.uint64(8))
        k |= (np.uint64(buf[at + 2]) << np.uint64(16)) | (np.uint64(buf[at + 3]) << np.uint64(24))
        k = _rotl32((k * c1) & _MASK, 15)
        h ^= (k * c2) & _MASK
        h = (_rotl32(h, 13) * np.uint64(5) + np.uint64(0xE6546B64)) & _MASK
        at += 4
    rest = n & 3
    if rest:
        k = np.uint64(0)
        if rest == 3:
            k ^= np.uint64(buf[at + 2]) << np.uint64(16)
        if rest >= 2:
            k ^= np.uint64(buf[at + 1]) << np.uint64(8)
        k ^= np.uint64(buf[at])
        k = _rotl32((k * c1) & _MASK, 15)
        h ^= (k * c2) & _MASK
    h ^= np.uint64(n)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    h ^= h >> np.uint64(16)
    return h


@_jit
def hashed_counts(
    buf: np.ndarray, sizes: np.ndarray, n_features: int, indptr: np.ndarray,
    indices: np.ndarray, data: np.ndarray,
) -> int:
    """scikit-learn's ``HashingVectorizer(alternate_sign=False, norm=None)`` counts, as CSR.

    ``buf``: every document's tokens in UTF-8, one NUL byte between consecutive tokens;
    ``sizes``: tokens per document. Each token's column is ``abs(signed murmur3) %
    n_features`` (with scikit-learn's rule for -2**31); columns of a row are sorted and
    their counts summed. Returns the number of stored entries.
    """
    longest = 0
    for d in range(sizes.shape[0]):
        longest = max(longest, sizes[d])
    cols = np.empty(max(longest, 1), dtype=np.int64)
    at = 0
    nnz = 0
    indptr[0] = 0
    for d in range(sizes.shape[0]):
        for t in range(sizes[d]):
            end = at
            while end < buf.shape[0] and buf[end] != 0:
                end += 1
            h = np.int64(_murmur3_32(buf, at, end))
            if h >= 2147483648:
                h -= 4294967296
            if h == -2147483648:
                cols[t] = (2147483647 - (n_features - 1)) % n_features
            else:
                cols[t] = abs(h) % n_features
            at = end + 1
        row = np.sort(cols[: sizes[d]])
        t = 0
        while t < row.shape[0]:
            run = t
            while run < row.shape[0] and row[run] == row[t]:
                run += 1
            indices[nnz] = row[t]
            data[nnz] = run - t
            nnz += 1
            t = run
        indptr[d + 1] = nnz
    return nnz


@_jit
def top_columns(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int, offsets: np.ndarray,
    out: np.ndarray,
) -> int:
    """Each CSR row's ``k`` highest-valued columns (ties: lower column first), rows' columns
    sorted ascending: ``cols[np.lexsort((cols, -values))[:k]]`` per row. Returns how many."""
    n = 0
    offsets[0] = 0
    for r in range(indptr.shape[0] - 1):
        start, end = indptr[r], indptr[r + 1]
        order = np.argsort(-data[start:end], kind="mergesort")  # stable: ties keep column order
        for t in range(min(k, end - start)):
            out[n] = indices[start + order[t]]
            n += 1
        offsets[r + 1] = n
    return n


@_jit
def place_block(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, offset: int, cursor: np.ndarray,
    out_indices: np.ndarray, out_data: np.ndarray,
) -> None:
    """Copy each row of a CSR block to ``cursor[row]`` onward in the output, its columns
    moved ``offset`` to the right, and advance the cursors (``sp.hstack``, block by block)."""
    for r in range(indptr.shape[0] - 1):
        at = cursor[r]
        for p in range(indptr[r], indptr[r + 1]):
            out_indices[at] = indices[p] + offset
            out_data[at] = data[p]
            at += 1
        cursor[r] = at


@_jit
def bounded_search(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, queries: np.ndarray,
                   left: bool, out: np.ndarray) -> None:
    """``out[i] = lo[i] + np.searchsorted(values[lo[i]:hi[i]], queries[i], side)`` (side
    "left" when ``left``, else "right"), a binary search per query."""
    for i in range(lo.shape[0]):
        a, b, q = lo[i], hi[i], queries[i]
        while a < b:
            mid = (a + b) >> 1
            if values[mid] < q or (not left and values[mid] == q):
                a = mid + 1
            else:
                b = mid
        out[i] = a
