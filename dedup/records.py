"""Records passed between stages: one slotted dataclass per concept, the cluster-id rule,
and the stories' JSON shape (serialization lives beside the records it writes)."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

DifferenceKind = Literal["number", "date", "name", "sentence"]
_R = TypeVar("_R")


def cluster_id(member_ids: Iterable[str]) -> str:
    """Stable cluster id from member ids alone: 'c' + the first 12 hex digits of the SHA-1 of
    the sorted ids joined by newlines.

    Why here: the clustering stage names clusters and the merger names stories with it, so
    a story and its cluster share an id whichever driver ran them.

    Example:
        >>> cluster_id(["b", "a"]) == cluster_id(["a", "b"])
        True
    """
    joined = "\n".join(sorted(member_ids))
    return "c" + hashlib.sha1(joined.encode("utf-8")).hexdigest()[:12]


def _pickled_as_fields(cls: type[_R]) -> type[_R]:
    """Pickle as (class, field values), rebuilt by calling the class.

    Why: stories and articles cross process boundaries by the hundred thousand (merge
    workers, Dask). A slotted dataclass's default pickling calls ``fields()`` for every
    object it dumps and sets fields one by one when it loads: on ecbplus-dev's stories
    that took 39 ms to dump and 63 ms to load, this 19 and 44 ms.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    assert len(names) > 1, "attrgetter of one name returns the value, not a tuple"
    values = operator.attrgetter(*names)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Article:
    """One input document; ``extra`` carries input columns we pass through untouched."""

    id: str
    text: str
    title: str = ""
    published: datetime | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Rejected:
    """An input row that could not become an Article, and why (so nothing vanishes)."""

    file: str
    line: int | None
    id: str | None
    reason: str


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one article landed: its cluster, whether it is the canonical base, how close it is."""

    id: str
    cluster_id: str
    is_canonical: bool
    similarity: float


@dataclass(frozen=True, slots=True)
class ClusterMembers:
    """What a cluster and its story both are: a cluster id and its members' ids, sorted."""

    cluster_id: str
    members: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.members)


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Cluster(ClusterMembers):
    """A group of articles about one event; ``canonical`` is the base."""

    canonical: str

    def to_dict(self) -> dict[str, object]:
        """The clusters.jsonl record."""
        return {"cluster_id": self.cluster_id, "members": list(self.members), "size": self.size}


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class StorySentence:
    """One sentence of a canonical story and the members that carry it."""

    text: str
    sources: tuple[str, ...]


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Difference:
    """A point where versions disagree: ``variants`` maps each value to the members saying it."""

    kind: DifferenceKind
    context: str
    variants: dict[str, tuple[str, ...]]


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class Story(ClusterMembers):
    """The canonical merged story of one cluster; ``base`` is its canonical member."""

    base: str
    title: str
    text: str
    sentences: tuple[StorySentence, ...]
    differences: tuple[Difference, ...]
    # Distinct versions that other members copy verbatim -> those copies' ids (#18): the
    # sentences and differences cite each distinct version once; a version's copy count
    # is 1 + len(its copies). Empty when no member copies another.
    copies: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=True, hash=False)


def story_to_dict(story: Story) -> dict[str, Any]:
    """The JSON shape of a story (one line of ``stories.jsonl``); ``copies`` only when some
    member copies another."""
    out: dict[str, Any] = {
        "cluster_id": story.cluster_id,
        "members": list(story.members),
        "base": story.base,
        "title": story.title,
        "text": story.text,
        "sentences": [{"text": s.text, "sources": list(s.sources)} for s in story.sentences],
        "differences": [
            {
                "kind": d.kind,
                "context": d.context,
                "variants": {value: list(ids) for value, ids in d.variants.items()},
            }
            for d in story.differences
        ],
    }
    if story.copies:
        out["copies"] = {version: list(ids) for version, ids in story.copies.items()}
    return out


def story_from_dict(data: dict[str, Any]) -> Story:
    """Inverse of ``story_to_dict``: read a story back from ``stories.jsonl``."""
    return Story(
        cluster_id=str(data["cluster_id"]),
        members=tuple(data["members"]),
        base=str(data["base"]),
        title=str(data.get("title", "")),
        text=str(data.get("text", "")),
        sentences=tuple(
            StorySentence(str(s["text"]), tuple(s["sources"])) for s in data.get("sentences", [])
        ),
        differences=tuple(
            Difference(
                d["kind"],
                str(d.get("context", "")),
                {str(v): tuple(ids) for v, ids in d["variants"].items()},
            )
            for d in data.get("differences", [])
        ),
        copies={str(v): tuple(ids) for v, ids in data.get("copies", {}).items()},
    )
