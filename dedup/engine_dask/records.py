"""The small typed records Dask tasks hand each other, one per kind of message.

A task's result is one of these (or a list of them, one per shuffle bucket), never a
positional list: ``Run.pick(future, "pairs", b)`` names what the next task takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from dedup import excerpts, refine
from dedup.records import Cluster, Rejected, Story

__all__ = [
    "Assigned",
    "BandBuckets",
    "BandRows",
    "Directed",
    "Duplicate",
    "Edges",
    "Finished",
    "Graph",
    "GroupRows",
    "IdEntry",
    "Jumped",
    "LeftRows",
    "Linked",
    "Messages",
    "PairCounts",
    "Partition",
    "Piece",
    "Read",
    "Received",
    "Rows",
    "Union",
    "Weighed",
]


@dataclass(frozen=True, slots=True)
class Piece:
    """One lazily read input partition: a file, or rows [offset, offset + length) of one."""

    path: str
    fmt: str
    offset: int = 0
    length: int | None = None


@dataclass(slots=True)
class Read:
    """A partition as read by a worker: rows, each row's input line, rejected rows, and
    what the read changed without rejecting a row (``io.Notes`` counts)."""

    frame: pl.DataFrame
    lines: list[int | None]
    rejected: list[Rejected]
    error: str | None = None
    notes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IdEntry:
    """Where an article id was read: partition, row in it, input line."""

    id: str
    part: int
    row: int
    line: int | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An id read again (``repeat``) after its first occurrence (``first``)."""

    repeat: IdEntry
    first: IdEntry


@dataclass(slots=True)
class Partition:
    """A partition after normalization: term counts, copies signatures, dates."""

    counts: refine.Counts
    copy_sigs: np.ndarray
    has_copies: np.ndarray
    days: np.ndarray
    openings: excerpts.Openings


@dataclass(slots=True)
class Weighed:
    """A partition's TF-IDF rows, and each signal's signatures and which rows have one."""

    features: refine.Features
    signatures: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    openings: excerpts.Openings


@dataclass(slots=True)
class Rows:
    """Feature rows shipped to where they are needed, with their global indices."""

    gidx: np.ndarray
    matrix: sp.csr_matrix
    years: sp.csr_matrix
    days: np.ndarray
    keys: np.ndarray  # excerpts' opening keys and lengths (``excerpts.Openings``)
    short: np.ndarray

    def subset(self, idx: np.ndarray) -> Rows:
        return Rows(self.gidx[idx], self.matrix[idx], self.years[idx], self.days[idx],
                    self.keys[idx], self.short[idx])


@dataclass(frozen=True, slots=True)
class Edges:
    """Directed scored edges (``src`` -> ``dst``)."""

    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray


@dataclass(frozen=True, slots=True)
class BandRows:
    """LSH band entries: (band, key...) rows, their global document, split columns."""

    keys: np.ndarray
    docs: np.ndarray
    extra: np.ndarray | None


@dataclass(frozen=True, slots=True)
class PairCounts:
    """Pair codes (``low * n + high``) and how many bands each pair shares."""

    codes: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, slots=True)
class BandBuckets:
    """What one bucket of bands found: pairs by pair bucket, the crowded buckets it
    skipped, and the chains' codes (``candidates.chain_pairs``) by pair bucket."""

    pairs: list[PairCounts]
    oversized: int
    chains: list[np.ndarray]


@dataclass(frozen=True, slots=True)
class Directed:
    """Both directions of candidate pairs with their strength, for the per-document cap."""

    src: np.ndarray
    dst: np.ndarray
    strength: np.ndarray
    codes: np.ndarray


@dataclass(frozen=True, slots=True)
class Union:
    """A pair bucket's candidate codes and its copies and events pair counts."""

    codes: np.ndarray
    copy_pairs: int
    event_pairs: int

    def sizes(self) -> tuple[int, int, int]:
        """(candidate pairs, copies pairs, events pairs): what the run's stats count."""
        return len(self.codes), self.copy_pairs, self.event_pairs


@dataclass(frozen=True, slots=True)
class LeftRows:
    """Pairs sent to their right document's partition, with each left row once."""

    codes: np.ndarray
    rows: Rows


@dataclass(frozen=True, slots=True)
class Graph:
    """Directed accepted edges grouped by source bucket, and the source nodes' labels."""

    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray
    nodes: np.ndarray  # sorted unique sources
    labels: np.ndarray  # current minimum node id known in each node's component

    def label_of(self, node: np.ndarray) -> np.ndarray:
        return self.labels[np.searchsorted(self.nodes, node)]


@dataclass(frozen=True, slots=True)
class Messages:
    """A label for each node (a neighbour's smallest label, or an answer to a request)."""

    node: np.ndarray
    label: np.ndarray

    @staticmethod
    def joined(parts: Sequence[Messages]) -> tuple[np.ndarray, np.ndarray]:
        """Nodes and labels of several messages, one after the other."""
        return (np.concatenate([m.node for m in parts]),
                np.concatenate([m.label for m in parts]))


@dataclass(frozen=True, slots=True)
class Received:
    """After taking the labels heard: requests by bucket, the new graph, labels changed."""

    requests: list[Messages]
    graph: Graph
    changed: int


@dataclass(frozen=True, slots=True)
class Jumped:
    """After pointer jumping: the new graph and how many labels changed."""

    graph: Graph
    changed: int


@dataclass(frozen=True, slots=True)
class GroupRows:
    """Rows of components sent to where they are linked: label, features, articles and
    each row's copy-group representative."""

    label: np.ndarray
    rows: Rows
    frame: pl.DataFrame
    rep: np.ndarray


@dataclass(frozen=True, slots=True)
class Assigned:
    """Cluster, canonical flag and closeness of linked rows, for their partition."""

    gidx: np.ndarray
    cluster_ids: np.ndarray
    canonical: np.ndarray
    closeness: np.ndarray


@dataclass(frozen=True, slots=True)
class Linked:
    """What one linkage bucket produced: assignments by partition, clusters, stories."""

    assigned: list[Assigned]
    clusters: list[Cluster]
    stories: list[Story]


@dataclass(frozen=True, slots=True)
class Finished:
    """A partition's assignments, and the clusters and stories of its lone articles."""

    frame: pl.DataFrame
    clusters: list[Cluster]
    stories: list[Story]
