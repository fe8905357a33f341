"""The first stage of every driver: input coercion and normalization into term counts.

``articles_frame`` turns whatever a caller passes into one frame shape; ``prepare`` turns
one article into sentences, tokens and term lists (``StoryIndex`` calls it per article);
``normalize_frame`` does it for a frame, chunk by chunk (the batch pipeline on its worker
processes, the Dask engine once per partition), keeping only what later stages read: term
counts and copies signatures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

import numpy as np
import polars as pl

from dedup import excerpts, normalize, refine, signatures
from dedup.config import Config
from dedup.io.errors import DedupInputError
from dedup.io.readers import dates_column, parse_date
from dedup.parallel import WorkerPool, guided_size
from dedup.records import Article
from dedup.timing import StageTimer, release_memory

__all__ = [
    "CORE_COLUMNS",
    "NormalizeTask",
    "Normalized",
    "NormalizedChunk",
    "Prepared",
    "Progress",
    "articles_frame",
    "normalize_chunk",
    "normalize_frame",
    "prepare",
    "publication_days",
    "ready",
    "to_articles",
]

CORE_COLUMNS = ("id", "text", "title", "published", "source")


# ``progress(stage, done, total)``, called during long loops.
Progress = Callable[[str, int, int], None]


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
    elif isinstance(articles, (str, bytes, PurePath)):
        raise DedupInputError(
            f"{articles!r}: pass articles (a polars DataFrame, dicts or Article records), not "
            "a path; read files with dedup.io.read_articles([path]).frame")
    else:
        frame = pl.DataFrame([_row(a, k) for k, a in enumerate(articles)],
                             infer_schema_length=None)
    if frame.width == 0:
        frame = pl.DataFrame(schema={"id": pl.String, "text": pl.String})
    for column in ("id", "text"):
        if column not in frame.columns:
            raise DedupInputError(
                f"input has no {column!r} column (columns: {', '.join(frame.columns)}); "
                f"rename that column (the CLI maps one with --{column}-col)"
            )
    frame = frame.with_columns(
        _as_text(frame[c]) for c in ("text", "title", "source") if c in frame.columns)
    frame = frame.with_columns(
        pl.col("id").cast(pl.String), pl.col("text").cast(pl.String).fill_null("")
    )
    _check_ids(frame)
    for column, dtype in (("title", pl.String), ("source", pl.String)):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(column))
    if "published" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Datetime("us")).alias("published"))
    else:
        frame = frame.with_columns(_published(frame))
    extras = [c for c in frame.columns if c not in CORE_COLUMNS]
    return frame.select(*CORE_COLUMNS, *extras)


def _as_text(column: pl.Series) -> pl.Series:
    """A text column as strings: categories (``pl.from_arrow`` reads dictionary arrays so)
    as their labels, and a column with no value at all (pandas' all-NaN floats) as nulls; any
    other type is a ``DedupInputError``, since its values are not text."""
    if column.dtype in (pl.String, pl.Categorical) or isinstance(column.dtype, pl.Enum):
        return column.cast(pl.String)
    missing = column.dtype.is_float() and column.is_nan().fill_null(True).all()
    if column.dtype == pl.Null or missing:
        return pl.Series(column.name, [None] * len(column), dtype=pl.String)
    raise DedupInputError(f"column {column.name!r} holds {column.dtype} values, not strings")


def _check_ids(frame: pl.DataFrame) -> None:
    """Every id present and unique, or a ``DedupInputError`` naming the row or id."""
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
            f"duplicate id {duplicated[0]!r}: ids must be unique; leave the repeats out (the "
            "CLI's --skip-bad-rows rejects them)"
        )


def _published(frame: pl.DataFrame) -> pl.Series:
    """The ``published`` column as naive-UTC datetimes (ISO 8601 strings, dates and zoned
    datetimes read as the file readers read them), or a ``DedupInputError`` naming the
    first article whose date is unreadable."""
    found = dates_column(frame["published"])
    if found is not None:
        return found
    for row_id, value in zip(frame["id"], frame["published"], strict=True):
        _date(row_id, value)
    raise DedupInputError(f"column 'published' holds {frame['published'].dtype} values, not "
                          "dates: pass datetimes or ISO 8601 strings")


def _date(row_id: Any, value: Any) -> datetime | None:
    """``io.parse_date`` of one article's date, or a ``DedupInputError`` naming it."""
    try:
        return parse_date(value)
    except (ValueError, TypeError):
        raise DedupInputError(
            f"article {row_id!r}: unreadable date {value!r} in 'published': use a datetime "
            "or ISO 8601 (2024-03-22 or 2024-03-22T18:00:00) or RFC 2822") from None


def _row(article: Article | Mapping[str, Any], position: int) -> dict[str, Any]:
    """One input record as a row; dates parsed here, so that datetimes and ISO strings
    can be mixed across records."""
    if not isinstance(article, (Article, Mapping)):
        raise DedupInputError(f"article at row {position + 1} is of type {type(article).__name__}, "
                              "not a dict or an Article record")
    if isinstance(article, Article):
        row = {
            "id": article.id,
            "text": article.text,
            "title": article.title,
            "published": article.published,
            "source": article.source,
            **article.extra,
        }
    else:
        row = dict(article)
    for column in ("text", "title", "source"):
        value = row.get(column)
        if isinstance(value, float) and math.isnan(value):
            row[column] = None  # pandas' missing value (``to_dict("records")``)
        elif value is not None and not isinstance(value, str):
            raise DedupInputError(f"article {row.get('id')!r}: {column} is "
                                  f"{type(value).__name__}, not a string")
    if row.get("published") is not None:
        row["published"] = _date(row.get("id"), row["published"])
    return row


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


def publication_days(frame: pl.DataFrame) -> np.ndarray:
    """Publication time in days since the epoch; NaN where unknown (the date factor's
    input in ``refine.weigh_features``)."""
    seconds = frame["published"].cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64)
    return seconds.fill_null(float("nan")).to_numpy() / 86400.0


def prepare(text: str, title: str, templates: frozenset[str], *, body: bool = True
            ) -> Prepared:
    """Normalize one article into sentences, tokens and TF-IDF term lists.

    ``body=False`` leaves ``terms.body`` empty, for a caller that reads the body terms off
    its ``tokens`` (those that are not ``normalize.STOPWORDS``), as ``StoryIndex`` does.
    """
    return prepare_lines(normalize.strip_boilerplate(normalize.clean_text(text), templates),
                         title, body=body)


def prepare_lines(lines: list[str], title: str, *, body: bool = True) -> Prepared:
    """``prepare`` of an article whose text is already cleaned and stripped of boilerplate
    (``lines``): what follows depends on nothing else, so a caller that meets the same
    lines and title again (verbatim syndication under other furniture) may reuse it."""
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


@dataclass(frozen=True, slots=True)
class NormalizeTask:
    """One chunk of articles to normalize: what a worker process needs, and nothing more."""

    texts: list[str]
    titles: list[str]
    templates: frozenset[str]
    config: Config


@dataclass(frozen=True, slots=True)
class NormalizedChunk:
    """What survives normalization of a chunk: term counts, copies signatures, openings."""

    counts: refine.Counts
    copy_sigs: np.ndarray
    has_copies: np.ndarray
    openings: excerpts.Openings
    timings: dict[str, float]


@dataclass(frozen=True, slots=True)
class Normalized:
    """A frame's term counts, copies signatures (``has_copies``: a signature exists) and
    openings (``dedup.excerpts``, days unknown)."""

    counts: refine.Counts
    copy_sigs: np.ndarray
    has_copies: np.ndarray
    openings: excerpts.Openings


# One token-hash cache per process: hashes are pure, so sharing cannot change a value.
_HASHER = signatures.TokenHasher()


def ready() -> None:
    """Nothing: a worker that runs it has imported the stages (``WorkerPool.warm``)."""


def normalize_chunk(task: NormalizeTask) -> NormalizedChunk:
    """Normalize, count terms and hash copies signatures of one chunk.

    Token lists and sentences are the bulk of a corpus in memory; nothing later needs
    them, so they never outlive their chunk. Module-level so worker processes can run it.
    """
    timer = StageTimer()
    sig = task.config.signatures
    with timer.stage("normalize"):
        prepared = [
            prepare(text, title, task.templates)
            for text, title in zip(task.texts, task.titles, strict=True)
        ]
    with timer.stage("features"):
        counts = refine.count_terms([p.terms for p in prepared])
    with timer.stage("signatures"):
        sets = signatures.copy_shingles([p.tokens for p in prepared], sig, _HASHER)
        copy_sigs = signatures.MinHasher(sig.num_perm, sig.seed).signatures(sets)
        present = np.array([len(s) > 0 for s in sets], dtype=bool)
        openings = excerpts.Openings.of([p.tokens for p in prepared], task.config.clustering)
    return NormalizedChunk(counts, copy_sigs, present, openings, timer.timings)


def normalize_frame(
    frame: pl.DataFrame,
    templates: frozenset[str],
    config: Config,
    chunk: int,
    pool: WorkerPool | None = None,
    on_chunk: Progress | None = None,
    timer: StageTimer | None = None,
) -> Normalized:
    """``normalize_chunk`` over a frame in chunks of at most ``chunk`` articles (on
    ``pool``'s workers when it has several and there is more than a chunk), stacked;
    without a pool, in chunks of exactly ``chunk`` in this process.

    ``timer`` receives each chunk's stage seconds when chunks run in this process;
    ``on_chunk("normalize", done, total)`` follows progress. Chunking never changes a value.
    """
    n = frame.height
    workers = pool.workers if pool is not None else 1
    parallel = pool is not None and workers > 1 and n > chunk

    def tasks() -> Iterator[NormalizeTask]:
        start = 0
        while start < n:
            # A pool's tasks shrink near the end so its workers finish together.
            size = guided_size(n - start, chunk, workers) if pool is not None else chunk
            part = frame.slice(start, size)
            start += part.height
            yield NormalizeTask(
                part["text"].to_list(), part["title"].fill_null("").to_list(), templates, config
            )

    chunks = (pool.map(normalize_chunk, tasks(), parallel=parallel) if pool is not None
              else map(normalize_chunk, tasks()))
    parts: list[NormalizedChunk] = []
    done = 0
    for part in chunks:
        parts.append(part)
        if timer is not None and not parallel:
            timer.add(part.timings)
        done += part.copy_sigs.shape[0]
        release_memory()  # a chunk's token lists are freed: hand the heap back
        if on_chunk:
            on_chunk("normalize", done, n)
    if not parts:
        parts.append(normalize_chunk(NormalizeTask([], [], templates, config)))
    copy_sigs = np.concatenate([p.copy_sigs for p in parts])
    has_copies = np.concatenate([p.has_copies for p in parts])
    openings = excerpts.Openings.stack([p.openings for p in parts])
    count_parts = [p.counts for p in parts]
    del parts
    counts = refine.Counts.stack(count_parts, consume=True)
    release_memory()  # the chunks' pieces are freed: a corpus-sized block of heap
    return Normalized(counts, copy_sigs, has_copies, openings)
