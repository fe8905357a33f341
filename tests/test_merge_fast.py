"""The merger's shortcuts give the stories the plain computations give, bit for bit."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings

from dedup.config import Config
from dedup.merge import (
    _cosine,
    _doc_cosines,
    _mentions,
    _prepare,
    _prepare_all,
    _Similarity,
    _slots,
    merge,
    story_to_dict,
)
from dedup.records import Article
from tests.test_merge import clusters

merge_module = importlib.import_module("dedup.merge")  # the package exports merge() by that name


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_document_cosines_equal_dict_cosines_bit_for_bit(articles: list[Article]) -> None:
    cfg = Config().merge
    members = [_prepare(a, cfg) for a in sorted(articles, key=lambda a: a.id)]
    got = _doc_cosines(members, _Similarity(members).vocab)
    assert got is not None
    want = [[float(_cosine(a.doc, b.doc)) for b in members] for a in members]
    assert got == want


def test_document_cosines_follow_the_shorter_dicts_order() -> None:
    # Three shared terms whose products round differently when summed in another order.
    a = Article("a", "alpha beta gamma delta. alpha alpha beta.")
    b = Article("b", "gamma delta beta alpha epsilon zeta. gamma gamma gamma delta beta.")
    members = _prepare_all([a, b], Config().merge)
    got = _doc_cosines(members, _Similarity(members).vocab)
    assert got is not None
    assert got[0][1] == _cosine(members[0].doc, members[1].doc)
    assert got[1][0] == _cosine(members[1].doc, members[0].doc)


@settings(max_examples=40, deadline=None)
@given(clusters())
def test_sparse_and_block_similarity_give_the_dense_story(
    articles: list[Article],
) -> None:
    want = story_to_dict(merge(articles))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_module, "_DENSE_MAX_WORK", 0)  # sparse products
        assert story_to_dict(merge(articles)) == want
        mp.setattr(merge_module, "_FULL_MATRIX_MAX_SENTENCES", 0)  # one block per member
        assert story_to_dict(merge(articles)) == want


def test_prepare_all_shares_repeated_sentences() -> None:
    text = "The bridge closed on Monday.\nOfficials said 12 people were hurt."
    members = _prepare_all(
        [Article("a", text), Article("b", text + "\nIt reopens soon."), Article("c", text)],
        Config().merge,
    )
    assert members[0].vectors[0] is members[1].vectors[0]  # shared, not recomputed
    assert members[2].vectors is members[0].vectors  # an exact copy
    sims = _Similarity(members)
    assert sims.index.tolist() == [0, 1, 0, 1, 2, 0, 1]


def test_memoised_role_scores_change_no_slot() -> None:
    sentences = [
        "Smith said 143 people were killed in Lima on Monday.",
        "Smyth said 144 people were killed in Lima on Monday.",
        "Smith said 143 people died in Lima on Tuesday.",
    ]
    groups = [_mentions(s, f"m{k}", frozenset()) for k, s in enumerate(sentences)]
    for kind in ("number", "date", "name"):
        kind_groups = [[x for x in g if x.kind == kind] for g in groups]
        plain = _slots(kind_groups, aligned=True)
        memo: dict[tuple[int, int], float | None] = {}
        _slots(kind_groups, aligned=True, scores=memo)
        again = _slots(kind_groups, aligned=True, scores=memo)  # every score from the memo
        assert [[id(x) for x in s] for s in again] == [[id(x) for x in s] for s in plain]
