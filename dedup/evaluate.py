"""Clustering quality metrics: pairwise P/R/F1, B-cubed F1 and the adjusted Rand index.

All metrics count pairs through contingency tables, so they run in O(n) memory even for
a million articles (never materialising the n^2 pairs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scores:
    """Quality of a predicted clustering against gold labels."""

    precision: float
    recall: float
    f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    ari: float

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> Scores:
    """Compare two labelings of the same items (position i is item i in both).

    >>> s = score(["a", "a", "b"], [1, 1, 2])
    >>> (s.precision, s.recall, s.ari)
    (1.0, 1.0, 1.0)
    """
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} labels but predicted has {len(predicted)}")
    n = len(gold)
    joint = Counter(zip(gold, predicted, strict=True))
    gold_sizes = Counter(gold)
    pred_sizes = Counter(predicted)

    together_both = sum(_pairs(c) for c in joint.values())
    together_gold = sum(_pairs(c) for c in gold_sizes.values())
    together_pred = sum(_pairs(c) for c in pred_sizes.values())
    precision = together_both / together_pred if together_pred else 1.0
    recall = together_both / together_gold if together_gold else 1.0

    # B-cubed: per item, share of its predicted cluster that shares its gold label (and back).
    bp = sum(c * c / pred_sizes[p] for (_, p), c in joint.items()) / n if n else 1.0
    br = sum(c * c / gold_sizes[g] for (g, _), c in joint.items()) / n if n else 1.0

    total = _pairs(n)
    expected = together_gold * together_pred / total if total else 0.0
    max_index = (together_gold + together_pred) / 2
    ari = 1.0 if max_index == expected else (together_both - expected) / (max_index - expected)
    return Scores(precision, recall, _f1(precision, recall), bp, br, _f1(bp, br), ari)
