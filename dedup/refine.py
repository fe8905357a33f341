"""TF-IDF pair scoring: one sparse matrix, cosine only where candidates point.

An article is four L2-normalised TF-IDF blocks (body words, capitalised names, title
words, numbers), each scaled by the square root of its weight and stacked side by side.
The dot product of two rows is then exactly the weighted sum of the four cosines, so pair
scores, cluster centroids and within-cluster similarity all come from one matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from dedup.config import RefineConfig

_PAIR_CHUNK = 200_000


@dataclass(frozen=True, slots=True)
class DocumentTerms:
    """Pre-tokenised views of one article, made by ``normalize``."""

    body: Sequence[str]
    names: Sequence[str]
    title: Sequence[str]
    numbers: Sequence[str]
    years: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Features:
    """The stacked TF-IDF matrix, each article's most salient body terms and its years."""

    matrix: sp.csr_matrix
    salient: list[list[str]]
    years: sp.csr_matrix  # binary article x year incidence
    year_conflict_factor: float = 1.0
    days: np.ndarray | None = None  # publication time in days (NaN: unknown)
    date_window_days: float | None = None

    def _factor(self, left: np.ndarray, right: np.ndarray, shared_years: np.ndarray) -> np.ndarray:
        """Multiplier per pair: year conflicts shrink a score, a time gap zeroes it."""
        has_years = np.diff(self.years.indptr) > 0
        factor = np.where(
            has_years[left] & has_years[right] & (shared_years == 0),
            self.year_conflict_factor,
            1.0,
        )
        if self.days is not None and self.date_window_days is not None:
            gap = np.abs(self.days[left] - self.days[right])
            factor = np.where(gap > self.date_window_days, 0.0, factor)  # NaN gap passes
        return factor


def _identity(tokens: Sequence[str]) -> Sequence[str]:
    return tokens


def _block(docs: Sequence[Sequence[str]], config: RefineConfig, idf_power: float) -> tuple[
    sp.csr_matrix, np.ndarray
]:
    """L2-normalised TF-IDF with IDF raised to ``idf_power``; empty corpora give empty blocks."""
    if not any(docs):
        return sp.csr_matrix((len(docs), 0)), np.empty(0, dtype=object)
    vectorizer = TfidfVectorizer(
        analyzer=_identity,
        sublinear_tf=config.sublinear_tf,
        norm=None,
        min_df=1,
        dtype=np.float64,
    )
    matrix = vectorizer.fit_transform(docs).tocsr()
    if idf_power != 1.0:
        matrix = matrix.multiply(vectorizer.idf_ ** (idf_power - 1.0)).tocsr()
    return normalize(matrix), vectorizer.get_feature_names_out()


def build_features(
    docs: Sequence[DocumentTerms],
    config: RefineConfig,
    days: np.ndarray | None = None,
) -> Features:
    """Fit TF-IDF on this corpus and stack the weighted blocks.

    ``days`` (publication time in days, NaN when unknown) enables the date window.
    """
    body, body_vocab = _block([d.body for d in docs], config, config.idf_power)
    blocks = [
        (config.text_weight, body),
        (config.names_weight, _block([d.names for d in docs], config, config.idf_power)[0]),
        (config.title_weight, _block([d.title for d in docs], config, 1.0)[0]),
        (config.numbers_weight, _block([d.numbers for d in docs], config, 1.0)[0]),
    ]
    matrix = sp.hstack([np.sqrt(w) * m for w, m in blocks if w > 0], format="csr")
    return Features(
        matrix=matrix,
        salient=salient_terms(body, body_vocab, config.salient_terms),
        years=_incidence([d.years for d in docs]),
        year_conflict_factor=config.year_conflict_factor,
        days=days,
        date_window_days=config.date_window_days,
    )


def _incidence(docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
    vocab: dict[str, int] = {}
    cols = [vocab.setdefault(t, len(vocab)) for doc in docs for t in doc]
    indptr = np.concatenate(([0], np.cumsum([len(doc) for doc in docs]))).astype(np.int64)
    data = np.ones(len(cols), dtype=np.float64)
    return sp.csr_matrix((data, np.asarray(cols, dtype=np.int64), indptr),
                         shape=(len(docs), max(len(vocab), 1)))


def salient_terms(matrix: sp.csr_matrix, vocab: np.ndarray, k: int) -> list[list[str]]:
    """The k highest-weighted terms of each row (ties by term), sorted: the events signal."""
    out: list[list[str]] = []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        cols, weights = matrix.indices[start:end], matrix.data[start:end]
        order = np.lexsort((cols, -weights))[:k]
        out.append(sorted(str(vocab[c]) for c in cols[order]))
    return out


def _row_dots(matrix: sp.csr_matrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.asarray(matrix[left].multiply(matrix[right]).sum(axis=1)).ravel()


def pair_scores(features: Features, pairs: np.ndarray) -> np.ndarray:
    """Blended score of each candidate pair, computed in bounded chunks.

    Two articles that both name years but share none report different events more often
    than not (two Qeshm earthquakes, 2005 and 2008), so their score is multiplied by
    ``year_conflict_factor``; articles published further apart than ``date_window_days``
    score 0.
    """
    scores = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), _PAIR_CHUNK):
        left, right = pairs[start : start + _PAIR_CHUNK, 0], pairs[start : start + _PAIR_CHUNK, 1]
        factor = features._factor(left, right, _row_dots(features.years, left, right))
        scores[start : start + len(left)] = _row_dots(features.matrix, left, right) * factor
    return scores


def block_similarity(features: Features, rows: np.ndarray) -> np.ndarray:
    """Dense scores among a few rows (same rule as ``pair_scores``), for average linkage."""
    sub = features.matrix[rows]
    sim = np.asarray((sub @ sub.T).todense())
    years = features.years[rows]
    shared = np.asarray((years @ years.T).todense())
    left, right = np.meshgrid(rows, rows, indexing="ij")
    return sim * features._factor(left.ravel(), right.ravel(), shared.ravel()).reshape(sim.shape)
