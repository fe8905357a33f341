"""Scoring candidate pairs where their right document lives: ``refine.pair_scores`` on the
pair's two feature rows, whichever partitions hold them, in waves that bound memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from dedup import refine
from dedup.engine_dask.records import Edges, LeftRows, Rows, Union, Weighed
from dedup.engine_dask.routing import owner, route, split

__all__ = ["by_left", "features_of", "left_rows", "score", "ship", "sorted_codes",
           "stack", "template_features", "waves"]


def by_left(found: Union, n: int, offsets: np.ndarray) -> list[np.ndarray]:
    """A pair bucket's codes by the partition of their left document."""
    codes = found.codes
    return [s[0] for s in split(owner(codes // n, offsets), len(offsets) - 1, codes)]


def ship(weighed: Weighed, local: np.ndarray, offset: int) -> Rows:
    """Rows ``local`` of a partition's features, to send elsewhere."""
    f = weighed.features
    days = f.days[local] if f.days is not None else np.full(len(local), np.nan)
    return Rows(local + offset, f.matrix[local], f.years[local], days,
                weighed.openings.keys[local], weighed.openings.short[local])


def sorted_codes(*slices: np.ndarray) -> np.ndarray:
    return np.sort(np.concatenate(slices or (np.empty(0, np.int64),)))


def waves(partitions: int, pairs: int, workers: int,
          pairs_per_worker: int) -> list[tuple[int, int]]:
    """Destination partitions scored together, so that the left rows in flight stay near
    ``pairs_per_worker`` per worker however large the corpus."""
    count = max(1, min(partitions, -(-pairs // (workers * pairs_per_worker))))
    width = -(-partitions // count)
    return [(lo, min(lo + width, partitions)) for lo in range(0, partitions, width)]


def left_rows(weighed: Weighed, offset: int, n: int, offsets: np.ndarray, lo: int, hi: int,
              codes: np.ndarray) -> list[LeftRows]:
    """The pairs whose left document is here and right document in partitions [lo, hi),
    sent to their right's partition with each needed left row once: a row per pair would
    repeat a document's features once per partner and exhaust a worker at a million
    articles."""
    dest = owner(codes % n, offsets)
    wanted = (dest >= lo) & (dest < hi)
    out = []
    for (sent,) in split(dest[wanted] - lo, hi - lo, codes[wanted]):
        out.append(LeftRows(sent, ship(weighed, np.unique(sent // n) - offset, offset)))
    return out


def stack(parts: Sequence[Rows], width: tuple[int, int]) -> Rows:
    """Rows of several parts, one after the other."""
    if not parts:
        return Rows(np.empty(0, np.int64), sp.csr_matrix((0, width[0])),
                    sp.csr_matrix((0, width[1])), np.empty(0), np.empty(0, np.uint64),
                    np.empty(0, bool))
    return Rows(np.concatenate([p.gidx for p in parts]),
                sp.vstack([p.matrix for p in parts], format="csr"),
                sp.vstack([p.years for p in parts], format="csr"),
                np.concatenate([p.days for p in parts]),
                np.concatenate([p.keys for p in parts]),
                np.concatenate([p.short for p in parts]))


def score(weighed: Weighed, offset: int, n: int, threshold: float, buckets: int,
          *payloads: LeftRows) -> list[Edges]:
    """``refine.pair_scores`` of the pairs whose right document is here; accepted edges
    (score >= threshold) both ways, by component bucket."""
    f = weighed.features
    width = (f.matrix.shape[1], f.years.shape[1])
    codes = np.concatenate([p.codes for p in payloads] or [np.empty(0, np.int64)])
    left = stack([p.rows for p in payloads], width)
    here = ship(weighed, np.arange(f.matrix.shape[0]), offset)
    # Payloads come in partition order, each with its rows ascending: gidx is sorted.
    at = np.searchsorted(left.gidx, codes // n)
    pairs = np.stack([at, len(left.gidx) + codes % n - offset], axis=1)
    scores = refine.pair_scores(features_of(f, stack([left, here], width)), pairs)
    keep = scores >= threshold
    low, high, s = codes[keep] // n, codes[keep] % n, scores[keep]
    src, dst = np.concatenate((low, high)), np.concatenate((high, low))
    return [Edges(*e) for e in split(route(src, buckets), buckets, src, dst,
                                     np.concatenate((s, s)))]


def template_features(weighed: Weighed) -> refine.Features:
    """A row-less copy of the features: carries the scoring rules (year factor, window)."""
    return features_of(weighed.features, ship(weighed, np.empty(0, np.int64), 0))


def features_of(template: refine.Features, rows: Rows) -> refine.Features:
    """``template``'s scoring rules over other rows (same bytes as in the local engine's
    matrix), with every per-row field taken from ``rows``."""
    per_row = {"matrix": rows.matrix, "years": rows.years,
               "days": rows.days if template.days is not None else None}
    names = {f.name for f in dataclasses.fields(template)}
    if "has_years" in names:
        per_row["has_years"] = np.diff(rows.years.indptr) > 0
    if "salient" in names:
        per_row["salient"] = refine.Salient.empty()
    return dataclasses.replace(template, **per_row)
