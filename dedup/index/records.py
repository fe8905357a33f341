"""The index's public records and errors, its file format name, and its clock helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["FORMAT", "FORMAT_VERSION", "Added", "ClusterInfo", "Placement", "Progress",
           "RetiredCluster", "RetiredClusterError", "StoryIndexError", "epoch", "from_epoch",
           "utc_naive"]

FORMAT = "dedup.StoryIndex"
# 2: no ``terms`` table; DF is counted from the stored term ids at load (issue #6: writing
# DF rows was a third of an add's disk writes). Version 1 files are upgraded when opened.
FORMAT_VERSION = 2
Progress = Callable[[str, int, int], None]

class StoryIndexError(Exception):
    """The file is not a usable story index (not one, another format version, other
    signature settings, locked, closed); the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where ``add`` put one article, as committed (after the re-linkage).

    ``is_new_cluster`` says the cluster id was first handed out by this ``add``;
    ``similarity`` is the article's average similarity to the cluster's other members
    (the ``max_link_members`` most recent; 1.0 when alone); ``matched`` are those it scored
    at least ``ClusterConfig.edge_threshold`` with, best first. ``merged`` are the cluster
    ids this ``add`` retired into ``cluster_id`` (see ``StoryIndex.retired``); an id
    retired into a cluster no new article joined is on no placement: ``Added.retired``
    lists them all.
    """

    id: str
    cluster_id: str
    is_new_cluster: bool
    similarity: float
    matched: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One cluster's bookkeeping: size and when it was created and last changed (UTC)."""

    cluster_id: str
    size: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RetiredCluster:
    """A cluster id no live story holds any more (it is never handed out again).

    ``reason`` is ``"merged"`` (the re-linkage joined its members to ``merged_into``'s
    story), ``"expired"`` (``expire`` removed its last member) or ``"removed"`` (``remove``
    did; for both ``merged_into`` is None).
    ``live`` follows ``merged_into`` through later merges to the id holding the story
    now (None when that story expired).
    """

    cluster_id: str
    merged_into: str | None
    live: str | None
    retired_at: datetime
    reason: str


class Added(list[Placement]):
    """What ``add`` returns: one ``Placement`` per article, in input order (a plain list to
    callers that index or iterate it), and ``retired``: every cluster id the add retired,
    sorted by id, as ``StoryIndex.retired`` lists them. Why: the re-linkage may merge
    stories no new article joined (the refresh, or a new article left in a group of its
    own), so the placements alone miss ids a poller must drop."""

    __slots__ = ("retired",)

    def __init__(self, placements: Iterable[Placement] = (),
                 retired: Iterable[RetiredCluster] = ()) -> None:
        super().__init__(placements)
        self.retired: tuple[RetiredCluster, ...] = tuple(retired)

    def __repr__(self) -> str:
        return f"Added({list.__repr__(self)}, retired={self.retired!r})"

    def __reduce__(self) -> tuple[type[Added], tuple[list[Placement], tuple[RetiredCluster, ...]]]:
        return (Added, (list(self), self.retired))


class RetiredClusterError(KeyError):
    """``story(cluster_id)`` for a retired id; ``live`` names the story that continues it."""

    def __init__(self, message: str, cluster_id: str, live: str | None) -> None:
        super().__init__(message)
        self.cluster_id = cluster_id
        self.live = live

    def __str__(self) -> str:
        return str(self.args[0])



def utc_naive(value: datetime) -> datetime:
    """Naive UTC: aware datetimes are converted, naive ones are taken as UTC already."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def epoch(value: datetime) -> float:
    """Seconds since the epoch of a datetime (naive: UTC)."""
    return utc_naive(value).replace(tzinfo=UTC).timestamp()


def from_epoch(value: float) -> datetime:
    """Naive UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
