"""The batch pipeline: the one place that connects the stages and times each by name."""

from __future__ import annotations

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


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _days(frame: pl.DataFrame) -> np.ndarray:
    """Publication time in days since the epoch; NaN where unknown."""
    seconds = frame["published"].cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64)
    return seconds.fill_null(float("nan")).to_numpy() / 86400.0


def cluster(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    config: Config | None = None,
    *,
    progress: Progress | None = None,
) -> ClusterResult:
    """Cluster articles by event.

    Args:
        articles: a polars DataFrame with ``id`` and ``text`` (and optionally ``title``,
            ``published``, ``source``, anything else passed through), or an iterable of
            dicts with those keys or of ``Article`` records.
        config: thresholds for every stage; defaults are tuned on ecbplus-dev.
        progress: called as ``progress(stage, done, total)`` during long loops.

    Example:
        >>> from dedup import cluster
        >>> r = cluster([{"id": "a", "text": "Quake hits Lima"}, {"id": "b", "text": ""}])
        >>> r.assignments.height
        2
    """
    config = config or Config()
    timer = _Timer()
    with timer.stage("read"):
        frame = articles_frame(articles)
    n = frame.height
    ids: list[str] = frame["id"].to_list()
    texts: list[str] = frame["text"].to_list()
    titles: list[str] = frame["title"].fill_null("").to_list()
    sources: list[str | None] = frame["source"].to_list()

    with timer.stage("normalize"):
        templates = normalize.repeated_lines(zip(sources, texts, strict=True), config.normalize)
        prepared = []
        for i, (text, title) in enumerate(zip(texts, titles, strict=True)):
            prepared.append(prepare(text, title, templates))
            if progress and (i + 1) % 1000 == 0:
                progress("normalize", i + 1, n)
    with timer.stage("features"):
        features = refine.build_features(
            [p.terms for p in prepared], config.refine, days=_days(frame)
        )
    with timer.stage("signatures"):
        sig = config.signatures
        hasher, minhasher = signatures.TokenHasher(), signatures.MinHasher(sig.num_perm, sig.seed)
        copy_sets = signatures.copy_shingles([p.tokens for p in prepared], sig, hasher)
        event_sets = signatures.term_shingles(features.salient, hasher)
        copy_sigs = minhasher.signatures(copy_sets)
        event_sigs = minhasher.signatures(event_sets)
    with timer.stage("candidates"):
        cand = config.candidates
        copy_pairs, copy_stats = candidates.lsh_pairs(
            copy_sigs,
            np.array([len(s) > 0 for s in copy_sets], dtype=bool),
            threshold=cand.copies_threshold,
            max_bucket_size=cand.max_bucket_size,
        )
        event_pairs, event_stats = candidates.lsh_pairs(
            event_sigs,
            np.array([len(s) > 0 for s in event_sets], dtype=bool),
            threshold=cand.events_threshold,
            max_bucket_size=cand.max_bucket_size,
            min_collisions=cand.events_min_collisions,
            max_per_doc=cand.events_max_per_doc,
        )
        pairs = candidates.union_pairs(copy_pairs, event_pairs)
    with timer.stage("refine"):
        scores = refine.pair_scores(features, pairs)

    def similarity(rows: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, rows)

    with timer.stage("cluster"):
        groups = clustering.cluster_documents(n, pairs, scores, similarity, config.clustering)
        cluster_of = np.empty(n, dtype=object)
        canonical = np.zeros(n, dtype=bool)
        closeness = np.ones(n, dtype=np.float64)
        clusters: list[Cluster] = []
        published = frame["published"].to_list()
        for rows in groups:
            member_ids = [ids[r] for r in rows]
            cid = clustering.cluster_id(member_ids)
            coh = clustering.cohesion(rows, similarity)
            # Most central member first; ties by earliest date (undated last), then id.
            best = min(
                range(len(rows)),
                key=lambda k: (-round(float(coh[k]), 12), _date_key(published[rows[k]]),
                               member_ids[k]),
            )
            cluster_of[rows] = cid
            closeness[rows] = np.round(coh, 6)
            canonical[rows[best]] = True
            clusters.append(Cluster(cid, tuple(sorted(member_ids)), member_ids[best]))
        clusters.sort(key=lambda c: c.cluster_id)

    assignments = pl.DataFrame(
        {
            "id": ids,
            "cluster_id": pl.Series(cluster_of.tolist(), dtype=pl.String),
            "is_canonical": canonical,
            "similarity": closeness,
        }
    ).hstack(frame.drop("id", "text"))
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
        timings=timer.timings,
        candidate_pairs=len(pairs),
        stats=stats,
    )


def _date_key(value: object) -> tuple[int, str]:
    return (0, value.isoformat()) if isinstance(value, datetime) else (1, "")
