"""Sentence vectors and the cluster's similarity matrices: the merger's one notion of "same".

Why: the base choice and sentence alignment both ask "do these two sentences state the
same claim?" many thousands of times per cluster. Terms are content-word stems with every
number as '#', vectors unit length, similarity the cosine; ``Similarity`` holds a whole
cluster's sentences as matrix rows so one product answers most of those questions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from dedup.caches import BoundedCache
from dedup.normalize import STOPWORDS, tokens
from dedup.records import Article


@lru_cache(maxsize=1 << 16)
def stem_word(token: str) -> str:
    """A light suffix stripper so 'deaths'/'death' and 'warned'/'warning' meet (cached: the
    words around numbers are stemmed once per mention)."""
    if token.endswith("'s"):
        token = token[:-2]
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: len(token) - len(suffix)] + repl
    return token


def _term(token: str) -> str:
    """The vector term of a content token: '#' for any number, else its stem."""
    return TERMS.put(token, "#" if any(c.isdigit() for c in token) else stem_word(token))


# Token -> its ``_term``. News repeats its words, and stemming was a tenth of merge time; a
# dict looked up inline costs less than an ``lru_cache`` call. Bounded: it starts over
# (``dedup.merge.clear_caches`` empties it).
TERMS: BoundedCache[str, str] = BoundedCache(1 << 18)


def text_terms(text: str) -> list[str]:
    """Vector terms of a text's content tokens, in text order."""
    known = TERMS.get
    return [known(t) or _term(t) for t in tokens(text) if t not in STOPWORDS]


def text_stems(text: str) -> list[str]:
    """Content stems of a text, numbers left out (they are compared, not matched on)."""
    return [t for t in text_terms(text) if t != "#"]


def unit_vector(counts: Counter[str]) -> dict[str, float]:
    """Counts scaled to unit length (keys in first-seen order, as the cosines sum them)."""
    norm = math.sqrt(sum([v * v for v in counts.values()]))  # whole numbers: exact
    return {k: v / norm for k, v in counts.items()} if norm else {}


def text_vector(text: str) -> dict[str, float]:
    """Unit-length term-frequency vector of content stems; every number counts as '#'.

    Numbers are what versions disagree on, so their values must not keep two statements of
    one claim apart; their presence still helps align short lines ("She was 85.").
    """
    return unit_vector(Counter(text_terms(text)))


EPS = 1e-9  # cosine of {a, b} and {a, c} is 0.5 up to rounding: count it as 0.5


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Cosine of two unit vectors, summed over the shorter one's keys in their order (the
    exact value every threshold decision and sort key uses; ``Similarity`` only proposes)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def containment(small: frozenset[str], big: frozenset[str]) -> float:
    """Share of ``small``'s content stems that ``big`` also has (a split or joined sentence)."""
    return len(small & big) / len(small) if small else 0.0


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence's vector terms, vector and stem set: computed once per distinct sentence of
    a cluster, since versions of one story repeat most of their sentences word for word."""

    terms: list[str]
    vector: dict[str, float]
    stems: frozenset[str]


def prepare_sentence(text: str) -> Sentence:
    """A sentence's ``Sentence``: its terms, their unit vector, its stems (numbers left out)."""
    terms = text_terms(text)
    return Sentence(terms, unit_vector(Counter(terms)), frozenset(x for x in terms if x != "#"))


@dataclass(slots=True)
class Member:
    """One member as the merger compares it: cleaned title and sentences, each sentence's
    vector and stem set, the boilerplate share and the whole text's vector."""

    article: Article
    title: str
    sentences: list[str]
    vectors: list[dict[str, float]]
    stemsets: list[frozenset[str]]
    boilerplate: float
    doc: dict[str, float]

    @property
    def id(self) -> str:
        return self.article.id


# Matrix cosines differ from ``cosine`` only in summation order: by at most ~(terms shared)
# * 1.1e-16, far below this band. Only values inside the band around a threshold are
# recomputed with ``cosine``; the band stays far from the common exact 0.5 (1e-9 away).
BAND = 1e-11


class Similarity:
    """Every sentence of a cluster as a row of two matrices over one vocabulary (content
    terms, and stems present).

    Why: alignment and the base score compare every sentence with every other, and one
    matrix product replaces thousands of dict cosines. Products only find candidates; a
    decision near a threshold and every score that is sorted on are computed with
    ``cosine`` as before, so stories stay byte-identical. Stem overlaps are whole numbers,
    exact in any summation order. Column order is free for the same reasons.

    The two size limits below choose how the products are computed, never their values
    (a test lowers them on the class to check exactly that).
    """

    # Sentence-pair matrices are computed whole, in one product each, up to this many
    # sentences (32 MiB each); larger clusters get one block of rows per member.
    full_matrix_max_sentences = 2048
    # Up to this many multiply-adds (sentences^2 x terms) the matrices are dense: a small
    # dense product costs a fraction of scipy's sparse bookkeeping, which dominated small
    # clusters.
    dense_max_work = 1 << 18

    def __init__(self, members: Sequence[Member]) -> None:
        self.start: dict[str, int] = {}
        self.vocab: dict[str, int] = {}
        vocab = self.vocab
        # Versions repeat most sentences, and repeated sentences share their vector and stem
        # set objects (``prepare``): the matrices hold each distinct sentence once, and
        # ``index`` maps every sentence (member by member, in order) to its row.
        distinct: dict[tuple[int, int], int] = {}
        index: list[int] = []
        v_cols: list[int] = []
        v_data: list[float] = []
        v_ptr = [0]
        s_cols: list[int] = []
        s_ptr = [0]
        for m in members:
            self.start[m.id] = len(index)
            for vec, stems in zip(m.vectors, m.stemsets, strict=True):
                key = (id(vec), id(stems))
                row = distinct.get(key)
                if row is None:
                    row = distinct[key] = len(distinct)
                    v_cols.extend([vocab.setdefault(k, len(vocab)) for k in vec])
                    v_data.extend(vec.values())
                    v_ptr.append(len(v_cols))
                    s_cols.extend([vocab.setdefault(k, len(vocab)) for k in stems])
                    s_ptr.append(len(s_cols))
                index.append(row)
        self.index = np.array(index, dtype=np.intp)
        shape = (len(distinct), max(len(vocab), 1))
        self._cos: np.ndarray | None = None  # every sentence pair, when that fits
        self._shared: np.ndarray | None = None
        # Keyed by object ids: the members (and so the vectors) outlive this object.
        self._exact: dict[tuple[int, int], float] = {}
        full = len(index) <= self.full_matrix_max_sentences
        if full and shape[0] * shape[0] * shape[1] <= self.dense_max_work:
            vectors = np.zeros(shape)
            vectors[np.repeat(np.arange(shape[0]), np.diff(v_ptr)), v_cols] = v_data
            stems_m = np.zeros(shape)
            stems_m[np.repeat(np.arange(shape[0]), np.diff(s_ptr)), s_cols] = 1.0
            self._cos = self._expand(vectors @ vectors.T)
            self._shared = self._expand(stems_m @ stems_m.T)
            return
        self.vectors = sp.csr_matrix((np.array(v_data), v_cols, v_ptr), shape=shape)
        self.vectors_t = self.vectors.T.tocsr()
        self.stems = sp.csr_matrix((np.ones(len(s_cols)), s_cols, s_ptr), shape=shape)
        self.stems_t = self.stems.T.tocsr()
        if full:
            self._cos = self._expand(np.asarray((self.vectors @ self.vectors_t).toarray()))
            self._shared = self._expand(np.asarray((self.stems @ self.stems_t).toarray()))

    def _expand(self, distinct: np.ndarray) -> np.ndarray:
        """Every sentence x every sentence, from the matrix over distinct sentences."""
        if len(distinct) == len(self.index):  # no sentence repeats: rows are in order
            return distinct
        return distinct[np.ix_(self.index, self.index)]

    def exact(self, a: dict[str, float], b: dict[str, float]) -> float:
        """``cosine(a, b)``, once per pair of vector objects: repeated sentences share their
        vector objects, so the same pairs come back for every copy of a version."""
        key = (id(a), id(b))
        value = self._exact.get(key)
        if value is None:
            value = self._exact[key] = cosine(a, b)
        return value

    def row(self, member_id: str, k: int) -> int:
        return self.start[member_id] + k

    def cosines(self, member: Member) -> np.ndarray:
        """Cosine of each of ``member``'s sentences (rows) with every sentence (columns)."""
        a = self.start[member.id]
        rows = slice(a, a + len(member.sentences))
        if self._cos is not None:
            return self._cos[rows]
        block = (self.vectors[self.index[rows]] @ self.vectors_t).toarray()
        return np.asarray(block)[:, self.index]

    def overlaps(self, rows: Sequence[int]) -> np.ndarray:
        """Shared content stems of the given sentences (rows) with every sentence (columns)."""
        index = np.asarray(rows, dtype=np.intp)
        if self._shared is not None:
            return self._shared[index]
        block = (self.stems[self.index[index]] @ self.stems_t).toarray()
        return np.asarray(block)[:, self.index]
