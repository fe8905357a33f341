"""The batch pipeline: the one place that connects the stages and times each by name.

``cluster`` runs the stages in order, each a call into its stage module: ``prepare``
(input, normalization), ``copies`` (copy groups), ``candidates`` (LSH pairs), ``refine``
(features, pair scores), ``clustering`` (linkage), ``merge`` (stories) and ``assemble``
(output records). What this module adds is the order, the memory discipline between
stages (what is dropped when) and the spreading of work over ``WorkerPool`` processes
(the tasks of ``dedup.tasks``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from dedup import candidates, clustering, copies, excerpts, normalize, refine, signatures
from dedup.assemble import ClusterResult, assignments_frame, most_central
from dedup.candidates import CandidateStats
from dedup.config import Config
from dedup.io.errors import DedupInputError
from dedup.parallel import Background, WorkerPool, resolve_workers
from dedup.prepare import (
    CORE_COLUMNS,
    Normalized,
    NormalizedChunk,
    NormalizeTask,
    Prepared,
    Progress,
    articles_frame,
    normalize_chunk,
    normalize_frame,
    prepare,
    publication_days,
    ready,
    to_articles,
)
from dedup.records import Article, Cluster, Story
from dedup.tasks import (
    LinkTask,
    MergeTask,
    PackedText,
    ScoreTask,
    TextTask,
    guided_batches,
    link_task,
    member_texts,
    merge_clusters,
    merge_clusters_as_lines,
    merge_task,
    score_task,
    text_tasks,
)
from dedup.timing import StageTimer, release_memory
from dedup.tuning import BatchTuning

# Names other modules imported from here before the stages had modules of their own.
__all__ = [
    "CORE_COLUMNS",
    "ClusterResult",
    "DedupInputError",
    "LinkTask",
    "MergeTask",
    "NormalizeTask",
    "NormalizedChunk",
    "PackedText",
    "Prepared",
    "Progress",
    "ScoreTask",
    "StageTimer",
    "TextTask",
    "articles_frame",
    "assignments_frame",
    "cluster",
    "features",
    "link",
    "link_task",
    "member_texts",
    "merge_clusters",
    "merge_clusters_as_lines",
    "normalize_chunk",
    "pair_scores",
    "prepare",
    "ready",
    "release_memory",
    "score_task",
    "to_articles",
]

_Merged = TypeVar("_Merged")
_DEFAULT = BatchTuning()


def cluster(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    config: Config | None = None,
    *,
    with_stories: bool = True,
    progress: Progress | None = None,
    workers: int | None = 1,
    on_story: Callable[[Story], None] | None = None,
    on_story_lines: Callable[[str], None] | None = None,
    tuning: BatchTuning | None = None,
) -> ClusterResult:
    """Cluster articles by event.

    Args:
        articles: a polars DataFrame with ``id`` and ``text`` (and optionally ``title``,
            ``published``, ``source``, anything else passed through), or an iterable of
            dicts with those keys or of ``Article`` records.
        config: thresholds for every stage; defaults are tuned on ecbplus-dev.
        with_stories: merge each cluster into a canonical story (``result.stories``);
            the story's base is the canonical article. Without it the most central member
            is canonical and the (pure Python) merge stage is skipped.
        progress: called as ``progress(stage, done, total)`` during long loops.
        workers: processes for normalization, linkage and merging (0 or None: every core).
            Results are byte-identical for any value; more than one pays off from
            roughly 10,000 articles (each worker process takes ~1 s to start).
        on_story: receives each story as soon as it is merged, in cluster-id order,
            instead of ``result.stories`` holding them all: the CLI writes them to disk
            this way, so a million stories never sit in memory at once.
        on_story_lines: instead of ``on_story``, receives the stories as ``stories.jsonl``
            text (``io.json_line(story_to_dict(story))`` per story), several whole lines
            at a time, in cluster-id order. The worker processes serialize them, which
            spares this process rebuilding every story only to write it out: the fastest
            way to stream stories to a file.
        tuning: chunk and task sizes (``dedup.tuning.BatchTuning``); they bound memory and
            balance workers, and never change a result.

    Example:
        >>> from dedup import cluster
        >>> r = cluster([{"id": "a", "text": "Quake hits Lima"}, {"id": "b", "text": ""}])
        >>> r.assignments.height
        2
    """
    config = config or Config()
    if on_story is not None and on_story_lines is not None:
        raise ValueError("pass on_story or on_story_lines, not both")
    with WorkerPool(resolve_workers(workers)) as pool:
        run = _Run(config, with_stories, progress, pool, tuning or _DEFAULT, StageTimer())
        return _cluster(articles, run, _Sink(on_story, on_story_lines))


@dataclass(frozen=True, slots=True)
class _Run:
    """What every step of one batch run reads: settings, workers, the stage timer."""

    config: Config
    with_stories: bool
    progress: Progress | None
    pool: WorkerPool
    tuning: BatchTuning
    timer: StageTimer

    def stage(self, name: str) -> Any:
        return self.timer.stage(name)

    def keeps_workers(self, n: int) -> bool:
        """Whether worker processes stay up through the single-process stages."""
        return n < self.tuning.stop_idle_workers_from


@dataclass(frozen=True, slots=True)
class _Sink:
    """Where merged stories go: a callback per story, per batch of lines, or the result."""

    on_story: Callable[[Story], None] | None = None
    on_story_lines: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    """Candidate pairs of both signals, and their counts for the run's stats."""

    pairs: np.ndarray
    copy_stats: CandidateStats
    event_stats: CandidateStats


@dataclass(frozen=True, slots=True)
class _Linked:
    """Clusters as rows (each sorted), each row's cluster id and closeness to its cluster."""

    groups: list[np.ndarray]
    cluster_of: np.ndarray
    closeness: np.ndarray


def _cluster(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]], run: _Run, sink: _Sink
) -> ClusterResult:
    with run.stage("read"):
        frame = articles_frame(articles)
    n = frame.height
    if n > run.tuning.chunk:
        run.pool.warm(ready)  # workers start and import while this process finds templates
    normalized = _normalize_and_hash(frame, run)
    if not run.keeps_workers(n):
        run.pool.shutdown()  # idle workers hold ~300 MB each through the peak; merge restarts
    ahead: Background[TextTask, list[PackedText]] | None = None
    if run.with_stories and run.pool.workers > 1 and run.tuning.chunk < n and run.keeps_workers(n):
        # The next stages run mostly in this process: a worker cleans members' texts for
        # the merge meanwhile (the merge cleans those it did not reach).
        ahead = Background(run.pool, member_texts,
                           text_tasks(frame, run.config, run.tuning.text_task_articles))
    counts, copy_sigs, has_copies, openings = (normalized.counts, normalized.copy_sigs,
                                               normalized.has_copies, normalized.openings)
    del normalized
    copy_keys = copies.signature_keys(copy_sigs)
    copy_groups = _copy_groups(copy_keys, copy_sigs, has_copies, run)
    copy_labels = copies.group_labels(copy_keys, has_copies, copy_groups.group)
    del copy_keys
    is_rep = copy_groups.group == np.arange(n)
    with run.stage("candidates"):
        # Copies first: their signatures (512 bytes per article) are gone before the
        # features and events signatures exist, which lowers the peak.
        copy_pairs, copy_stats = candidates.lsh_pairs(
            copy_sigs, has_copies & is_rep, **run.config.candidates.lsh_options("copies"),
            threads=_lsh_threads(run), buffers=run.tuning.lsh_buffers)
        del copy_sigs
    features = _weigh(counts, frame, is_rep, run)
    del counts
    features, found = _event_candidates(features, is_rep, copy_pairs, copy_stats, run)
    del copy_pairs
    with run.stage("refine"):
        scores = pair_scores(features, found.pairs, run.pool if run.keeps_workers(n) else None,
                             run.tuning.score_task_pairs)
    with run.stage("cluster"):
        linked = _clusters(frame, found.pairs, scores, features, copy_groups, openings, run)
    del features, scores
    with run.stage("merge"):
        texts = [packed for part in ahead.stop() for packed in part] if ahead else []
        canonical, stories = _merge_stage(frame, linked, texts, copy_groups, run, sink)
    return _result(frame, linked, canonical, stories, found, copy_groups, copy_labels,
                   run.timer)


def _normalize_and_hash(frame: pl.DataFrame, run: _Run) -> Normalized:
    """Term counts and copies signatures of every article (``prepare.normalize_frame``).

    With more than one worker, chunks go to worker processes; their stage times then overlap,
    so the whole loop is timed as ``normalize`` (wall seconds).
    """
    with run.stage("normalize"):
        templates = normalize.repeated_lines(
            zip(frame["source"], frame["text"], strict=True), run.config.normalize
        )
    parallel = run.pool.workers > 1 and frame.height > run.tuning.chunk
    with run.stage("normalize") if parallel else contextlib.nullcontext():
        return normalize_frame(frame, templates, run.config, run.tuning.chunk, run.pool,
                               run.progress, None if parallel else run.timer)


def _weigh(counts: refine.Counts, frame: pl.DataFrame, is_rep: np.ndarray,
           run: _Run) -> refine.Features:
    """TF-IDF rows of every article, a copy group counted once in the document
    frequencies (``counts`` is consumed)."""
    with run.stage("features"):
        return refine.weigh_features(
            counts, counts.frequencies(is_rep), int(is_rep.sum()), run.config.refine,
            days=publication_days(frame), in_place=True)


def features(articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
             config: Config | None = None) -> refine.Features:
    """The features ``cluster`` scores candidate pairs with (``refine.pair_scores``), from
    the same steps, in one process: for diagnostics, and for tests that compare the
    drivers' scores pair by pair."""
    config = config or Config()
    with WorkerPool(1) as pool:
        run = _Run(config, False, None, pool, _DEFAULT, StageTimer())
        frame = articles_frame(articles)
        normalized = _normalize_and_hash(frame, run)
        groups = _copy_groups(copies.signature_keys(normalized.copy_sigs),
                              normalized.copy_sigs, normalized.has_copies, run)
        found = _weigh(normalized.counts, frame, groups.group == np.arange(frame.height), run)
    return dataclasses.replace(found, salient=refine.Salient.empty())


def _lsh_threads(run: _Run) -> int:
    return min(run.pool.workers, run.tuning.lsh_threads)


def _copy_groups(copy_keys: np.ndarray, copy_sigs: np.ndarray, has_copies: np.ndarray,
                 run: _Run) -> copies.CopyGroups:
    """One node per copy group from here on: its representative (#18)."""
    cand = run.config.candidates
    with run.stage("copies"):
        return copies.copy_groups(copy_keys, has_copies, copy_sigs,
                                  threshold=cand.copies_group_threshold,
                                  max_bucket_size=cand.copies_max_bucket_size,
                                  chain=cand.crowded_chain)


def _event_candidates(
    features: refine.Features, is_rep: np.ndarray, copy_pairs: np.ndarray,
    copy_stats: CandidateStats, run: _Run,
) -> tuple[refine.Features, _Found]:
    """Events signatures of the salient terms, their LSH pairs, and the union with the
    copies pairs; the features come back without their salient terms (nothing later
    reads them)."""
    cand, sig = run.config.candidates, run.config.signatures
    with run.stage("signatures"):
        minhasher = signatures.MinHasher(sig.num_perm, sig.seed)
        event_sets = signatures.column_shingles(features.salient.offsets,
                                                features.salient.columns)
        event_bands, event_rows = candidates.lsh_params(cand.events_threshold, sig.num_perm)
        event_sigs = minhasher.signatures(event_sets, columns=event_bands * event_rows)
        has_events = np.array([len(s) > 0 for s in event_sets], dtype=bool) & is_rep
        features = dataclasses.replace(features, salient=refine.Salient.empty())
        del event_sets
    with run.stage("candidates"):
        event_pairs, event_stats = candidates.lsh_pairs(event_sigs, has_events,
                                                        **cand.lsh_options("events"),
                                                        threads=_lsh_threads(run),
                                                        num_perm=sig.num_perm,
                                                        buffers=run.tuning.lsh_buffers)
        del event_sigs
        pairs = candidates.union_pairs(copy_pairs, event_pairs)
    return features, _Found(pairs, copy_stats, event_stats)


def _clusters(frame: pl.DataFrame, pairs: np.ndarray, scores: np.ndarray,
              features: refine.Features, copy_groups: copies.CopyGroups,
              openings: excerpts.Openings, run: _Run) -> _Linked:
    """Linkage of the representatives, copies brought along; cluster ids from member ids.
    Excerpts are tied to their story's component first (``dedup.excerpts``), at the edge
    threshold: an oversized component sheds those edges first."""
    n = frame.height
    ids: list[str] = frame["id"].to_list()
    cfg = run.config.clustering
    openings = openings.dated(publication_days(frame), copy_groups.group)
    ties = excerpts.edges(openings, copy_groups.group == np.arange(n), cfg.excerpt_max_days,
                          copy_groups.sizes)
    if len(ties):
        pairs = np.concatenate([pairs, ties])
        scores = np.concatenate([scores, np.full(len(ties), cfg.edge_threshold)])
    linked = copies.expand(link(n, pairs, scores, features, run.config, run.pool, copy_groups,
                                run.tuning.link_task_articles, openings), copy_groups)
    cluster_of = np.empty(n, dtype=object)
    closeness = np.ones(n, dtype=np.float64)
    for rows, close in linked:
        cluster_of[rows] = clustering.cluster_id([ids[r] for r in rows])
        closeness[rows] = np.round(close, 6)
    return _Linked([rows for rows, _ in linked], cluster_of, closeness)


def _merge_stage(frame: pl.DataFrame, linked: _Linked, texts: list[PackedText],
                 copy_groups: copies.CopyGroups, run: _Run, sink: _Sink
                 ) -> tuple[np.ndarray, list[Story]]:
    """Each cluster's story (handed to ``sink`` or kept) and canonical member: the story's
    base, or without stories ``assemble.most_central``."""
    ids: list[str] = frame["id"].to_list()
    canonical = np.zeros(frame.height, dtype=bool)
    stories: list[Story] = []
    if not run.with_stories:
        published = frame["published"].to_list()
        for rows in linked.groups:
            members = rows.tolist()
            canonical[members[most_central(linked.closeness[rows], [published[r] for r in members],
                                           [ids[r] for r in members])]] = True
        return canonical, stories
    # Merged in cluster-id order, the order of every output, so a sink can stream.
    by_id = sorted(linked.groups, key=lambda rows: str(linked.cluster_of[rows[0]]))
    row_of = {article_id: row for row, article_id in enumerate(ids)}
    bases: list[int] = []

    def merged(func: Callable[[MergeTask], _Merged]) -> Iterator[_Merged]:
        return _merged(frame, by_id, linked.cluster_of, run.config, run.progress, run.pool,
                       func, texts, copy_groups, run.tuning.merge_task_articles)

    if sink.on_story_lines is not None:
        for base_ids, text in merged(merge_clusters_as_lines):
            bases.extend(row_of[b] for b in base_ids)
            sink.on_story_lines(text)
    else:
        for part in merged(merge_clusters):
            for story in part:
                bases.append(row_of[story.base])
                if sink.on_story is None:
                    stories.append(story)
                else:
                    sink.on_story(story)
    canonical[bases] = True
    return canonical, stories


def _result(frame: pl.DataFrame, linked: _Linked, canonical: np.ndarray, stories: list[Story],
            found: _Found, copy_groups: copies.CopyGroups, copy_labels: list[str | None],
            timer: StageTimer) -> ClusterResult:
    ids: list[str] = frame["id"].to_list()
    clusters = sorted(
        (
            Cluster(linked.cluster_of[rows[0]], tuple(sorted(ids[r] for r in rows)),
                    ids[int(rows[canonical[rows]][0])])
            for rows in linked.groups
        ),
        key=lambda c: c.cluster_id,
    )
    stats = {
        "articles": frame.height,
        "clusters": len(clusters),
        "largest_cluster": max((c.size for c in clusters), default=0),
        "copy_pairs": found.copy_stats.pairs,
        "event_pairs": found.event_stats.pairs,
        "oversized_buckets": (found.copy_stats.oversized_buckets
                              + found.event_stats.oversized_buckets),
        "copies_collapsed": copy_groups.collapsed,
    }
    return ClusterResult(
        assignments=assignments_frame(frame, linked.cluster_of, canonical, linked.closeness,
                                      copy_labels),
        clusters=clusters,
        stories=stories,
        timings=timer.timings,
        candidate_pairs=len(found.pairs),
        pairs=found.pairs,
        stats=stats,
    )


def pair_scores(
    features: refine.Features, pairs: np.ndarray, pool: WorkerPool | None,
    task_pairs: int = _DEFAULT.score_task_pairs,
) -> np.ndarray:
    """``refine.pair_scores``, chunks of pairs scored on the workers (``pool``) when there
    are enough of them. scipy holds the GIL, so threads would not help; the workers map
    the features from a temporary folder instead of each being sent a copy. Each pair's
    score is computed alone, so the values do not depend on where.
    """
    if pool is None or pool.workers <= 1 or len(pairs) < 2 * task_pairs:
        return refine.pair_scores(features, pairs)
    with tempfile.TemporaryDirectory(prefix="dedup-features-") as folder:
        try:
            refine.save_features(features, Path(folder))
        except OSError:  # no room for the temporary copy: score here instead
            return refine.pair_scores(features, pairs)
        tasks = (ScoreTask(folder, pairs[start : start + task_pairs])
                 for start in range(0, len(pairs), task_pairs))
        return np.concatenate(list(pool.map(score_task, tasks)))



def link(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    features: refine.Features,
    config: Config,
    pool: WorkerPool,
    groups: copies.CopyGroups | None = None,
    task_articles: int = _DEFAULT.link_task_articles,
    openings: excerpts.Openings | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``clustering.cluster_with_cohesion``, components linked on the workers.

    Components are independent: a task carries a batch of them with their own rows of
    the features, and the same values come back whichever process links them. A
    component above ``max_component_size`` (cut by its pairs first) is linked here.
    With ``groups``, only representatives are linked (``copies.expand`` adds the rest),
    each weighing its group's size in cohesion. With ``openings`` (indexed by row),
    excerpts join their story after linkage (``excerpts.regroup``).
    """
    cfg = config.clustering
    weights = groups.sizes if groups is not None and groups.collapsed else None

    def similarity(rows: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, rows)

    parts = clustering.component_rows(n, pairs, scores, cfg.edge_threshold)
    if weights is not None:  # members of a copy group are alone, and stand for nothing
        parts = [rows for rows in parts if len(rows) > 1 or weights[rows[0]] > 0]
    alone = [rows for rows in parts if len(rows) == 1]
    large = [rows for rows in parts if len(rows) > cfg.max_component_size]
    linked = clustering.link_components(alone + large, pairs, scores, similarity, cfg,
                                        weights=weights, openings=openings)
    batches = [rows for rows in parts if 1 < len(rows) <= cfg.max_component_size]
    del parts

    if pool.workers <= 1 or sum(len(rows) for rows in batches) <= task_articles:
        linked += clustering.link_components(batches, pairs, scores, similarity, cfg,
                                             weights=weights, openings=openings)
    else:
        sent: deque[np.ndarray] = deque()  # each task's rows, until its groups come back

        def tasks() -> Iterator[LinkTask]:
            for batch in guided_batches(batches, task_articles, pool.workers):
                rows = np.concatenate(batch)
                sent.append(rows)
                yield LinkTask(features.rows(rows), [len(r) for r in batch], cfg,
                               None if weights is None else weights[rows],
                               None if openings is None else openings.rows(rows))

        for found in pool.map(link_task, tasks()):
            rows = sent.popleft()
            linked.extend((rows[group], close) for group, close in found)
    linked.sort(key=lambda item: int(item[0][0]))
    return linked



def _merged(
    frame: pl.DataFrame,
    groups: list[np.ndarray],
    cluster_of: np.ndarray,
    config: Config,
    progress: Progress | None,
    pool: WorkerPool,
    func: Callable[[MergeTask], _Merged],
    texts: list[PackedText],
    copy_groups: copies.CopyGroups | None = None,
    task_articles: int = _DEFAULT.merge_task_articles,
) -> Iterator[_Merged]:
    """``func`` of every merge task, in the order of ``groups`` (several clusters a task);
    ``texts``: the first rows' ``member_texts``, computed ahead. With ``copy_groups``,
    only distinct versions are merged, each with its exact copies' ids.

    Records are built per task, not for the whole corpus at once: a second copy of every
    text was the largest item in peak memory.
    """
    sizes: deque[int] = deque()
    if copy_groups is not None and not copy_groups.collapsed:
        copy_groups = None
    ids = frame["id"].to_list() if copy_groups is not None else []
    if copy_groups is not None:  # the version of each exact group: the merger's own choice
        copy_groups = dataclasses.replace(copy_groups, exact_group=copies.elect(
            copy_groups.exact, publication_days(frame), ids))

    def tasks() -> Iterator[MergeTask]:
        for batch in guided_batches(groups, task_articles, pool.workers):
            sizes.append(len(batch))
            yield merge_task(frame, batch, cluster_of, config, texts, copy_groups, ids)

    parallel = frame.height > task_articles
    done = 0
    for result in pool.map(func, tasks(), parallel=parallel):
        yield result
        before, done = done, done + sizes.popleft()
        if progress and (done // 1000 > before // 1000 or done == len(groups)):
            progress("merge", done, len(groups))


