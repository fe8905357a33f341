"""TF-IDF vectors and blended scores of indexed articles under one add's IDF.

The arithmetic is ``refine``'s (smoothed IDF, blocks L2-normalised and weighted, the
year-conflict factor and the date window of ``refine.pair_factor``), laid out for a
growing corpus: vectors are built from the stored term ids on demand, once per add.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np

from dedup import refine
from dedup.candidates import spans
from dedup.config import RefineConfig
from dedup.index.state import State


@functools.lru_cache(maxsize=64)
def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, 1)``, cached: ``dense_many`` asks for it per set."""
    return np.triu_indices(n, 1)


def block_weights(config: RefineConfig) -> np.ndarray:
    """sqrt of each block's weight (body, names, title, numbers): the dot product of two
    vectors scaled by these is ``refine``'s weighted blend."""
    return np.sqrt(np.array([config.text_weight, config.names_weight, config.title_weight,
                             config.numbers_weight], dtype=np.float64))


class Scratch:
    """Zeroed float scratch and -1 filled column map over all term ids, kept between
    adds (allocating 48 MB per add would cost more than the scoring)."""

    def __init__(self) -> None:
        self.values = np.zeros(0, dtype=np.float64)
        self.local = np.zeros(0, dtype=np.int32)

    def arrays(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The two arrays, at least ``size`` long."""
        if len(self.values) < size:
            self.values = np.zeros(size, dtype=np.float64)
            self.local = np.full(size, -1, dtype=np.int32)
        return self.values, self.local


class Vectors:
    """Rows' TF-IDF vectors under one add's IDF, each computed once and shared by the
    placement, the re-linkage and the ``Placement`` scores of that add.

    Why: DF and the corpus size do not change while a batch is placed, so a row's vector
    is the same for every comparison of the add; recomputing IDF and norms per comparison
    was most of the scoring time. A vector is block b's TF-IDF (body and names with
    IDF^``idf_power``), L2-normalised per block and scaled by sqrt(weight_b): a dot product
    is ``refine``'s blended score, before the year-conflict factor and the date window.
    Vectors live in flat arrays (row -> slot -> span), gathered with one index per call.
    Every row asked about must be in ``state.store`` when this is made.
    """

    PAIRWISE_MAX = 10  # ``dense_many`` scores sets up to this many rows pair by pair

    def __init__(self, config: RefineConfig, state: State, n_docs: int, scratch: Scratch
                 ) -> None:
        self.store = state.store
        self.df = state.df
        self.n_docs = n_docs
        self.idf_power = config.idf_power
        self.weights = block_weights(config)
        self.year_factor = config.year_conflict_factor
        window = config.date_window_days
        self.window = None if window is None else window * 86400.0
        self.scratch, self.local = scratch.arrays(len(state.df))
        self.slot = np.full(len(self.store.start), -1, dtype=np.int64)  # by row
        self.n_slots = 0
        # By slot: where the vector starts, its length, the article's date and year set.
        self.starts = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.stamps = np.zeros(0, dtype=np.float64)
        self.year_sets = np.zeros(0, dtype=np.int64)
        # By position: term ids and weights of all vectors.
        self.ids = np.zeros(0, dtype=np.int32)
        self.values = np.zeros(0, dtype=np.float64)
        self.used = 0

    def idf_scale(self, ids: np.ndarray) -> np.ndarray:
        """Current smoothed IDF (scikit-learn's), raised to ``idf_power`` for body and names
        (computed in place: this runs over every term of every vector of an add)."""
        idf = refine.smoothed_idf(self.df[ids], self.n_docs)
        if self.idf_power == 2.0:  # np.power gives x * x for 2.0, three times slower
            np.multiply(idf, idf, out=idf, where=ids < 2 * refine.N_FEATURES)
        elif self.idf_power != 1.0:
            np.power(idf, self.idf_power, out=idf, where=ids < 2 * refine.N_FEATURES)
        return idf

    def ensure(self, rows: Sequence[int] | np.ndarray) -> None:
        """Compute the vectors of ``rows`` not computed yet, all in one pass."""
        rows = np.asarray(rows, dtype=np.int64)
        todo = np.unique(rows[self.slot[rows] < 0])
        if not len(todo):
            return
        # Rows with the same terms and TF (verbatim copies) share one computed vector.
        distinct, copy_of = self.texts(todo)
        ids, tf, lengths = self.store.gather(todo[distinct])  # int32 and float32, as stored
        blk = ids // refine.N_FEATURES
        key = np.repeat(np.arange(0, 4 * len(distinct), 4, dtype=np.int64), lengths) + blk
        w = self.idf_scale(ids)
        w *= tf
        # TF and IDF are positive, so every block that has a term has a positive norm.
        values = w / np.sqrt(np.bincount(key, w * w, minlength=4 * len(distinct)))[key]
        values *= self.weights[blk]
        first, end = self.n_slots, self.used + len(ids)
        if end > len(self.ids):
            size = max(end, 2 * len(self.ids))
            self.ids = np.resize(self.ids, size)
            self.values = np.resize(self.values, size)
        if first + len(todo) > len(self.starts):
            size = max(first + len(todo), 2 * len(self.starts))
            self.starts = np.resize(self.starts, size)
            self.lengths = np.resize(self.lengths, size)
            self.stamps = np.resize(self.stamps, size)
            self.year_sets = np.resize(self.year_sets, size)
        self.ids[self.used : end] = ids
        self.values[self.used : end] = values
        slots = slice(first, first + len(todo))
        self.starts[slots] = (self.used + np.cumsum(lengths) - lengths)[copy_of]
        self.lengths[slots] = lengths[copy_of]
        self.stamps[slots] = self.store.published[todo]
        self.year_sets[slots] = self.store.year_set[todo]
        self.slot[todo] = np.arange(first, first + len(todo))
        self.n_slots += len(todo)
        self.used = end

    def texts(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``rows`` of one row per distinct vector, in order; each row's
        index among them): ``rows[distinct][copy_of]`` has ``rows``' vectors."""
        content = self.store.content[np.asarray(rows, dtype=np.int64)]
        _, first, copy_of = np.unique(content, return_index=True, return_inverse=True)
        if len(first) == len(content):
            every = np.arange(len(content))
            return every, every
        order = np.argsort(first)  # first appearance order: a sorted ``rows`` stays sorted
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return first[order], rank[copy_of]

    def slots(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.slot[np.asarray(rows, dtype=np.int64)]

    def gather(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, values, lengths) of computed vectors, concatenated in order."""
        lengths = self.lengths[slots]
        positions = spans(self.starts[slots], lengths)
        return self.ids[positions], self.values[positions], lengths

    def years(self, slots: np.ndarray) -> np.ndarray:
        """Which years (``_YearSets``) each slot's article names, as a boolean matrix."""
        return self.store.years.table[self.year_sets[slots]]

    def _adjust(self, scores: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The year-conflict factor (both name years, none in common) and the date window
        for the pairs of slots (left[i], right[i]), in place."""
        if not len(left) or (self.year_factor == 1.0 and self.window is None):
            return scores
        a, b = self.years(left), self.years(right)
        conflict = a.any(axis=1) & b.any(axis=1) & ~(a & b).any(axis=1)
        gap = None if self.window is None else np.abs(self.stamps[left] - self.stamps[right])
        scores *= refine.pair_factor(conflict, self.year_factor, gap, self.window)
        return scores

    def scores(self, row: int, rows: Sequence[int]) -> np.ndarray:
        """Blended scores of ``row`` with each of ``rows`` (``refine.pair_scores``)."""
        if not len(rows):
            return np.empty(0, dtype=np.float64)
        self.ensure([row, *rows])
        a_slot = self.slots([row])
        b_slots = self.slots(rows)
        # A row's score with each of several verbatim copies is one dot product.
        distinct, copy_of = self.texts(rows)
        a_ids, a_values, _ = self.gather(a_slot)
        ids, values, lengths = self.gather(b_slots[distinct])
        scratch = self.scratch
        scratch[a_ids] = a_values
        try:
            product = values * scratch[ids]
        finally:
            scratch[a_ids] = 0.0
        seg = np.repeat(np.arange(len(distinct), dtype=np.int64), lengths)
        scores = np.bincount(seg, product, minlength=len(distinct))[copy_of]
        return self._adjust(scores, np.repeat(a_slot, len(rows)), b_slots)

    def pair_scores(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Blended scores of the pairs (left[i], right[i]), ``left`` sorted.

        The left rows (a batch's new articles) are laid out densely over their own terms,
        64 at a time, plus a zero column that every other term maps to; each right row's
        entries then look their partner's weight up by index: one pass over all pairs
        instead of one scoring call per article.
        """
        if not len(left):
            return np.zeros(0, dtype=np.float64)
        self.ensure(np.concatenate([left, right]))
        # Pairs of the same two texts (verbatim copies on either side) are one dot product;
        # the date window and years are each pair's own (``_adjust``).
        content = self.store.content
        _, left_text = np.unique(content[left], return_inverse=True)
        texts, right_text = np.unique(content[right], return_inverse=True)
        _, distinct, copy_of = np.unique(left_text * len(texts) + right_text,
                                         return_index=True, return_inverse=True)
        if len(distinct) < len(left):
            order = distinct[np.argsort(left[distinct], kind="stable")]
            dots = np.empty(len(left), dtype=np.float64)
            dots[order] = self._dots(left[order], right[order])
            out = dots[distinct][copy_of]
        else:
            out = self._dots(left, right)
        return self._adjust(out, self.slots(left), self.slots(right))

    def _dots(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``pair_scores`` before ``_adjust``, every pair computed (vectors ensured)."""
        out = np.zeros(len(left), dtype=np.float64)
        right_slots = self.slots(right)
        lefts = np.unique(left)
        for start in range(0, len(lefts), 64):
            block = lefts[start : start + 64]
            lo = int(np.searchsorted(left, block[0], side="left"))
            hi = int(np.searchsorted(left, block[-1], side="right"))
            columns, values, lengths = self.gather(self.slots(block))
            dense = np.zeros((len(block), self._columns(columns) + 1))  # -1: not here
            dense[np.repeat(np.arange(len(block)), lengths), self.local[columns]] = values
            ids, values, lengths = self.gather(right_slots[lo:hi])
            try:
                cols = self.local[ids]
            finally:
                self.local[columns] = -1
            pair = np.repeat(np.arange(hi - lo), lengths)
            owner = np.searchsorted(block, left[lo:hi])[pair]
            # Flat positions: a term not in the block (column -1) lands on the zero column
            # ending the row before (the last row's for row 0).
            width = dense.shape[1]
            out[lo:hi] = np.bincount(pair, values * dense.ravel().take(owner * width + cols),
                                     minlength=hi - lo)
        return out

    def dense_many(self, sets: Sequence[Sequence[int]]) -> dict[tuple[int, ...], np.ndarray]:
        """``dense`` of several sets of rows (sorted), keyed by the tuple of rows.

        Why: most re-linked neighbourhoods have a few rows, where ``dense``'s fixed cost
        (a dozen array calls) outweighs its arithmetic; the pairs of all sets up to
        ``PAIRWISE_MAX`` rows go through one ``pair_scores`` pass instead (the same
        scores, up to rounding in the last bit). Larger sets use ``dense``.
        """
        out: dict[tuple[int, ...], np.ndarray] = {}
        small = [s for s in sets if len(s) <= self.PAIRWISE_MAX]
        for rows in sets:
            if len(rows) > self.PAIRWISE_MAX:
                out[tuple(rows)] = self.dense(rows)
        if not small:
            return out
        flat = [r for rows in small for r in rows]
        self.ensure(flat)
        _, values, lengths = self.gather(self.slots(flat))
        squares = np.bincount(np.repeat(np.arange(len(flat)), lengths), values * values,
                              minlength=len(flat)).tolist()
        left: list[int] = []
        right: list[int] = []
        for rows in small:
            for i, a in enumerate(rows):
                left.extend(itertools.repeat(a, len(rows) - i - 1))
                right.extend(rows[i + 1 :])
        left_array = np.asarray(left, dtype=np.int64)
        order = np.argsort(left_array, kind="stable")
        scores = np.empty(len(left), dtype=np.float64)
        scores[order] = self.pair_scores(left_array[order],
                                         np.asarray(right, dtype=np.int64)[order])
        at = start = 0
        for rows in small:
            n = len(rows)
            upper = _upper(n)
            sim = np.empty((n, n), dtype=np.float64)
            count = n * (n - 1) // 2
            sim[upper] = scores[at : at + count]
            sim[upper[1], upper[0]] = scores[at : at + count]
            np.fill_diagonal(sim, squares[start : start + n])
            out[tuple(rows)] = sim
            at += count
            start += n
        return out

    def _columns(self, ids: np.ndarray) -> int:
        """Number the distinct terms of ``ids`` 0, 1, ... in ``self.local`` (the caller
        resets ``self.local[ids]`` to -1); returns how many there are.

        Why not ``np.unique``: it sorts every gathered term; writing positions into the
        all-terms map, reading them back and ranking the kept ones is a few linear passes
        (columns come in no particular order, which only moves the last bit of a sum).
        """
        local = self.local
        local[ids] = np.arange(len(ids), dtype=np.int32)
        kept = np.zeros(len(ids), dtype=bool)
        kept[local[ids]] = True  # one position per distinct term
        rank = np.cumsum(kept, dtype=np.int32)
        local[ids] = rank[local[ids]] - 1
        return int(rank[-1]) if len(rank) else 0

    def dense(self, rows: Sequence[int]) -> np.ndarray:
        """All-pairs blended scores among ``rows`` (as ``refine.block_similarity``).

        Only terms two of the rows share can add to an off-diagonal score, so the product
        runs over those columns (a fraction of them all); the diagonal is each row's own
        sum of squares. Verbatim copies among ``rows`` are one row of the product (a big
        story's neighbourhood is mostly copies); their score with each other is that row's
        sum of squares.
        """
        self.ensure(rows)
        slots = self.slots(rows)
        distinct, copy_of = self.texts(rows)
        ids, values, lengths = self.gather(slots[distinct])
        try:
            n_columns = self._columns(ids)
            cols = self.local[ids]
            shared = np.bincount(cols, minlength=n_columns) > 1
        finally:
            self.local[ids] = -1
        seg = np.repeat(np.arange(len(distinct)), lengths)
        local = np.cumsum(shared) - 1
        keep = shared[cols]
        matrix = np.zeros((len(distinct), int(local[-1]) + 1 if len(local) else 0))
        matrix[seg[keep], local[cols[keep]]] = values[keep]
        sim = matrix @ matrix.T
        np.fill_diagonal(sim, np.bincount(seg, values * values, minlength=len(distinct)))
        if len(distinct) < len(rows):
            sim = sim[np.ix_(copy_of, copy_of)]
        if self.year_factor == 1.0 and self.window is None:
            return sim
        years = self.years(slots).astype(np.float64)
        dated = years.sum(axis=1) > 0
        conflict = np.outer(dated, dated) & ((years @ years.T) == 0)
        stamps = self.stamps[slots]
        gap = None if self.window is None else np.abs(stamps[:, None] - stamps[None, :])
        sim *= refine.pair_factor(conflict, self.year_factor, gap, self.window)
        return sim

