"""The work the batch pipeline sends to its worker processes: task records and the
module-level functions that run them (workers import them by name).

Each task carries everything its function reads, and each function's result does not
depend on how work was cut into tasks, which is why outputs are byte-identical for any
number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from dedup import clustering, copies, excerpts, refine
from dedup.config import ClusterConfig, Config, MergeConfig
from dedup.io.jsontext import json_line
from dedup.merge import member_text, story_to_dict
from dedup.merge import merge as merge_story
from dedup.parallel import guided_size
from dedup.prepare import to_articles
from dedup.records import Story

__all__ = [
    "LinkTask",
    "MergeTask",
    "PackedText",
    "ScoreTask",
    "TextTask",
    "guided_batches",
    "link_task",
    "member_texts",
    "merge_clusters",
    "merge_clusters_as_lines",
    "merge_task",
    "score_task",
    "text_tasks",
]


def guided_batches(
    groups: list[np.ndarray], largest: int, workers: int
) -> Iterator[list[np.ndarray]]:
    """Consecutive groups of rows in batches of about ``parallel.guided_size`` rows (a group
    is never split): the tasks of one stage."""
    left = sum(len(rows) for rows in groups)
    target = guided_size(left, largest, workers)
    batch: list[np.ndarray] = []
    size = 0
    for rows in groups:
        batch.append(rows)
        size += len(rows)
        if size >= target:
            yield batch
            left -= size
            target = guided_size(left, largest, workers)
            batch, size = [], 0
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class ScoreTask:
    """Candidate pairs to score against the features ``refine.save_features`` wrote."""

    folder: str
    pairs: np.ndarray


def score_task(task: ScoreTask) -> np.ndarray:
    """``refine.pair_scores`` of one task. Module-level so workers can run it."""
    return refine.pair_scores(refine.open_features(Path(task.folder)), task.pairs)


@dataclass(frozen=True, slots=True)
class LinkTask:
    """Several connected components (``sizes`` rows each, consecutive) and their features."""

    features: refine.Features
    sizes: list[int]
    config: ClusterConfig
    weights: np.ndarray | None = None  # copy-group size of each row (None: all 1)
    openings: excerpts.Openings | None = None  # each row's, for excerpts to move


_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)


def link_task(task: LinkTask) -> list[tuple[np.ndarray, np.ndarray]]:
    """``clustering.link_components`` of one task's components, in its local row numbers.
    Module-level so workers can run it."""
    parts = np.split(np.arange(sum(task.sizes)), np.cumsum(task.sizes)[:-1])

    def similarity(rows: np.ndarray) -> np.ndarray:
        return refine.block_similarity(task.features, rows)

    return clustering.link_components(parts, _NO_PAIRS, _NO_SCORES, similarity, task.config,
                                      weights=task.weights, openings=task.openings)


@dataclass(frozen=True, slots=True)
class MergeTask:
    """Several clusters' articles (rows in cluster order) and their ids, for one worker;
    ``texts``: each row's ``member_texts`` entry where it was computed ahead (else None)."""

    frame: pl.DataFrame
    sizes: list[int]
    cluster_ids: list[str]
    config: Config
    texts: list[PackedText | None] = field(default_factory=list)
    # Per cluster: distinct version id -> its verbatim copies' ids (not in ``frame``).
    copies: list[dict[str, tuple[str, ...]]] = field(default_factory=list)


def merge_clusters(task: MergeTask) -> list[Story]:
    """Merge each cluster of a task into its story. Module-level so workers can run it."""
    articles = to_articles(task.frame)
    cleaned = {
        article.id: (title, body.split("\n") if body else [], share)
        for article, packed in zip(articles, task.texts, strict=False) if packed is not None
        for title, body, share in (packed,)
    }
    out = []
    start = 0
    copies_of = task.copies or [{}] * len(task.sizes)
    for size, cluster_id, copied in zip(task.sizes, task.cluster_ids, copies_of, strict=True):
        out.append(merge_story(articles[start : start + size], cluster_id, task.config,
                               cleaned=cleaned, copies=copied))
        start += size
    return out


# ``merge.member_text`` with the sentences joined by newlines (no sentence holds one): one
# string per article to send back and keep, not a list of them.
PackedText = tuple[str, str, float]


@dataclass(frozen=True, slots=True)
class TextTask:
    """Consecutive articles' texts and titles, to clean for the merge ahead of it."""

    texts: list[str]
    titles: list[str]
    config: MergeConfig


def member_texts(task: TextTask) -> list[PackedText]:
    """``merge.member_text`` of each article, packed. Module-level so workers can run it."""
    out = []
    for text, title in zip(task.texts, task.titles, strict=True):
        clean_title, sentences, share = member_text(text, title, task.config)
        out.append((clean_title, "\n".join(sentences), share))
    return out


def text_tasks(frame: pl.DataFrame, config: Config, size: int) -> Iterator[TextTask]:
    """``TextTask``s of ``size`` consecutive articles each."""
    for start in range(0, frame.height, size):
        part = frame.slice(start, size)
        yield TextTask(part["text"].to_list(), part["title"].fill_null("").to_list(),
                       config.merge)


def merge_clusters_as_lines(task: MergeTask) -> tuple[list[str], str]:
    """``merge_clusters``, as each story's base and the stories' ``stories.jsonl`` lines.

    Serializing in the worker spares the parent unpickling every story only to write it.
    """
    stories = merge_clusters(task)
    return [s.base for s in stories], "".join(json_line(story_to_dict(s)) for s in stories)


def merge_task(
    frame: pl.DataFrame,
    batch: list[np.ndarray],
    cluster_of: np.ndarray,
    config: Config,
    texts: list[PackedText] | None = None,
    copy_groups: copies.CopyGroups | None = None,
    ids: Sequence[str] = (),
) -> MergeTask:
    """The task merging ``batch``'s clusters; with ``copy_groups`` (and every row's id in
    ``ids``), each cluster's distinct versions and their copies."""
    copied: list[dict[str, tuple[str, ...]]] = []
    if copy_groups is not None:
        exact = copy_groups.exact
        versions = []
        for group in batch:
            keep = exact[group] == group
            copied.append(copies.copies_by_version(group, exact, ids) if not keep.all() else {})
            versions.append(group[keep])
        batch = versions
    rows = np.concatenate(batch)
    ahead = len(texts or ())
    return MergeTask(
        frame=frame[rows],
        sizes=[len(rows) for rows in batch],
        cluster_ids=[str(cluster_of[rows[0]]) for rows in batch],
        config=config,
        texts=[texts[r] if r < ahead else None for r in rows.tolist()] if texts else [],
        copies=copied,
    )


