"""dedup.evaluate.score: hand-computed cases, and ARI against scikit-learn."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from dedup.evaluate import Scores, score


def test_perfect_clustering_scores_one_everywhere() -> None:
    s = score(["a", "a", "b", "c", "c", "c"], [7, 7, 1, 2, 2, 2])
    assert s == Scores(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_hand_computed_split_cluster() -> None:
    # gold: {0,1,2,3}, {4}          predicted: {0,1}, {2,3}, {4}
    # gold pairs: C(4,2) = 6; predicted pairs: 1 + 1 = 2; both agree on those 2.
    #   precision = 2/2 = 1, recall = 2/6 = 1/3, F1 = 2*(1*1/3)/(1+1/3) = 0.5
    # B-cubed precision: every predicted cluster is pure -> 1.
    # B-cubed recall: items 0-3 each see 2 of their 4 gold mates -> 1/2; item 4 -> 1.
    #   (4 * 1/2 + 1) / 5 = 3/5; B-cubed F1 = 2 * 1 * 0.6 / 1.6 = 0.75
    # ARI: n = 5, total pairs 10; index = 2, expected = 6 * 2 / 10 = 1.2,
    #   max = (6 + 2) / 2 = 4 -> (2 - 1.2) / (4 - 1.2) = 0.8 / 2.8 = 2/7
    s = score([0, 0, 0, 0, 1], ["x", "x", "y", "y", "z"])
    assert s.precision == pytest.approx(1.0)
    assert s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(0.5)
    assert s.bcubed_precision == pytest.approx(1.0)
    assert s.bcubed_recall == pytest.approx(0.6)
    assert s.bcubed_f1 == pytest.approx(0.75)
    assert s.ari == pytest.approx(2 / 7)


def test_hand_computed_merged_clusters() -> None:
    # gold: {0,1}, {2,3}, {4}       predicted: {0,1,2,3}, {4}  (two events chained together)
    # predicted pairs: 6, gold pairs: 2, shared: 2 -> precision 1/3, recall 1, F1 0.5
    # B-cubed precision: items 0-3 each share their predicted cluster of 4 with 2 gold mates
    #   -> 1/2; item 4 -> 1; (4 * 0.5 + 1) / 5 = 0.6.  B-cubed recall = 1.  F1 = 0.75
    # ARI is symmetric in its arguments, so it equals the previous case: 2/7.
    s = score([0, 0, 1, 1, 2], [5, 5, 5, 5, 6])
    assert (s.precision, s.recall) == (pytest.approx(1 / 3), pytest.approx(1.0))
    assert s.f1 == pytest.approx(0.5)
    assert s.bcubed_precision == pytest.approx(0.6)
    assert s.bcubed_recall == pytest.approx(1.0)
    assert s.bcubed_f1 == pytest.approx(0.75)
    assert s.ari == pytest.approx(2 / 7)


def test_hand_computed_crossed_labels() -> None:
    # gold: {0,1,2}, {3,4,5}        predicted: {0,1,3}, {2,4,5}
    # gold pairs 3 + 3 = 6, predicted pairs 3 + 3 = 6.
    # joint cells: (g0,p0)=2 items {0,1}, (g0,p1)=1 {2}, (g1,p0)=1 {3}, (g1,p1)=2 {4,5}
    #   pairs together in both = C(2,2) + C(2,2) = 2 -> precision = recall = F1 = 1/3
    # B-cubed precision: items 0,1: 2/3; item 3: 1/3; item 2: 1/3; items 4,5: 2/3
    #   -> (4 * 2/3 + 2 * 1/3) / 6 = (10/3) / 6 = 5/9; recall is the same by symmetry.
    # ARI: total pairs C(6,2) = 15; expected = 6 * 6 / 15 = 2.4; max = 6
    #   -> (2 - 2.4) / (6 - 2.4) = -0.4 / 3.6 = -1/9 (worse than chance)
    s = score(["g0", "g0", "g0", "g1", "g1", "g1"], ["p0", "p0", "p1", "p0", "p1", "p1"])
    assert s.precision == pytest.approx(1 / 3)
    assert s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(1 / 3)
    assert s.bcubed_precision == pytest.approx(5 / 9)
    assert s.bcubed_recall == pytest.approx(5 / 9)
    assert s.bcubed_f1 == pytest.approx(5 / 9)
    assert s.ari == pytest.approx(-1 / 9)


def test_all_singletons_against_all_singletons() -> None:
    # No pair is together anywhere: precision and recall are vacuously 1, ARI defined as 1.
    s = score([1, 2, 3], ["a", "b", "c"])
    assert (s.precision, s.recall, s.ari) == (1.0, 1.0, 1.0)
    assert s.bcubed_f1 == 1.0


def test_everything_in_one_cluster_when_gold_is_singletons() -> None:
    # gold: 4 singletons; predicted: one cluster of 4 -> 6 predicted pairs, none right.
    # precision 0, recall vacuously 1, F1 0; B-cubed precision 1/4 per item -> 0.25.
    s = score([1, 2, 3, 4], [0, 0, 0, 0])
    assert s.precision == 0.0
    assert s.recall == 1.0
    assert s.f1 == 0.0
    assert s.bcubed_precision == pytest.approx(0.25)
    assert s.bcubed_recall == 1.0
    assert s.ari == pytest.approx(adjusted_rand_score([1, 2, 3, 4], [0, 0, 0, 0]))


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="gold has 2 labels but predicted has 3"):
        score([1, 1], [1, 1, 1])


def test_as_dict_names_every_field() -> None:
    d = score([1, 1, 2], [1, 1, 2]).as_dict()
    assert set(d) == {
        "precision", "recall", "f1", "bcubed_precision", "bcubed_recall", "bcubed_f1", "ari",
    }  # fmt: skip


labelings = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 8), min_size=n, max_size=n),
        st.lists(st.integers(0, 8), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_ari_matches_sklearn(pair: tuple[list[int], list[int]]) -> None:
    gold, predicted = pair
    assert score(gold, predicted).ari == pytest.approx(
        adjusted_rand_score(gold, predicted), abs=1e-9
    )


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_metrics_are_bounded_and_label_names_do_not_matter(
    pair: tuple[list[int], list[int]],
) -> None:
    gold, predicted = pair
    s = score(gold, predicted)
    for name in ("precision", "recall", "f1", "bcubed_precision", "bcubed_recall", "bcubed_f1"):
        value = getattr(s, name)
        assert 0.0 <= value <= 1.0 + 1e-12, name
    assert -1.0 - 1e-12 <= s.ari <= 1.0 + 1e-12
    renamed = score([f"g{x}" for x in gold], [("p", x * 7) for x in predicted])
    for a, b in zip(s.as_dict().values(), renamed.as_dict().values(), strict=True):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(labelings)
def test_pairwise_precision_recall_match_brute_force(pair: tuple[list[int], list[int]]) -> None:
    gold, predicted = pair
    n = len(gold)
    both = sum(
        1 for i in range(n) for j in range(i + 1, n)
        if gold[i] == gold[j] and predicted[i] == predicted[j]
    )  # fmt: skip
    in_gold = sum(1 for i in range(n) for j in range(i + 1, n) if gold[i] == gold[j])
    in_pred = sum(1 for i in range(n) for j in range(i + 1, n) if predicted[i] == predicted[j])
    s = score(gold, predicted)
    assert s.precision == pytest.approx(both / in_pred if in_pred else 1.0)
    assert s.recall == pytest.approx(both / in_gold if in_gold else 1.0)
