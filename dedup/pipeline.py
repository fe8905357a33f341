"""The batch pipeline: the one place that connects the stages and times each by name."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from dedup import candidates, clustering, copies, excerpts, normalize, refine, signatures
from dedup.config import ClusterConfig, Config, MergeConfig
from dedup.io import json_line
from dedup.merge import member_text, story_to_dict
from dedup.merge import merge as merge_story
from dedup.parallel import Background, WorkerPool, guided_size, resolve_workers
from dedup.records import Article, Cluster, Rejected, Story

Progress = Callable[[str, int, int], None]
_Merged = TypeVar("_Merged")
CORE_COLUMNS = ("id", "text", "title", "published", "source")


class DedupInputError(ValueError):
    """Input that cannot be clustered; the message names the file, line or id and the fix."""


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """One article after normalization: what every later stage reads."""

    sentences: list[str]
    tokens: list[str]
    terms: refine.DocumentTerms


def articles_frame(articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]]) -> pl.DataFrame:
    """Coerce any accepted input to a frame with the core columns first, extras after.

    Raises DedupInputError for a missing id or text, or a duplicate id.
    """
    if isinstance(articles, pl.DataFrame):
        frame = articles
    else:
        frame = pl.DataFrame([_row(a) for a in articles], infer_schema_length=None)
    if frame.width == 0:
        frame = pl.DataFrame(schema={"id": pl.String, "text": pl.String})
    for column in ("id", "text"):
        if column not in frame.columns:
            raise DedupInputError(
                f"input has no {column!r} column (columns: {', '.join(frame.columns)}); "
                f"rename it or map it with --{column}-col"
            )
    frame = frame.with_columns(
        pl.col("id").cast(pl.String), pl.col("text").cast(pl.String).fill_null("")
    )
    if frame["id"].null_count() or (frame["id"].str.strip_chars() == "").any():
        row = int(
            frame.with_row_index().filter(
                pl.col("id").is_null() | (pl.col("id").str.strip_chars() == "")
            )["index"][0]
        )
        raise DedupInputError(f"article at row {row + 1} has an empty id; every article needs one")
    duplicated = frame.filter(pl.col("id").is_duplicated())["id"]
    if len(duplicated):
        raise DedupInputError(
            f"duplicate id {duplicated[0]!r}: ids must be unique (use --skip-bad-rows to "
            "reject repeats)"
        )
    for column, dtype in (("title", pl.String), ("source", pl.String)):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(column))
    if "published" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Datetime("us")).alias("published"))
    extras = [c for c in frame.columns if c not in CORE_COLUMNS]
    return frame.select(*CORE_COLUMNS, *extras)


def _row(article: Article | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(article, Article):
        return {
            "id": article.id,
            "text": article.text,
            "title": article.title,
            "published": article.published,
            "source": article.source,
            **article.extra,
        }
    return dict(article)


def to_articles(frame: pl.DataFrame) -> list[Article]:
    """Article records of a frame made by ``articles_frame``."""
    extras = [c for c in frame.columns if c not in CORE_COLUMNS]
    out = []
    for row in frame.iter_rows(named=True):
        published = row["published"]
        out.append(
            Article(
                id=row["id"],
                text=row["text"] or "",
                title=row["title"] or "",
                published=published if isinstance(published, datetime) else None,
                source=row["source"],
                extra={c: row[c] for c in extras},
            )
        )
    return out


def prepare(text: str, title: str, templates: frozenset[str], *, body: bool = True
            ) -> Prepared:
    """Normalize one article into sentences, tokens and TF-IDF term lists.

    ``body=False`` leaves ``terms.body`` empty, for a caller that reads the body terms off
    its ``tokens`` (those that are not ``normalize.STOPWORDS``), as ``StoryIndex`` does.
    """
    lines = normalize.strip_boilerplate(normalize.clean_text(text), templates)
    sentences = normalize.split_sentences(lines)
    joined = " ".join(lines)
    clean_title = normalize.clean_text(title).strip()
    tokens = normalize.tokens(joined)
    return Prepared(
        sentences=sentences,
        tokens=tokens,
        terms=refine.DocumentTerms(
            body=normalize.without_stopwords(tokens) if body else [],
            names=normalize.names(sentences),
            title=normalize.content_tokens(clean_title),
            numbers=normalize.numbers(joined),
            years=normalize.years(clean_title + " " + joined),
        ),
    )


class StageTimer:
    """Wall seconds per named stage, summed over every entry into the stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            release_memory()  # a stage's temporaries are freed: give their pages back
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def assignments_frame(
    frame: pl.DataFrame, cluster_of: np.ndarray, canonical: np.ndarray, closeness: np.ndarray
) -> pl.DataFrame:
    """The output table: one row per article in input order, input columns passed through."""
    return pl.DataFrame(
        {
            "id": frame["id"],
            "cluster_id": pl.Series(cluster_of.tolist(), dtype=pl.String),
            "is_canonical": canonical,
            "similarity": closeness,
        }
    ).hstack(frame.drop("id", "text"))


def _days(frame: pl.DataFrame) -> np.ndarray:
    """Publication time in days since the epoch; NaN where unknown."""
    seconds = frame["published"].cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64)
    return seconds.fill_null(float("nan")).to_numpy() / 86400.0


def cluster(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    config: Config | None = None,
    *,
    with_stories: bool = True,
    progress: Progress | None = None,
    workers: int | None = 1,
    on_story: Callable[[Story], None] | None = None,
    on_story_lines: Callable[[str], None] | None = None,
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
        return _cluster(articles, config, with_stories, progress, pool, on_story,
                        on_story_lines)


def _cluster(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    config: Config,
    with_stories: bool,
    progress: Progress | None,
    pool: WorkerPool,
    on_story: Callable[[Story], None] | None,
    on_story_lines: Callable[[str], None] | None,
) -> ClusterResult:
    timer = StageTimer()
    with timer.stage("read"):
        frame = articles_frame(articles)
    n = frame.height
    ids: list[str] = frame["id"].to_list()
    if n > _CHUNK:
        pool.warm(_ready)  # workers start and import while this process finds templates

    counts, copy_sigs, has_copies, openings = _normalize_and_hash(frame, config, timer, progress,
                                                                  pool)
    if n >= _STOP_IDLE_WORKERS_FROM:
        pool.shutdown()  # idle workers hold ~300 MB each through the peak; merge restarts them
    ahead: Background[TextTask, list[PackedText]] | None = None
    if with_stories and pool.workers > 1 and _CHUNK < n < _STOP_IDLE_WORKERS_FROM:
        # The next stages run mostly in this process: a worker cleans members' texts for
        # the merge meanwhile (the merge cleans those it did not reach).
        ahead = Background(pool, member_texts, _text_tasks(frame, config))
    cand = config.candidates
    lsh_threads = min(pool.workers, _LSH_THREADS)
    with timer.stage("copies"):
        # One node per copy group from here on: its representative (#18).
        copy_groups = copies.copy_groups(copies.signature_keys(copy_sigs), has_copies,
                                         copy_sigs,
                                         threshold=cand.copies_group_threshold,
                                         max_bucket_size=cand.copies_max_bucket_size,
                                         chain=cand.crowded_chain)
        is_rep = copy_groups.group == np.arange(n)
    with timer.stage("candidates"):
        # Copies first: their signatures (512 bytes per article) are gone before the
        # features and events signatures exist, which lowers the peak.
        copy_pairs, copy_stats = candidates.lsh_pairs(copy_sigs, has_copies & is_rep,
                                                      **cand.lsh_options("copies"),
                                                      threads=lsh_threads)
        del copy_sigs
    days = _days(frame)
    with timer.stage("features"):
        features = refine.weigh_features(
            counts, counts.frequencies(is_rep), int(is_rep.sum()), config.refine,
            days=days, in_place=True
        )
        del counts
    with timer.stage("signatures"):
        sig = config.signatures
        minhasher = signatures.MinHasher(sig.num_perm, sig.seed)
        event_sets = signatures.column_shingles(features.salient.offsets,
                                                features.salient.columns)
        event_bands, event_rows = candidates.lsh_params(cand.events_threshold, sig.num_perm)
        event_sigs = minhasher.signatures(event_sets, columns=event_bands * event_rows)
        has_events = np.array([len(s) > 0 for s in event_sets], dtype=bool) & is_rep
        # Nothing later needs the salient terms, so they go now.
        features = dataclasses.replace(features, salient=refine.Salient.empty())
        del event_sets
    with timer.stage("candidates"):
        event_pairs, event_stats = candidates.lsh_pairs(event_sigs, has_events,
                                                        **cand.lsh_options("events"),
                                                        threads=lsh_threads,
                                                        num_perm=sig.num_perm)
        del event_sigs
        pairs = candidates.union_pairs(copy_pairs, event_pairs)
        del copy_pairs, event_pairs
    with timer.stage("refine"):
        scores = _pair_scores(features, pairs, pool if n < _STOP_IDLE_WORKERS_FROM else None)

    with timer.stage("cluster"):
        openings = openings.dated(days, copy_groups.group)
        # Excerpts are tied to their story's component (``dedup.excerpts``).
        links = excerpts.edges(openings, is_rep, config.clustering.excerpt_max_days,
                               copy_groups.sizes)
        edges = np.concatenate([pairs, links]) if len(links) else pairs
        # At the edge threshold: an oversized component sheds these first (``_split_large``).
        tie = np.full(len(links), config.clustering.edge_threshold)
        edge_scores = np.concatenate([scores, tie]) if len(links) else scores
        linked = copies.expand(_link(n, edges, edge_scores, features, config, pool,
                                     copy_groups, openings), copy_groups)
        groups = [rows for rows, _ in linked]
        cluster_of = np.empty(n, dtype=object)
        closeness = np.ones(n, dtype=np.float64)
        for rows, close in linked:
            cluster_of[rows] = clustering.cluster_id([ids[r] for r in rows])
            closeness[rows] = np.round(close, 6)
        del linked

    stories: list[Story] = []
    canonical = np.zeros(n, dtype=bool)
    with timer.stage("merge"):
        texts = [packed for part in ahead.stop() for packed in part] if ahead else []
        if with_stories:
            # Merged in cluster-id order, the order of every output, so a sink can stream.
            by_id = sorted(groups, key=lambda rows: str(cluster_of[rows[0]]))
            row_of = {article_id: row for row, article_id in enumerate(ids)}
            bases: list[int] = []
            if on_story_lines is not None:
                for base_ids, text in _merged(frame, by_id, cluster_of, config, progress, pool,
                                              merge_clusters_as_lines, texts, copy_groups):
                    bases.extend(row_of[b] for b in base_ids)
                    on_story_lines(text)
            else:
                for part in _merged(frame, by_id, cluster_of, config, progress, pool,
                                    merge_clusters, texts, copy_groups):
                    for story in part:
                        bases.append(row_of[story.base])
                        if on_story is None:
                            stories.append(story)
                        else:
                            on_story(story)
        else:
            bases = [_most_central(rows, closeness, frame, ids) for rows in groups]
        canonical[bases] = True
    clusters = sorted(
        (
            Cluster(cluster_of[rows[0]], tuple(sorted(ids[r] for r in rows)), ids[base])
            for rows, base in zip(groups, _group_bases(groups, canonical), strict=True)
        ),
        key=lambda c: c.cluster_id,
    )

    assignments = assignments_frame(frame, cluster_of, canonical, closeness)
    stats = {
        "articles": n,
        "clusters": len(clusters),
        "largest_cluster": max((c.size for c in clusters), default=0),
        "copy_pairs": copy_stats.pairs,
        "event_pairs": event_stats.pairs,
        "oversized_buckets": copy_stats.oversized_buckets + event_stats.oversized_buckets,
        "copies_collapsed": copy_groups.collapsed,
    }
    return ClusterResult(
        assignments=assignments,
        clusters=clusters,
        stories=stories,
        timings=timer.timings,
        candidate_pairs=len(pairs),
        pairs=pairs,
        stats=stats,
    )


_CHUNK = 5_000  # articles normalized at once: bounds the memory of token lists
# Threads that group LSH bands: each holds a band's sort temporaries (~50 MB at a million
# articles), and two already halve the band time.
_LSH_THREADS = 4
_MERGE_TASK_ARTICLES = 2_000  # articles per merge task sent to a worker process
_TEXT_TASK_ARTICLES = 1_000  # articles per task cleaning texts ahead of the merge
_LINK_TASK_ARTICLES = 5_000  # articles of components per linkage task
_SCORE_TASK_PAIRS = 50_000  # candidate pairs per scoring task
# From this many articles, workers are stopped while the single-process stages run: their
# ~300 MB each matters at the peak of a million-article run, while restarting them for
# the merge costs ~2.4 s (measured at 20k), which matters on small runs.
_STOP_IDLE_WORKERS_FROM = 200_000


@dataclass(frozen=True, slots=True)
class NormalizeTask:
    """One chunk of articles to normalize: what a worker process needs, and nothing more."""

    texts: list[str]
    titles: list[str]
    templates: frozenset[str]
    config: Config


@dataclass(frozen=True, slots=True)
class NormalizedChunk:
    """What survives normalization of a chunk: term counts and copies signatures."""

    counts: refine.Counts
    copy_sigs: np.ndarray
    has_copies: np.ndarray
    openings: excerpts.Openings
    timings: dict[str, float]


# One token-hash cache per process: hashes are pure, so sharing cannot change a value.
_HASHER = signatures.TokenHasher()


def _ready() -> None:
    """Nothing: a worker that runs it has imported this module, and so the whole pipeline."""


def normalize_chunk(task: NormalizeTask) -> NormalizedChunk:
    """Normalize, count terms and hash copies signatures of one chunk.

    Token lists and sentences are the bulk of a corpus in memory; nothing later needs
    them, so they never outlive their chunk. Module-level so worker processes can run it.
    """
    timer = StageTimer()
    sig = task.config.signatures
    hasher = _HASHER
    with timer.stage("normalize"):
        prepared = [
            prepare(text, title, task.templates)
            for text, title in zip(task.texts, task.titles, strict=True)
        ]
    with timer.stage("features"):
        counts = refine.count_terms([p.terms for p in prepared])
    with timer.stage("signatures"):
        sets = signatures.copy_shingles([p.tokens for p in prepared], sig, hasher)
        copy_sigs = signatures.MinHasher(sig.num_perm, sig.seed).signatures(sets)
        present = np.array([len(s) > 0 for s in sets], dtype=bool)
        openings = excerpts.Openings.of([p.tokens for p in prepared], task.config.clustering)
    return NormalizedChunk(counts, copy_sigs, present, openings, timer.timings)


def _normalize_and_hash(
    frame: pl.DataFrame,
    config: Config,
    timer: StageTimer,
    progress: Progress | None,
    pool: WorkerPool,
) -> tuple[refine.Counts, np.ndarray, np.ndarray, excerpts.Openings]:
    """Term counts, copies signatures and openings of every article, chunk by chunk.

    With more than one worker, chunks go to worker processes; their stage times then overlap,
    so the whole loop is timed as ``normalize`` (wall seconds).
    """
    n = frame.height
    with timer.stage("normalize"):
        templates = normalize.repeated_lines(
            zip(frame["source"], frame["text"], strict=True), config.normalize
        )

    def tasks() -> Iterator[NormalizeTask]:
        start = 0
        while start < n:
            part = frame.slice(start, guided_size(n - start, _CHUNK, pool.workers))
            start += part.height
            yield NormalizeTask(
                part["text"].to_list(), part["title"].fill_null("").to_list(), templates, config
            )

    parts: list[NormalizedChunk] = []
    done = 0
    parallel = pool.workers > 1 and n > _CHUNK
    with timer.stage("normalize") if parallel else contextlib.nullcontext():
        for chunk in pool.map(normalize_chunk, tasks(), parallel=parallel):
            parts.append(chunk)
            if not parallel:
                for name, seconds in chunk.timings.items():
                    timer.timings[name] = timer.timings.get(name, 0.0) + seconds
            done += chunk.copy_sigs.shape[0]
            release_memory()
            if progress:
                progress("normalize", done, n)
    if not parts:
        parts.append(normalize_chunk(NormalizeTask([], [], templates, config)))
    copy_sigs = np.concatenate([p.copy_sigs for p in parts])
    has_copies = np.concatenate([p.has_copies for p in parts])
    openings = excerpts.Openings.stack([p.openings for p in parts])
    count_parts = [p.counts for p in parts]
    del parts
    counts = refine.Counts.stack(count_parts, consume=True)
    release_memory()  # the chunks' pieces are freed: a corpus-sized block of heap
    return counts, copy_sigs, has_copies, openings


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise).

    Normalizing a chunk allocates and frees millions of small strings; without this the
    process's RSS kept a large, growing share of them although Python had freed them.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # pragma: no cover - musl or an unusual libc
        return None


_LIBC = _load_libc()


def _guided_batches(
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


def _pair_scores(
    features: refine.Features, pairs: np.ndarray, pool: WorkerPool | None
) -> np.ndarray:
    """``refine.pair_scores``, chunks of pairs scored on the workers (``pool``) when there
    are enough of them. scipy holds the GIL, so threads would not help; the workers map
    the features from a temporary folder instead of each being sent a copy. Each pair's
    score is computed alone, so the values do not depend on where.
    """
    if pool is None or pool.workers <= 1 or len(pairs) < 2 * _SCORE_TASK_PAIRS:
        return refine.pair_scores(features, pairs)
    with tempfile.TemporaryDirectory(prefix="dedup-features-") as folder:
        try:
            refine.save_features(features, Path(folder))
        except OSError:  # no room for the temporary copy: score here instead
            return refine.pair_scores(features, pairs)
        tasks = (ScoreTask(folder, pairs[start : start + _SCORE_TASK_PAIRS])
                 for start in range(0, len(pairs), _SCORE_TASK_PAIRS))
        return np.concatenate(list(pool.map(score_task, tasks)))


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


def _link(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    features: refine.Features,
    config: Config,
    pool: WorkerPool,
    groups: copies.CopyGroups | None = None,
    openings: excerpts.Openings | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``clustering.cluster_with_cohesion``, components linked on the workers.

    Components are independent: a task carries a batch of them with their own rows of
    the features, and the same values come back whichever process links them. A
    component above ``max_component_size`` (cut by its pairs first) is linked here.
    With ``groups``, only representatives are linked (``copies.expand`` adds the rest),
    each weighing its group's size in cohesion.
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

    if pool.workers <= 1 or sum(len(rows) for rows in batches) <= _LINK_TASK_ARTICLES:
        linked += clustering.link_components(batches, pairs, scores, similarity, cfg,
                                             weights=weights, openings=openings)
    else:
        sent: deque[np.ndarray] = deque()  # each task's rows, until its groups come back

        def tasks() -> Iterator[LinkTask]:
            for batch in _guided_batches(batches, _LINK_TASK_ARTICLES, pool.workers):
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


def _text_tasks(frame: pl.DataFrame, config: Config) -> Iterator[TextTask]:
    for start in range(0, frame.height, _TEXT_TASK_ARTICLES):
        part = frame.slice(start, _TEXT_TASK_ARTICLES)
        yield TextTask(part["text"].to_list(), part["title"].fill_null("").to_list(),
                       config.merge)


def merge_clusters_as_lines(task: MergeTask) -> tuple[list[str], str]:
    """``merge_clusters``, as each story's base and the stories' ``stories.jsonl`` lines.

    Serializing in the worker spares the parent unpickling every story only to write it.
    """
    stories = merge_clusters(task)
    return [s.base for s in stories], "".join(json_line(story_to_dict(s)) for s in stories)


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

    def tasks() -> Iterator[MergeTask]:
        for batch in _guided_batches(groups, _MERGE_TASK_ARTICLES, pool.workers):
            sizes.append(len(batch))
            yield _merge_task(frame, batch, cluster_of, config, texts, copy_groups, ids)

    parallel = frame.height > _MERGE_TASK_ARTICLES
    done = 0
    for result in pool.map(func, tasks(), parallel=parallel):
        yield result
        before, done = done, done + sizes.popleft()
        if progress and (done // 1000 > before // 1000 or done == len(groups)):
            progress("merge", done, len(groups))


def _merge_task(
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


def _most_central(
    rows: np.ndarray, closeness: np.ndarray, frame: pl.DataFrame, ids: list[str]
) -> int:
    """Most cohesive member; ties by earliest date (undated last), then id."""
    published = frame["published"]
    return int(
        min(
            rows,
            key=lambda r: (-float(closeness[r]), _date_key(published[int(r)]), ids[int(r)]),
        )
    )


def _group_bases(groups: list[np.ndarray], canonical: np.ndarray) -> list[int]:
    return [int(rows[canonical[rows]][0]) for rows in groups]


def _date_key(value: object) -> tuple[int, str]:
    return (0, value.isoformat()) if isinstance(value, datetime) else (1, "")
