"""Compiled kernels: the same values as the numpy / scipy code they stand in for, bit for bit,
and a cache that loads in a fresh process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import scipy.sparse as sp

from dedup import jit, refine
from dedup.signatures import MinHasher


@pytest.fixture
def compiled() -> Iterator[None]:
    """Kernels for every call, however small."""
    with jit.using(jit.JitPolicy(min_work=0)):
        assert jit.kernels(0) is not None
        yield


def numpy_only() -> contextlib.AbstractContextManager[jit.Gate]:
    """The numpy / scipy code for every call, however large."""
    return jit.using(jit.JitPolicy(min_work=jit.NEVER))


def _shingle_sets(rng: np.random.Generator, docs: int) -> list[np.ndarray]:
    sizes = rng.integers(0, 60, docs)
    sizes[::7] = 0  # empty documents keep all-max rows
    return [rng.integers(0, 2**32, size=int(k), dtype=np.uint32) for k in sizes]


def _signatures(sets: list[np.ndarray], columns: int | None) -> np.ndarray:
    return MinHasher(128, 1).signatures(sets, columns=columns)


@pytest.mark.parametrize("columns", [None, 82, 1])
def test_minhash_kernel_equals_numpy(columns: int | None,
                                     compiled: None) -> None:
    sets = _shingle_sets(np.random.default_rng(3), 200)
    got = _signatures(sets, columns)
    with numpy_only():
        want = _signatures(sets, columns)
    assert got.dtype == want.dtype == np.uint32
    assert np.array_equal(got, want)
    assert (got[0] == 0xFFFFFFFF).all()  # sets[0] is empty


def _matrix(rng: np.random.Generator, rows: int, width: int, per_row: int) -> sp.csr_matrix:
    """Rows with shared columns and values from 1e-200 (products that underflow to 0.0,
    which scipy's elementwise product drops) to 1e3."""
    dense = np.zeros((rows, width))
    for r in range(rows):
        cols = rng.choice(width, size=int(rng.integers(0, per_row)), replace=False)
        dense[r, cols] = rng.standard_normal(len(cols)) * 10.0 ** rng.uniform(-3, 3, len(cols))
    dense[rows - 2 :] = 0.0
    dense[rows - 2 :, :20] = 1e-200
    return sp.csr_matrix(dense)


def test_row_dots_kernel_equals_scipy(compiled: None) -> None:
    rng = np.random.default_rng(5)
    # Up to 700 stored entries a row over 900 columns: shared runs longer than 128 and 256
    # take numpy's pairwise summation through its halving steps.
    matrix = _matrix(rng, 60, 900, 700)
    left = np.repeat(np.arange(60), 60)
    right = np.tile(np.arange(60), 60)
    got = refine._row_dots(matrix, left, right)
    with numpy_only():
        want = refine._row_dots(matrix, left, right)
    assert np.array_equal(got, want)
    assert got[59 * 60 + 58] == 0.0  # only underflowing products: an empty sum


def test_gram_kernel_equals_scipy(compiled: None) -> None:
    rng = np.random.default_rng(8)
    matrix = _matrix(rng, 40, 300, 200)
    for size in (1, 2, 7, 40):
        rows = np.sort(rng.choice(40, size=size, replace=False))
        assert np.array_equal(refine._exact_gram(matrix, rows), refine._gram(matrix[rows]))


@pytest.mark.parametrize("side", ["left", "right"])
def test_bounded_search_kernel_equals_searchsorted_on_each_slice(
    side: Literal["left", "right"],
) -> None:
    """``bands.bounded_search`` (the index's split levels and radix search), kernel and
    numpy alike, against ``np.searchsorted`` of each slice: slices empty, of one value,
    and thousands long, queries below, inside and above them."""
    from dedup.index.bands import bounded_search

    rng = np.random.default_rng(3)
    values = np.sort(rng.integers(0, 60, 5000)).astype(np.uint64)
    lo = rng.integers(0, 5000, 400)
    hi = np.minimum(5000, lo + rng.choice([0, 1, 7, 3000], 400))
    queries = rng.integers(0, 62, 400).astype(np.uint64)
    expected = np.array([a + np.searchsorted(values[a:b], q, side)
                         for a, b, q in zip(lo, hi, queries, strict=True)])
    with jit.using(jit.JitPolicy(min_work=0)) as gate:
        assert np.array_equal(bounded_search(values, lo, hi, queries, side), expected)
        assert gate.loaded is not None
    with numpy_only() as gate:
        assert np.array_equal(bounded_search(values, lo, hi, queries, side), expected)
        assert gate.loaded is None


def test_a_process_loads_the_kernels_once_its_numpy_work_repays_it() -> None:
    with jit.using(jit.JitPolicy(min_work=1000)) as gate:
        assert jit.kernels(600) is None  # small calls run in numpy ...
        assert gate.loaded is None and gate.spent == 600
        loaded = jit.kernels(600)  # ... until together they have done min_work
        assert loaded is not None and jit.kernels(1) is loaded
    with jit.using(jit.JitPolicy(min_work=1000)):
        assert jit.kernels(600) is None  # a fresh gate counts from zero again


def test_dedup_jit_0_keeps_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEDUP_JIT", "0")
    with jit.using(jit.JitPolicy(min_work=0)) as gate:
        assert jit.kernels(1 << 40) is None
        assert gate.unavailable


_RUN_KERNELS = """
import numpy as np, scipy.sparse as sp
from dedup import kernels
rng = np.random.default_rng(0)
m = sp.random(30, 500, density=0.6, format="csr", random_state=1)
m.sort_indices()
left = np.repeat(np.arange(30), 30); right = np.tile(np.arange(30), 30)
dots = np.empty(len(left)); kernels.row_dots(m.indptr, m.indices, m.data, left, right, dots)
gram = np.empty((30, 30)); kernels.gram(m.indptr, m.indices, m.data, np.arange(30), gram)
hashes = rng.integers(0, 2**32, 100, dtype=np.uint32)
a = rng.integers(1, 2**32, 8, dtype=np.uint32); b = rng.integers(0, 2**32, 8, dtype=np.uint32)
sig = np.full((2, 8), 0xFFFFFFFF, np.uint32)
kernels.minhash(hashes, np.array([0, 40]), np.array([40, 100]), a, b, sig)
print(dots.sum().hex(), gram.sum().hex(), int(sig.sum()))
"""


def test_cached_kernels_load_in_a_fresh_process(tmp_path: Path) -> None:
    """The first process compiles into the cache, the second loads from it. numba cannot
    load a cached function that calls itself (LLVM aborts the process): none may."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", _RUN_KERNELS], env=env, capture_output=True,
                       text=True, timeout=300)
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
    assert any(tmp_path.rglob("*.nbc")), "the first run wrote the cache"


_TERMS = ["", "a", "ab", "abc", "abcd", "abcde", "putin", "143", "ü", "日本語", "vladimir_putin",
          "naïve-café", "x" * 37]


def test_hashed_counts_equal_scikit_learns_hashing_vectorizer(
    compiled: None
) -> None:
    rng = np.random.default_rng(11)
    docs = [[_TERMS[i] for i in rng.integers(0, len(_TERMS), int(k))]
            for k in rng.integers(0, 40, 300)]
    docs[5] = []
    got = refine.term_counts(docs)
    with numpy_only():
        want = refine.term_counts(docs)
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
        assert getattr(got, name).dtype == getattr(want, name).dtype, name


def test_a_term_holding_a_nul_is_hashed_by_scikit_learn(
    compiled: None
) -> None:
    """The kernel splits its buffer at NUL bytes; a term with one of its own (no tokenizer
    here makes one) must not be split."""
    docs = [["a\0b", "c"], ["c"]]
    got = refine.term_counts(docs)
    with numpy_only():
        want = refine.term_counts(docs)
    assert (got != want).nnz == 0 and got.nnz == 3


def test_salient_terms_and_stacked_blocks_equal_numpy_and_scipy(
    compiled: None
) -> None:
    rng = np.random.default_rng(13)
    blocks = [_matrix(rng, 50, width, min(40, width)) for width in (300, 17, 90)]
    blocks[0].data[:30] = 1.0  # tied weights: the lower column comes first
    got_top = refine.salient_terms(blocks[0], 5)
    got_stack = refine._hstack(blocks)
    with numpy_only():
        want_top = refine.salient_terms(blocks[0], 5)
        want_stack = sp.hstack(blocks, format="csr")
    assert np.array_equal(got_top.offsets, want_top.offsets)
    assert np.array_equal(got_top.columns, want_top.columns)
    assert got_top.columns.dtype == want_top.columns.dtype
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got_stack, name), getattr(want_stack, name)), name
        assert getattr(got_stack, name).dtype == getattr(want_stack, name).dtype, name
    assert got_stack.shape == want_stack.shape
