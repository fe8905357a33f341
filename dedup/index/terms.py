"""Terms of new articles: hashed TF-IDF columns and MinHash token hashes through a cache
of term strings, the term ids and TF an add stores, and the events terms (salient)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from dedup import normalize, pipeline, refine, signatures
from dedup.index.state import BLOCKS
from dedup.index.vectors import Vectors


class Vocabulary:
    """Term strings seen lately, each with its hashed TF-IDF column (``refine.term_counts``)
    and its MinHash token hash (``signatures.token_hash``); body columns' hashes too.

    Why: a batch has ~40k term occurrences, and hashing each in Python, once for TF-IDF
    (sklearn's HashingVectorizer) and once for the copies shingles (``TokenHasher``), was
    a tenth of an add. Here each occurrence is one dict lookup and only strings never seen
    are hashed, by those same functions, so columns and hashes are unchanged. Past
    ``max_entries`` (~150 bytes each) it starts over, as ``TokenHasher`` does.
    """

    def __init__(self, max_entries: int = 1 << 21) -> None:
        self.max_entries = max_entries
        self.positions: dict[str, int] = {}
        self.columns = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint32)
        self.stop = np.zeros(0, dtype=bool)  # a function word (``normalize.STOPWORDS``)
        # ``token_hash(str(column))`` of body columns (the events shingles), filled lazily.
        self.column_table = np.zeros(refine.N_FEATURES, dtype=np.uint32)
        self.column_known = np.zeros(refine.N_FEATURES, dtype=bool)

    def lookup(self, terms: list[str]) -> np.ndarray:
        """Positions of ``terms`` in ``columns`` and ``hashes``; unseen terms are added."""
        if len(self.positions) > self.max_entries:
            self.positions = {}
        positions = self.positions
        found = np.fromiter(map(positions.get, terms, itertools.repeat(-1)), dtype=np.int64,
                            count=len(terms))
        missing = np.flatnonzero(found < 0).tolist()
        if missing:
            new = list(dict.fromkeys(terms[i] for i in missing))
            start, end = len(positions), len(positions) + len(new)
            if end > len(self.columns):
                size = max(end, 2 * len(self.columns))
                self.columns = np.resize(self.columns, size)
                self.hashes = np.resize(self.hashes, size)
                self.stop = np.resize(self.stop, size)
            one_each = refine.term_counts([[term] for term in new])  # a column per row
            self.columns[start:end] = one_each.indices
            self.hashes[start:end] = [signatures.token_hash(term) for term in new]
            self.stop[start:end] = [term in normalize.STOPWORDS for term in new]
            positions.update(zip(new, range(start, end), strict=True))
            found[missing] = [positions[terms[i]] for i in missing]
        return found

    def column_hashes(self, columns: np.ndarray) -> np.ndarray:
        """``signatures.token_hash(str(c))`` for each body column ``c``."""
        todo = np.unique(columns[~self.column_known[columns]])
        if len(todo):
            self.column_table[todo] = [signatures.token_hash(str(c)) for c in todo.tolist()]
            self.column_known[todo] = True
        return self.column_table[columns]



def count_terms(vocabulary: Vocabulary, prepared: Sequence[pipeline.Prepared],
                sublinear_tf: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term ids (int32, sorted per article) and sublinear TF (float32) of all articles,
    concatenated, and each article's count (DF is ``state.count_df``'s). Then the copies
    tokens' hashes, concatenated too, and each article's count.

    A term id is block b's hashed column c (``refine.term_counts``) as b * N_FEATURES
    + c, blocks in ``BLOCKS`` order; one sort over (article, term id) counts them all.
    The body block is the tokens that are not function words (``pipeline.prepare``), so
    it is read off the tokens' lookups instead of looking each body word up again.
    """
    flat: list[str] = []
    lengths: list[int] = []
    for p in prepared:
        for part in (p.tokens, *(getattr(p.terms, name) for name in BLOCKS[1:])):
            flat.extend(part)
            lengths.append(len(part))
    position = vocabulary.lookup(flat)
    n, width = len(prepared), len(BLOCKS) * refine.N_FEATURES
    counts = np.asarray(lengths, dtype=np.int64)
    # Part 0 is the tokens, part k >= 1 is block k (the body, block 0, comes from part 0).
    part = np.repeat(np.tile(np.arange(len(BLOCKS)), n), counts)
    doc = np.repeat(np.arange(n, dtype=np.int64), counts.reshape(n, -1).sum(axis=1))
    is_token = part == 0
    token_positions = position[is_token]
    token_hashes = vocabulary.hashes[token_positions]
    body = ~vocabulary.stop[token_positions]
    term = ~is_token
    keys = np.concatenate((
        doc[is_token][body] * width + vocabulary.columns[token_positions[body]],
        doc[term] * width + part[term] * refine.N_FEATURES + vocabulary.columns[position[term]],
    ))
    keys, occurrences = np.unique(keys, return_counts=True)
    ids = keys % width
    tf = occurrences.astype(np.float64)
    if sublinear_tf:
        tf = 1.0 + np.log(tf)
    # Kept as stored (int32, float32) so a reopened index scores exactly the same.
    per_article = np.bincount(keys // width, minlength=n)
    return (ids.astype(np.int32), tf.astype(np.float32), per_article, token_hashes,
            counts[:: len(BLOCKS)])



def salient_columns(vectors: Vectors, term_ids: np.ndarray, tf: np.ndarray,
                    lengths: np.ndarray, k: int) -> list[np.ndarray]:
    """Per article (``lengths`` of the concatenated ``term_ids`` and ``tf`` each), the
    top ``k`` (``salient_terms``) body columns by current TF-IDF (ties by column), whose
    names (``refine.salient_terms``) are the events shingles; one sort for the whole
    batch."""
    if not len(lengths):
        return []
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    ids = term_ids.astype(np.int64)
    body = ids < refine.N_FEATURES
    doc, cols = doc[body], ids[body]
    weights = tf[body] * vectors.idf_scale(cols)
    order = np.lexsort((cols, -weights, doc))
    doc, cols = doc[order], cols[order]
    rank = np.arange(len(doc)) - np.searchsorted(doc, doc, side="left")
    keep = rank < k
    doc, cols = doc[keep], cols[keep]
    bounds = np.searchsorted(doc, np.arange(1, len(lengths)))
    return np.split(cols, bounds)
