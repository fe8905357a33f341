"""The batch pipeline: the one place that connects the stages and times each by name."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from dedup import candidates, clustering, normalize, refine, signatures
from dedup.config import Config
from dedup.merge import merge as merge_story
from dedup.records import Article, Cluster, Rejected, Story

Progress = Callable[[str, int, int], None]
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


def prepare(text: str, title: str, templates: frozenset[str]) -> Prepared:
    """Normalize one article into sentences, tokens and TF-IDF term lists."""
    lines = normalize.strip_boilerplate(normalize.clean_text(text), templates)
    sentences = normalize.split_sentences(lines)
    body = " ".join(lines)
    clean_title = normalize.clean_text(title).strip()
    tokens = normalize.tokens(body)
    return Prepared(
        sentences=sentences,
        tokens=tokens,
        terms=refine.DocumentTerms(
            body=[t for t in tokens if t not in normalize.STOPWORDS],
            names=normalize.names(sentences),
            title=normalize.content_tokens(clean_title),
            numbers=normalize.numbers(body),
            years=normalize.years(clean_title + " " + body),
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

    Example:
        >>> from dedup import cluster
        >>> r = cluster([{"id": "a", "text": "Quake hits Lima"}, {"id": "b", "text": ""}])
        >>> r.assignments.height
        2
    """
    config = config or Config()
    timer = StageTimer()
    with timer.stage("read"):
        frame = articles_frame(articles)
    n = frame.height
    ids: list[str] = frame["id"].to_list()

    counts, copy_sigs, has_copies = _normalize_and_hash(frame, config, timer, progress)
    with timer.stage("features"):
        features = refine.weigh_features(
            counts, counts.frequencies(), n, config.refine, days=_days(frame)
        )
        del counts
    with timer.stage("signatures"):
        sig = config.signatures
        minhasher = signatures.MinHasher(sig.num_perm, sig.seed)
        event_sets = signatures.term_shingles(features.salient, signatures.TokenHasher())
        event_sigs = minhasher.signatures(event_sets)
        has_events = np.array([len(s) > 0 for s in event_sets], dtype=bool)
        # ~30 strings per article: nothing later needs them, so they go now.
        features = dataclasses.replace(features, salient=[])
        del event_sets
    with timer.stage("candidates"):
        cand = config.candidates
        copy_pairs, copy_stats = candidates.lsh_pairs(
            copy_sigs,
            has_copies,
            threshold=cand.copies_threshold,
            max_bucket_size=cand.copies_max_bucket_size,
        )
        event_pairs, event_stats = candidates.lsh_pairs(
            event_sigs,
            has_events,
            threshold=cand.events_threshold,
            max_bucket_size=cand.events_max_bucket_size,
            min_collisions=cand.events_min_collisions,
            max_per_doc=cand.events_max_per_doc,
            split_depth=cand.events_split_depth,
        )
        pairs = candidates.union_pairs(copy_pairs, event_pairs)
        del copy_sigs, event_sigs, copy_pairs, event_pairs
    with timer.stage("refine"):
        scores = refine.pair_scores(features, pairs)

    def similarity(rows: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, rows)

    with timer.stage("cluster"):
        groups = clustering.cluster_documents(n, pairs, scores, similarity, config.clustering)
        cluster_of = np.empty(n, dtype=object)
        closeness = np.ones(n, dtype=np.float64)
        for rows in groups:
            cluster_of[rows] = clustering.cluster_id([ids[r] for r in rows])
            closeness[rows] = np.round(clustering.cohesion(rows, similarity), 6)

    stories: list[Story] = []
    canonical = np.zeros(n, dtype=bool)
    with timer.stage("merge"):
        if with_stories:
            stories = _stories(frame, groups, cluster_of, config, progress)
            row_of = {article_id: row for row, article_id in enumerate(ids)}
            bases = [row_of[story.base] for story in stories]
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
    stories.sort(key=lambda story: story.cluster_id)

    assignments = assignments_frame(frame, cluster_of, canonical, closeness)
    stats = {
        "articles": n,
        "clusters": len(clusters),
        "largest_cluster": max((c.size for c in clusters), default=0),
        "copy_pairs": copy_stats.pairs,
        "event_pairs": event_stats.pairs,
        "oversized_buckets": copy_stats.oversized_buckets + event_stats.oversized_buckets,
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


def _normalize_and_hash(
    frame: pl.DataFrame, config: Config, timer: StageTimer, progress: Progress | None
) -> tuple[refine.Counts, np.ndarray, np.ndarray]:
    """Normalize in chunks, keeping only term counts and copies signatures of each.

    Token lists and sentences are the bulk of a corpus in memory; nothing later needs
    them, so they never outlive their chunk.
    """
    n = frame.height
    texts: list[str] = frame["text"].to_list()
    titles: list[str] = frame["title"].fill_null("").to_list()
    sources: list[str | None] = frame["source"].to_list()
    sig = config.signatures
    hasher, minhasher = signatures.TokenHasher(), signatures.MinHasher(sig.num_perm, sig.seed)
    count_parts: list[refine.Counts] = []
    sig_parts: list[np.ndarray] = []
    present_parts: list[np.ndarray] = []
    with timer.stage("normalize"):
        templates = normalize.repeated_lines(zip(sources, texts, strict=True), config.normalize)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        with timer.stage("normalize"):
            prepared = [prepare(texts[i], titles[i], templates) for i in range(start, stop)]
        with timer.stage("features"):
            count_parts.append(refine.count_terms([p.terms for p in prepared]))
        with timer.stage("signatures"):
            sets = signatures.copy_shingles([p.tokens for p in prepared], sig, hasher)
            sig_parts.append(minhasher.signatures(sets))
            present_parts.append(np.array([len(s) > 0 for s in sets], dtype=bool))
        if progress:
            progress("normalize", stop, n)
    if not count_parts:
        count_parts.append(refine.count_terms([]))
        sig_parts.append(np.empty((0, sig.num_perm), dtype=np.uint32))
        present_parts.append(np.empty(0, dtype=bool))
    return (
        refine.Counts.stack(count_parts),
        np.concatenate(sig_parts),
        np.concatenate(present_parts),
    )


def _stories(
    frame: pl.DataFrame,
    groups: list[np.ndarray],
    cluster_of: np.ndarray,
    config: Config,
    progress: Progress | None,
) -> list[Story]:
    """One merged story per cluster, in the order of ``groups``."""
    stories = []
    for k, rows in enumerate(groups):
        # Records per cluster, not for the whole corpus at once: a second copy of every
        # text was the largest item in peak memory.
        stories.append(merge_story(to_articles(frame[rows]), str(cluster_of[rows[0]]), config))
        if progress and ((k + 1) % 1000 == 0 or k + 1 == len(groups)):
            progress("merge", k + 1, len(groups))
    return stories


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
