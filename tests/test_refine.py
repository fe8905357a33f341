from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from dedup.config import RefineConfig
from dedup.refine import (
    DocumentTerms,
    Salient,
    block_similarity,
    build_features,
    count_terms,
    open_features,
    pair_scores,
    save_features,
    term_counts,
    weigh_features,
)


def _doc(body: str, names: str = "", title: str = "", years: tuple[str, ...] = ()) -> DocumentTerms:
    return DocumentTerms(body=body.split(), names=names.split(), title=title.split(),
                         numbers=[], years=years)


def test_identical_documents_score_one_and_disjoint_zero() -> None:
    docs = [_doc("quake qeshm island", "qeshm iran", "quake"),
            _doc("quake qeshm island", "qeshm iran", "quake"),
            _doc("bakery sourdough prize", "ambleside", "bread")]
    features = build_features(docs, RefineConfig())
    scores = pair_scores(features, np.array([[0, 1], [0, 2]]))
    # No numbers in either: the numbers block (weight 0.1) contributes nothing.
    assert np.allclose(scores, [1.0 - RefineConfig().numbers_weight, 0.0])


def test_year_conflict_scales_scores_by_the_factor() -> None:
    docs = [_doc("quake qeshm island villages", "qeshm", years=("2005",)),
            _doc("quake qeshm island dargahan", "qeshm", years=("2008",)),
            _doc("quake qeshm island villages", "qeshm"),  # no year: no conflict
            _doc("quake qeshm island dargahan", "qeshm", years=("2005", "2008"))]
    pairs = np.array([[0, 1], [0, 2], [0, 3]])
    plain = pair_scores(build_features(docs, RefineConfig(year_conflict_factor=1.0)), pairs)
    features = build_features(docs, RefineConfig(year_conflict_factor=0.5))
    penalised = pair_scores(features, pairs)
    assert np.allclose(penalised, plain * np.array([0.5, 1.0, 1.0]))
    dense = block_similarity(features, np.arange(4))
    assert np.allclose(dense[pairs[:, 0], pairs[:, 1]], penalised)
    assert np.allclose(dense, dense.T)


def test_salient_terms_prefer_rare_words() -> None:
    docs = [_doc("attack attack crocus"), _doc("attack moscow"), _doc("attack paris")]
    features = build_features(docs, RefineConfig(salient_terms=1))
    slot = {w: str(term_counts([[w]]).indices[0]) for w in ("crocus", "moscow", "paris")}
    assert features.salient.terms() == [[slot["crocus"]], [slot["moscow"]], [slot["paris"]]]


def test_shards_with_summed_frequencies_give_identical_rows() -> None:
    docs = [_doc("quake qeshm island villages", "qeshm", "quake", ("2005",)),
            _doc("quake qeshm island dargahan", "qeshm iran", "quake hits"),
            _doc("bakery sourdough prize rye", "ambleside", "bread"),
            _doc("quake iran rescue", "iran", "rescue", ("2005",))]
    config = RefineConfig()
    whole = build_features(docs, config).matrix
    shards = [count_terms(docs[:1]), count_terms(docs[1:])]
    totals = {k: shards[0].frequencies()[k] + shards[1].frequencies()[k]
              for k in shards[0].frequencies()}
    parts = [weigh_features(c, totals, len(docs), config).matrix for c in shards]
    for row in range(len(docs)):
        got = parts[0] if row < 1 else parts[1]
        local = row if row < 1 else row - 1
        assert np.array_equal(got[local].toarray(), whole[row].toarray())


def test_empty_corpus_blocks_are_harmless() -> None:
    features = build_features([_doc(""), _doc("")], RefineConfig())
    assert pair_scores(features, np.array([[0, 1]])).tolist() == [0.0]


def test_block_gram_equals_scipys_product_bit_for_bit() -> None:
    # The clustering stage's numpy Gram must give scipy's values exactly (not just close):
    # cluster ids and closeness must not change with the implementation.
    import scipy.sparse as sp

    from dedup.refine import _exact_gram, _gram

    rng = np.random.default_rng(7)
    matrix = sp.random(300, 2000, density=0.03, format="csr", random_state=3)
    matrix.data = rng.random(matrix.nnz) / 7.0
    matrix = sp.vstack([matrix, sp.csr_matrix((1, 2000))], format="csr")  # an empty row
    for size in (1, 2, 3, 8, 40):
        for _ in range(20):
            rows = np.sort(rng.choice(301, size, replace=False))
            assert np.array_equal(_exact_gram(matrix, rows), _gram(matrix[rows]))
    only_empty = np.array([300])
    assert np.array_equal(_exact_gram(matrix, only_empty), _gram(matrix[only_empty]))


def test_saved_features_map_back_to_the_same_scores(tmp_path: Path) -> None:
    docs = [_doc("quake qeshm island villages", "qeshm", "quake", years=("2005",)),
            _doc("quake qeshm island dargahan", "qeshm", years=("2008",)),
            _doc("bakery sourdough prize", "ambleside", "bread")]
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    for days in (None, np.array([10.0, 11.0, np.nan])):
        features = replace(build_features(docs, RefineConfig(year_conflict_factor=0.5), days),
                           salient=Salient.empty())
        folder = tmp_path / ("dated" if days is not None else "undated")
        folder.mkdir()
        save_features(features, folder)
        opened = open_features(folder)
        assert (opened.days is None) == (days is None)
        np.testing.assert_array_equal(pair_scores(opened, pairs), pair_scores(features, pairs))
        np.testing.assert_array_equal(block_similarity(opened, np.arange(3)),
                                      block_similarity(features, np.arange(3)))
