"""The last stage of every driver: clusters become output records.

The rules that decide what a reader sees, in one place for the batch pipeline and the Dask
engine: the output table's columns (``assignments_frame``), which member is canonical
when no story chooses it (``most_central``), and the run's result (``ClusterResult``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from dedup.records import Cluster, Rejected, Story

__all__ = ["ClusterResult", "assignments_frame", "date_key", "most_central"]


@dataclass
class ClusterResult:
    """Everything a batch run produced; ``assignments`` has one row per input article."""

    assignments: pl.DataFrame
    clusters: list[Cluster]
    stories: list[Story] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    candidate_pairs: int = 0
    # Candidate pairs as (k, 2) row indices into ``assignments``, for diagnostics.
    pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    stats: dict[str, Any] = field(default_factory=dict)


def assignments_frame(
    frame: pl.DataFrame, cluster_of: np.ndarray, canonical: np.ndarray, closeness: np.ndarray,
    copy_group: Sequence[str | None],
) -> pl.DataFrame:
    """The output table: one row per article in input order, input columns passed through;
    ``copy_group``: each article's ``copies.group_labels`` label (#21)."""
    return pl.DataFrame(
        {
            "id": frame["id"],
            "cluster_id": pl.Series(cluster_of.tolist(), dtype=pl.String),
            "is_canonical": canonical,
            "similarity": closeness,
            "copy_group": pl.Series(list(copy_group), dtype=pl.String),
        }
    ).hstack(frame.drop("id", "text"))


def date_key(value: object) -> tuple[int, str]:
    """Sort key of a publication time: earliest first, undated last."""
    return (0, value.isoformat()) if isinstance(value, datetime) else (1, "")


def most_central(closeness: Sequence[float] | np.ndarray, published: Sequence[object],
                 ids: Sequence[str]) -> int:
    """Position of a cluster's canonical member without a story: the most cohesive, ties
    by earliest date (undated last), then id. The arguments are the members' values."""
    return min(range(len(ids)),
               key=lambda k: (-float(closeness[k]), date_key(published[k]), ids[k]))
