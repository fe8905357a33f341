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


@dataclass(frozen=True, slots=True)
class Features:
    """The stacked TF-IDF matrix and each article's most salient body terms."""

    matrix: sp.csr_matrix
    salient: list[list[str]]


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


def build_features(docs: Sequence[DocumentTerms], config: RefineConfig) -> Features:
    """Fit TF-IDF on this corpus and stack the weighted blocks."""
    body, body_vocab = _block([d.body for d in docs], config, config.idf_power)
    blocks = [
        (config.text_weight, body),
        (config.names_weight, _block([d.names for d in docs], config, config.idf_power)[0]),
        (config.title_weight, _block([d.title for d in docs], config, 1.0)[0]),
        (config.numbers_weight, _block([d.numbers for d in docs], config, 1.0)[0]),
    ]
    matrix = sp.hstack([np.sqrt(w) * m for w, m in blocks if w > 0], format="csr")
    return Features(matrix=matrix, salient=salient_terms(body, body_vocab, config.salient_terms))


def salient_terms(matrix: sp.csr_matrix, vocab: np.ndarray, k: int) -> list[list[str]]:
    """The k highest-weighted terms of each row (ties by term), sorted: the events signal."""
    out: list[list[str]] = []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        cols, weights = matrix.indices[start:end], matrix.data[start:end]
        order = np.lexsort((cols, -weights))[:k]
        out.append(sorted(str(vocab[c]) for c in cols[order]))
    return out


def pair_scores(matrix: sp.csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """Cosine-like blended score of each candidate pair, computed in bounded chunks."""
    scores = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start : start + _PAIR_CHUNK]
        left, right = matrix[chunk[:, 0]], matrix[chunk[:, 1]]
        scores[start : start + len(chunk)] = np.asarray(left.multiply(right).sum(axis=1)).ravel()
    return scores


def block_similarity(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Dense similarity among a few rows: what a component needs for average linkage."""
    sub = matrix[rows]
    return np.asarray((sub @ sub.T).todense())
