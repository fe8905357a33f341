"""The batch clustering of ``pipeline.cluster`` on a Dask cluster, partition by partition.

Why: one machine tops out near a few million articles (DESIGN.md, "Scale"). Here every
stage runs where its partition of articles lives, and what must meet (template lines,
document frequencies, LSH buckets, pair partners, graph components) meets through
hash-partitioned shuffles of small numpy arrays; no step pulls the articles into the
client. The result is the local engine's result, byte for byte: the same clusters, ids,
canonical articles, similarities and stories for any number of partitions or workers
(tests/test_dask.py proves it), because

- documents keep their local index: partition order, then row order inside a partition;
- TF-IDF rows are row-local once document frequencies are summed (``refine.weigh``);
- LSH buckets are grouped exactly (``candidates.bucket_pairs`` on band + key rows, so a
  hash only decides *where* a bucket is grouped, never *whether* two keys are equal);
- a pair's score is ``refine.pair_scores`` on the pair's two rows, whichever partitions
  hold them, and linkage sees a component's rows in index order, as the local engine does.

Dask is optional: this module imports it only when a function here runs.

Example:
    >>> from dedup.engine_dask import cluster_dataset
    >>> result = cluster_dataset("articles/*.parquet", scheduler="tcp://10.0.0.5:8786")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import glob
import itertools
import operator
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from dedup import (
    candidates,
    clustering,
    copies,
    excerpts,
    io,
    normalize,
    outputs,
    refine,
    signatures,
)
from dedup.config import ClusterConfig, Config, NormalizeConfig
from dedup.merge import merge as merge_story
from dedup.merge import story_to_dict
from dedup.pipeline import (
    ClusterResult,
    NormalizeTask,
    StageTimer,
    articles_frame,
    assignments_frame,
    normalize_chunk,
    release_memory,
    to_articles,
)
from dedup.records import Article, Cluster, Rejected, Story

__all__ = ["DaskEngineError", "cluster_dask", "cluster_dataset"]

INSTALL_HINT = "the dask engine needs dask.distributed: pip install 'dedup[dask]'"
# Articles per partition when the caller does not say: big enough that per-task overhead
# (milliseconds) is noise, small enough that a partition's features fit a 2 GB worker.
DEFAULT_PARTITION_ROWS = 10_000  # measured to fit 4 GB workers at 100k; 50,000 did not
_CHUNK = 5_000  # articles normalized at once inside a partition (bounds token lists)
# Candidate pairs scored at once per worker. Each pair ships its left article's feature row
# (about 1 KB on news text) to the right article's partition; all at once, a million
# articles' 13.6M pairs overflowed two 4 GB workers.
_WAVE_PAIRS_PER_WORKER = 500_000


class DaskEngineError(RuntimeError):
    """The cluster could not finish the run (workers died, scheduler lost); nothing written."""


def _distributed() -> Any:
    """The ``distributed`` module, or a clear error naming the extra to install."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return distributed


def register_sizes(sizeof: Any) -> None:
    """Teach Dask the size of what the stages hold (the ``dask.sizeof`` entry point).

    Dask measures a stored result with ``dask.sizeof``. It does not know polars frames or
    dataclasses and takes them for ~100 bytes. Then a worker's partitions look like
    unmanaged memory: Dask never spills them to disk, and the nanny kills the worker
    when it reaches its limit. Dask calls this when it loads ``dask.sizeof``, in every
    process, so importing this module never imports Dask.
    """

    @sizeof.register(pl.DataFrame)
    def _frame(frame: pl.DataFrame) -> int:
        return int(frame.estimated_size())

    def _fields(value: Any) -> int:
        return 64 + sum(int(sizeof(getattr(value, f.name))) for f in dataclasses.fields(value))

    for kind in (_Prepared, _Weighed, _Rows, _Graph, refine.Features, refine.Counts,
                 refine.Salient):
        sizeof.register(kind)(_fields)


# --------------------------------------------------------------------------- routing


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a stable hash of integers (Python's hash() is per process)."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _route(values: np.ndarray, buckets: int) -> np.ndarray:
    return (_mix(values) % np.uint64(buckets)).astype(np.int64)


def _route_rows(keys: np.ndarray, buckets: int) -> np.ndarray:
    h = np.zeros(len(keys), dtype=np.uint64)
    for column in keys.T:
        h = _mix(h ^ column.astype(np.uint64))
    return (h % np.uint64(buckets)).astype(np.int64)


def _route_text(text: str, buckets: int) -> int:
    return zlib.crc32(text.encode("utf-8")) % buckets


def _take(value: Any, index: np.ndarray) -> Any:
    if isinstance(value, pl.DataFrame):
        return value[pl.Series(index, dtype=pl.Int64)] if len(index) else value.clear()
    return value[index]


def _split(dest: np.ndarray, buckets: int, *arrays: Any) -> list[tuple[Any, ...]]:
    """Rows of ``arrays`` grouped by destination bucket, order kept inside each."""
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(buckets + 1))
    return [
        tuple(_take(a, order[bounds[b] : bounds[b + 1]]) for a in arrays) for b in range(buckets)
    ]


def _owner(gidx: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Partition holding each global document index (``offsets`` has P + 1 entries)."""
    return np.searchsorted(offsets, gidx, side="right") - 1


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _Piece:
    """One lazily read input partition: a file, or rows [offset, offset + length) of one."""

    path: str
    fmt: str
    offset: int = 0
    length: int | None = None


@dataclass
class _Read:
    """A partition as read by a worker: rows, each row's input line, rejected rows."""

    frame: pl.DataFrame
    lines: list[int | None]
    rejected: list[Rejected]
    error: str | None = None


def _expand(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """Files named by paths or globs, in the order given (each glob sorted)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[str] = []
    for item in items:
        text = str(item)
        if text == "-":
            raise io.InputError("the dask engine reads files, not stdin: save the input first")
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise io.InputError(f"{text}: no file matches this pattern")
            out.extend(matches)
        elif not Path(text).exists():
            raise io.InputError(f"{text}: no such file or directory")
        else:
            out.append(text)
    return out


def _plan(files: list[str], fmt: str | None, partitions: int | None) -> list[_Piece]:
    """Partitions of the input: Parquet files sliced by rows, other formats whole files.

    Only Parquet metadata (row counts) is read here, on the client.
    """
    kinds = [io.detect_format(f, fmt) for f in files]
    rows = {f: _parquet_rows(f) for f, k in zip(files, kinds, strict=True) if k == "parquet"}
    total = sum(rows.values())
    pieces: list[_Piece] = []
    for f, kind in zip(files, kinds, strict=True):
        if kind != "parquet":
            pieces.append(_Piece(f, kind))
            continue
        if partitions is None:
            count = max(1, -(-rows[f] // DEFAULT_PARTITION_ROWS))
        else:
            count = max(1, round(partitions * rows[f] / max(total, 1)))
        count = max(1, min(count, rows[f]))
        bounds = np.linspace(0, rows[f], count + 1).round().astype(int)
        pieces.extend(
            _Piece(f, kind, int(a), int(b - a)) for a, b in itertools.pairwise(bounds)
        )
    return pieces


def _parquet_rows(path: str) -> int:
    try:
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    except Exception as err:  # polars raises several types for unreadable files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise io.InputError(f"{path}: cannot read ({first})") from None


def _read_piece(piece: _Piece, columns: io.Columns, skip_bad_rows: bool,
                coerce_ids: bool = False) -> _Read:
    """Read one partition on a worker with the rules of ``io.read_articles`` (bad rows, dates,
    column mapping); duplicate ids across partitions are found later, by a shuffle."""
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    rejected: list[Rejected] = []

    bad = io.bad_row_handler(skip_bad_rows, rejected)
    try:
        for line, raw in _piece_records(piece, bad):
            article = io.map_row(raw, columns, piece.path, line, bad, coerce_ids=coerce_ids)
            if article is not None:
                rows.append(article)
                lines.append(line)
    except io.InputError as err:
        return _Read(io.articles_table([]), [], rejected, str(err))
    except OSError as err:
        return _Read(io.articles_table([]), [], rejected,
                     f"{piece.path}: cannot read ({err.strerror or err})")
    return _Read(io.articles_table(rows), lines, rejected)


def _piece_records(piece: _Piece, bad: io.Bad) -> Iterator[tuple[int | None, dict[str, Any]]]:
    if piece.fmt != "parquet":
        yield from io.records(piece.path, piece.fmt, None, bad)
        return
    try:
        frame = pl.scan_parquet(piece.path).slice(piece.offset, piece.length).collect()
    except Exception as err:  # polars raises several types for unreadable files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise io.InputError(f"{piece.path}: cannot read ({first})") from None
    yield from enumerate(frame.iter_rows(named=True), start=piece.offset + 1)


def _frame_of(read: _Read) -> pl.DataFrame:
    return articles_frame(read.frame)


def _id_keys(read: _Read, part: int, buckets: int) -> list[list[tuple[str, int, int, int | None]]]:
    out: list[list[tuple[str, int, int, int | None]]] = [[] for _ in range(buckets)]
    for row, (article_id, line) in enumerate(zip(read.frame["id"], read.lines, strict=True)):
        out[_route_text(article_id, buckets)].append((article_id, part, row, line))
    return out


def _duplicates(
    *slices: list[tuple[str, int, int, int | None]],
) -> list[tuple[tuple[str, int, int, int | None], tuple[str, int, int, int | None]]]:
    """(repeat, first occurrence) for every id seen more than once, first = earliest row."""
    first: dict[str, tuple[str, int, int, int | None]] = {}
    repeats = []
    for entry in sorted((e for s in slices for e in s), key=lambda e: (e[1], e[2])):
        if entry[0] in first:
            repeats.append((entry, first[entry[0]]))
        else:
            first[entry[0]] = entry
    return repeats


def _drop_rows(read: _Read, rows: list[int]) -> _Read:
    keep = np.setdiff1d(np.arange(read.frame.height), np.asarray(rows, dtype=np.int64))
    return _Read(_take(read.frame, keep), [read.lines[k] for k in keep], read.rejected)


# --------------------------------------------------------------------------- stages


def _template_lines(
    frame: pl.DataFrame, config: NormalizeConfig, buckets: int
) -> list[Counter[tuple[str, str]]]:
    """Per-partition counts of ``normalize.repeated_lines``, split by (source, line)."""
    out: list[Counter[tuple[str, str]]] = [Counter() for _ in range(buckets)]
    for source, text in zip(frame["source"], frame["text"], strict=True):
        if not source:
            continue
        lines = {ln.strip().casefold() for ln in text.split("\n") if ln.strip()}
        for ln in lines:
            if len(ln.split()) <= config.template_max_words:
                # By line: a bucket sees every source of its lines (``normalize.templates``).
                out[_route_text(ln, buckets)][(source, ln)] += 1
    return out


def _templates(config: NormalizeConfig, *slices: Counter[tuple[str, str]]) -> frozenset[str]:
    total: Counter[tuple[str, str]] = Counter()
    for s in slices:
        total.update(s)
    return normalize.templates(total, config)


@dataclass
class _Prepared:
    counts: refine.Counts
    copy_sigs: np.ndarray
    has_copies: np.ndarray
    days: np.ndarray
    openings: excerpts.Openings


def _days(frame: pl.DataFrame) -> np.ndarray:
    """Publication time in days since the epoch; NaN where unknown (as the local engine)."""
    seconds = frame["published"].cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64)
    return seconds.fill_null(float("nan")).to_numpy() / 86400.0


def _prepare(frame: pl.DataFrame, config: Config, *template_parts: frozenset[str]) -> _Prepared:
    """Normalize, count terms and hash copies signatures of one partition, in chunks."""
    templates = frozenset().union(*template_parts)
    chunks = [normalize_chunk(NormalizeTask([], [], templates, config))]
    for start in range(0, frame.height, _CHUNK):
        part = frame.slice(start, _CHUNK)
        chunks.append(normalize_chunk(NormalizeTask(
            part["text"].to_list(), part["title"].fill_null("").to_list(), templates, config
        )))
        release_memory()  # a chunk's token lists are freed: hand the heap back (see there)
    copy_sigs = np.concatenate([c.copy_sigs for c in chunks])
    has_copies = np.concatenate([c.has_copies for c in chunks])
    openings = excerpts.Openings.stack([c.openings for c in chunks])
    parts = [c.counts for c in chunks]
    del chunks
    counts = refine.Counts.stack(parts, consume=True)
    release_memory()
    return _Prepared(counts=counts, copy_sigs=copy_sigs, has_copies=has_copies,
                     days=_days(frame), openings=openings)


def _copy_keys(prepared: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """``copies.signature_keys`` of a partition's copies signatures, and which are present."""
    return copies.signature_keys(prepared.copy_sigs), prepared.has_copies


def _copy_groups(*parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``copies.copy_groups`` over the whole corpus (8 bytes an article: one task holds a
    million): each global row's representative row."""
    keys = np.concatenate([p[0] for p in parts])
    present = np.concatenate([p[1] for p in parts])
    return copies.copy_groups(keys, present).group


def _excerpt_keys(prepared: _Prepared) -> excerpts.Openings:
    return prepared.openings.dated(prepared.days)


def _excerpt_edges(groups: np.ndarray, config: ClusterConfig, buckets: int,
                   *parts: excerpts.Openings) -> list[Any]:
    """``excerpts.edges`` over the whole corpus (one task: ~25 bytes an article), both ways,
    scored at the edge threshold as in the local engine, by component bucket."""
    whole = excerpts.Openings.stack(parts)
    found = excerpts.edges(whole.dated(whole.first, groups),
                           groups == np.arange(len(groups)), config.excerpt_max_days,
                           np.bincount(groups, minlength=len(groups)))
    src = np.concatenate((found[:, 0], found[:, 1]))
    dst = np.concatenate((found[:, 1], found[:, 0]))
    return _split(_route(src, buckets), buckets, src, dst,
                  np.full(len(src), config.edge_threshold))


def _count_representatives(groups: np.ndarray) -> int:
    return int(np.count_nonzero(groups == np.arange(len(groups))))


def _representatives(groups: np.ndarray, offset: int, m: int) -> np.ndarray:
    """Which of rows ``offset .. offset + m - 1`` represent their copy group."""
    return groups[offset : offset + m] == np.arange(offset, offset + m)


def _copy_edges(groups: np.ndarray, offset: int, m: int, buckets: int) -> list[Any]:
    """Edges (both ways, score 1) from each copy here to its representative, by component
    bucket: a copy group joins one component, and linkage expands it (``_link``)."""
    rows = np.arange(offset, offset + m)
    copy = rows[groups[offset : offset + m] != rows]
    rep = groups[copy]
    src, dst = np.concatenate((copy, rep)), np.concatenate((rep, copy))
    return _split(_route(src, buckets), buckets, src, dst, np.ones(len(src)))


def _frequencies(prepared: _Prepared, groups: np.ndarray, offset: int
                 ) -> dict[str, sp.csr_matrix]:
    """Document frequencies as sparse rows: a dense block is 8 MB, mostly zeros, per shard.
    A copy group counts once (its representative), as in the local engine."""
    counted = _representatives(groups, offset, len(prepared.has_copies))
    return {k: sp.csr_matrix(v.reshape(1, -1))
            for k, v in prepared.counts.frequencies(counted).items()}


def _add(*parts: dict[str, sp.csr_matrix]) -> dict[str, sp.csr_matrix]:
    return {k: sum((p[k] for p in parts[1:]), parts[0][k]).tocsr() for k in parts[0]}


@dataclass
class _Weighed:
    features: refine.Features
    signatures: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    openings: excerpts.Openings


def _weigh(prepared: _Prepared, totals: dict[str, sp.csr_matrix], n_docs: int,
           config: Config, groups: np.ndarray, offset: int) -> _Weighed:
    """Corpus-weighted TF-IDF rows (row-local given ``totals``) and events signatures;
    only copy groups' representatives are candidates."""
    is_rep = _representatives(groups, offset, len(prepared.has_copies))
    dense = {k: v.toarray().ravel().astype(np.int64) for k, v in totals.items()}
    features = refine.weigh_features(prepared.counts, dense, n_docs, config.refine,
                                     days=prepared.days)
    sig = config.signatures
    sets = signatures.column_shingles(features.salient.offsets, features.salient.columns)
    event_sigs = signatures.MinHasher(sig.num_perm, sig.seed).signatures(sets)
    return _Weighed(
        features=dataclasses.replace(features, salient=refine.Salient.empty()),
        signatures={"copies": prepared.copy_sigs, "events": event_sigs},
        present={"copies": prepared.has_copies & is_rep,
                 "events": np.array([len(s) > 0 for s in sets], dtype=bool) & is_rep},
        openings=prepared.openings,
    )


def _features_only(weighed: _Weighed) -> _Weighed:
    return _Weighed(weighed.features, {}, {}, weighed.openings)


def _band_entries(weighed: _Weighed, which: str, offset: int, bands: int, rows: int,
                  depth: int, buckets: int) -> list[tuple[np.ndarray, ...]]:
    """(band, key...) rows, global doc index and the min-hashes that split a crowded bucket
    (``candidates.split_columns``) of every present document, by bucket of (band, key)."""
    sigs = weighed.signatures[which][weighed.present[which]]
    local = np.flatnonzero(weighed.present[which])
    m = len(local)
    keys = sigs[:, : bands * rows].reshape(m, bands, rows).transpose(1, 0, 2)
    keys = np.concatenate(
        (np.repeat(np.arange(bands, dtype=np.uint32), m)[:, None], keys.reshape(-1, rows)), axis=1
    )
    docs = np.tile(local.astype(np.int64) + offset, bands)
    extra = [candidates.split_columns(sigs, band, bands, rows, depth) for band in range(bands)]
    arrays = [keys, docs]
    if depth > 0:
        arrays.append(np.concatenate([e for e in extra if e is not None]))
    return _split(_route_rows(keys, buckets), buckets, *arrays)


def _band_buckets(n: int, max_bucket_size: int, chain: int, buckets: int,
                  *slices: tuple[np.ndarray, ...]) -> list[Any]:
    """Pairs of the LSH buckets grouped here, with their band counts, by pair bucket; then
    the number of crowded buckets; then the chains' codes (``candidates.chain_pairs``,
    kept whatever the caps), by pair bucket."""
    keys = np.concatenate([s[0] for s in slices])
    docs = np.concatenate([s[1] for s in slices])
    extra = np.concatenate([s[2] for s in slices]) if len(slices[0]) > 2 else None
    chained: list[np.ndarray] = []
    codes, oversized = candidates.bucket_pairs(keys, docs, n, max_bucket_size, extra, chain,
                                               chained)
    codes, counts = np.unique(codes, return_counts=True)
    linked = candidates.unique_sorted(np.concatenate(chained or [np.empty(0, np.int64)]))
    return [*_split(_route(codes, buckets), buckets, codes, counts), oversized,
            *_split(_route(linked, buckets), buckets, linked)]


def _chain_codes(*slices: tuple[np.ndarray]) -> np.ndarray:
    return candidates.unique_sorted(np.concatenate([s[0] for s in slices]
                                                   or [np.empty(0, np.int64)]))


def _count_pairs(min_collisions: int,
                 *slices: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Shared-band count per pair over every band, pairs below ``min_collisions`` dropped."""
    codes = np.concatenate([s[0] for s in slices] or [np.empty(0, np.int64)])
    counts = np.concatenate([s[1] for s in slices] or [np.empty(0, np.int64)])
    unique, inverse = np.unique(codes, return_inverse=True)
    total = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
    keep = total >= min_collisions
    return unique[keep], total[keep]


def _directions(pairs: tuple[np.ndarray, np.ndarray], n: int,
                buckets: int) -> list[tuple[np.ndarray, ...]]:
    codes, counts = pairs
    low, high = codes // n, codes % n
    src, dst = np.concatenate((low, high)), np.concatenate((high, low))
    return _split(_route(src, buckets), buckets, src, dst, np.concatenate((counts, counts)),
                  np.concatenate((codes, codes)))


def _strongest(limit: int, n: int, buckets: int,
               *slices: tuple[np.ndarray, ...]) -> list[Any]:
    """Codes of pairs among each document's ``limit`` strongest partners (ties: lower index),
    the rule of ``candidates.lsh_pairs(max_per_doc=...)``."""
    src, dst, strength, codes = (np.concatenate([s[k] for s in slices]) for k in range(4))
    chosen = candidates.strongest_entries(src, dst, strength, limit, n)
    kept = candidates.unique_sorted(codes[chosen])
    return [s[0] for s in _split(_route(kept, buckets), buckets, kept)]


def _union(copies: tuple[np.ndarray, np.ndarray], events: Any, capped: bool,
           copy_chain: np.ndarray, event_chain: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Candidate codes of one pair bucket, with its copies and events pair counts (chains
    included, as ``candidates.lsh_pairs`` counts them)."""
    event_codes = (candidates.unique_sorted(np.concatenate(events)) if capped else events[0])
    copy_codes = candidates.unique_sorted(np.concatenate((copies[0], copy_chain)))
    event_codes = candidates.unique_sorted(np.concatenate((event_codes, event_chain)))
    codes = candidates.unique_sorted(np.concatenate((copy_codes, event_codes)).astype(np.int64))
    return codes, len(copy_codes), len(event_codes)


def _by_left(union: tuple[np.ndarray, int, int], n: int,
             offsets: np.ndarray) -> list[np.ndarray]:
    codes = union[0]
    return [s[0] for s in _split(_owner(codes // n, offsets), len(offsets) - 1, codes)]


@dataclass
class _Rows:
    """Feature rows shipped to where they are needed, with their global indices."""

    gidx: np.ndarray
    matrix: sp.csr_matrix
    years: sp.csr_matrix
    days: np.ndarray
    keys: np.ndarray  # excerpts' opening keys and lengths (``excerpts.Openings``)
    short: np.ndarray


def _ship(weighed: _Weighed, local: np.ndarray, offset: int) -> _Rows:
    f = weighed.features
    days = f.days[local] if f.days is not None else np.full(len(local), np.nan)
    return _Rows(local + offset, f.matrix[local], f.years[local], days,
                 weighed.openings.keys[local], weighed.openings.short[local])


def _sorted_codes(*slices: np.ndarray) -> np.ndarray:
    return np.sort(np.concatenate(slices or (np.empty(0, np.int64),)))


def _waves(partitions: int, pairs: int, workers: int) -> list[tuple[int, int]]:
    """Destination partitions scored together, so that the left rows in flight stay near
    ``_WAVE_PAIRS_PER_WORKER`` per worker however large the corpus."""
    count = max(1, min(partitions, -(-pairs // (workers * _WAVE_PAIRS_PER_WORKER))))
    width = -(-partitions // count)
    return [(lo, min(lo + width, partitions)) for lo in range(0, partitions, width)]


def _left_rows(weighed: _Weighed, offset: int, n: int, offsets: np.ndarray, lo: int, hi: int,
               codes: np.ndarray) -> list[tuple[np.ndarray, _Rows]]:
    """The pairs whose left document is here and right document in partitions [lo, hi),
    sent to their right's partition with each needed left row once: a row per pair would
    repeat a document's features once per partner and exhaust a worker at a million
    articles."""
    dest = _owner(codes % n, offsets)
    wanted = (dest >= lo) & (dest < hi)
    out = []
    for (sent,) in _split(dest[wanted] - lo, hi - lo, codes[wanted]):
        out.append((sent, _ship(weighed, np.unique(sent // n) - offset, offset)))
    return out


def _subset(rows: _Rows, idx: np.ndarray) -> _Rows:
    return _Rows(rows.gidx[idx], rows.matrix[idx], rows.years[idx], rows.days[idx],
                 rows.keys[idx], rows.short[idx])


def _stack(parts: Sequence[_Rows], width: tuple[int, int]) -> _Rows:
    if not parts:
        return _Rows(np.empty(0, np.int64), sp.csr_matrix((0, width[0])),
                     sp.csr_matrix((0, width[1])), np.empty(0), np.empty(0, np.uint64),
                     np.empty(0, bool))
    return _Rows(np.concatenate([p.gidx for p in parts]),
                 sp.vstack([p.matrix for p in parts], format="csr"),
                 sp.vstack([p.years for p in parts], format="csr"),
                 np.concatenate([p.days for p in parts]),
                 np.concatenate([p.keys for p in parts]),
                 np.concatenate([p.short for p in parts]))


def _score(weighed: _Weighed, offset: int, n: int, threshold: float, buckets: int,
           *payloads: tuple[np.ndarray, _Rows]) -> list[Any]:
    """``refine.pair_scores`` of the pairs whose right document is here; accepted edges
    (score >= threshold) both ways, by component bucket."""
    f = weighed.features
    width = (f.matrix.shape[1], f.years.shape[1])
    codes = np.concatenate([p[0] for p in payloads] or [np.empty(0, np.int64)])
    left = _stack([p[1] for p in payloads], width)
    here = _ship(weighed, np.arange(f.matrix.shape[0]), offset)
    # Payloads come in partition order, each with its rows ascending: gidx is sorted.
    at = np.searchsorted(left.gidx, codes // n)
    pairs = np.stack([at, len(left.gidx) + codes % n - offset], axis=1)
    scores = refine.pair_scores(_features_of(f, _stack([left, here], width)), pairs)
    keep = scores >= threshold
    low, high, s = codes[keep] // n, codes[keep] % n, scores[keep]
    src, dst = np.concatenate((low, high)), np.concatenate((high, low))
    return _split(_route(src, buckets), buckets, src, dst, np.concatenate((s, s)))


# ------------------------------------------------------------ connected components


@dataclass
class _Graph:
    """Directed accepted edges grouped by source bucket, and the source nodes' labels."""

    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray
    nodes: np.ndarray  # sorted unique sources
    labels: np.ndarray  # current minimum node id known in each node's component

    def label_of(self, node: np.ndarray) -> np.ndarray:
        return self.labels[np.searchsorted(self.nodes, node)]


def _min_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum value per distinct key (keys sorted ascending in the result)."""
    if not len(keys):
        return keys, values
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    first = np.concatenate(([True], keys[1:] != keys[:-1]))
    return keys[first], values[first]


def _cc_init(*slices: tuple[np.ndarray, np.ndarray, np.ndarray]) -> _Graph:
    src, dst, score = (np.concatenate([s[k] for s in slices]) for k in range(3))
    order = np.lexsort((dst, src))
    src, dst, score = src[order], dst[order], score[order]
    nodes, lowest = _min_by(src, dst)
    return _Graph(src, dst, score, nodes, np.minimum(nodes, lowest))


def _cc_messages(graph: _Graph, buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every node tells its neighbours the smallest label it knows."""
    dst, label = _min_by(graph.dst, graph.label_of(graph.src))
    return _split(_route(dst, buckets), buckets, dst, label)


def _cc_receive(graph: _Graph, buckets: int,
                *messages: tuple[np.ndarray, np.ndarray]) -> list[Any]:
    """Take the smallest label heard; ask each node's label for its own (pointer jumping).

    Returns the requests by bucket, then the new graph, then how many labels changed.
    """
    node, label = _min_by(*(np.concatenate([m[k] for m in messages]) for k in range(2)))
    labels = graph.labels.copy()
    at = np.searchsorted(graph.nodes, node)
    np.minimum.at(labels, at, label)
    changed = int(np.sum(labels != graph.labels))
    new = dataclasses.replace(graph, labels=labels)
    ask = labels != graph.nodes
    requests = _split(_route(labels[ask], buckets), buckets, graph.nodes[ask], labels[ask])
    return [*requests, new, changed]


def _cc_answer(graph: _Graph, buckets: int,
               *requests: tuple[np.ndarray, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    node, target = (np.concatenate([r[k] for r in requests]) for k in range(2))
    return _split(_route(node, buckets), buckets, node, graph.label_of(target))


def _cc_jump(graph: _Graph, *answers: tuple[np.ndarray, np.ndarray]) -> list[Any]:
    node, label = (np.concatenate([a[k] for a in answers]) for k in range(2))
    labels = graph.labels.copy()
    np.minimum.at(labels, np.searchsorted(graph.nodes, node), label)
    return [dataclasses.replace(graph, labels=labels), int(np.sum(labels != graph.labels))]


def _labels_by_part(graph: _Graph, offsets: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    return _split(_owner(graph.nodes, offsets), len(offsets) - 1, graph.nodes, graph.labels)


def _edges_by_group(graph: _Graph, buckets: int) -> list[tuple[np.ndarray, ...]]:
    one_way = graph.src < graph.dst
    src, dst, score = graph.src[one_way], graph.dst[one_way], graph.score[one_way]
    return _split(_route(graph.label_of(src), buckets), buckets, src, dst, score)


# ----------------------------------------------------------------- linkage, stories


def _rows_by_group(frame: pl.DataFrame, weighed: _Weighed, offset: int, groups: np.ndarray,
                   buckets: int, *labels: tuple[np.ndarray, np.ndarray]) -> list[Any]:
    """Rows in a component (everything linkage and merging read, and each row's copy
    group representative), sent to its bucket."""
    gidx = np.concatenate([s[0] for s in labels] or [np.empty(0, np.int64)])
    label = np.concatenate([s[1] for s in labels] or [np.empty(0, np.int64)])
    order = np.argsort(gidx)
    gidx, label = gidx[order], label[order]
    rows = _ship(weighed, gidx - offset, offset)
    out = []
    for (idx,) in _split(_route(label, buckets), buckets, np.arange(len(gidx))):
        out.append((label[idx], _subset(rows, idx), _take(frame, gidx[idx] - offset),
                    groups[gidx[idx]]))
    return out


def _link(config: Config, with_stories: bool, offsets: np.ndarray, template: refine.Features,
          rows_in: list[tuple[np.ndarray, _Rows, pl.DataFrame, np.ndarray]],
          edges_in: list[tuple[np.ndarray, ...]]) -> list[Any]:
    """Average linkage, cohesion, canonical article and story of every component here.

    Returns assignments by partition, then the clusters, then the stories.
    """
    label = np.concatenate([r[0] for r in rows_in] or [np.empty(0, np.int64)])
    width = (template.matrix.shape[1], template.years.shape[1])
    rows = _stack([r[1] for r in rows_in], width)
    frame = pl.concat([r[2] for r in rows_in], how="diagonal_relaxed")
    rep_of = np.concatenate([r[3] for r in rows_in] or [np.empty(0, np.int64)])
    order = np.argsort(rows.gidx)  # local index order == global order, as in pipeline
    label, rows, frame = label[order], _subset(rows, order), _take(frame, order)
    # Each row's representative, as a local index (it is in the same component).
    rep_local = np.searchsorted(rows.gidx, rep_of[order])
    weights = np.bincount(rep_local, minlength=len(rep_local))
    # Every member of a copy group is in its component: the spans of days are whole.
    openings = excerpts.Openings(rows.keys, rows.short, rows.days, rows.days).dated(
        rows.days, rep_local)
    features = _features_of(template, rows)
    src, dst, score = (np.concatenate([e[k] for e in edges_in]) for k in range(3))
    pairs = np.stack([np.searchsorted(rows.gidx, src), np.searchsorted(rows.gidx, dst)], axis=1)

    def block(local: np.ndarray) -> np.ndarray:
        return refine.block_similarity(features, local)

    similarity = clustering.ReusingSimilarity(block)

    ids: list[str] = frame["id"].to_list()
    published = frame["published"].to_list()
    articles = to_articles(frame) if with_stories else []
    out_gidx, out_cid, out_canonical, out_close = [], [], [], []
    clusters: list[Cluster] = []
    stories: list[Story] = []
    by_label = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[by_label])) + 1
    for rows_here in np.split(by_label, bounds) if len(label) else []:
        component = np.sort(rows_here)
        # Linkage over copy groups' representatives; each group brings its copies along
        # (``copies.expand`` in the local engine).
        reps = component[rep_local[component] == component]
        for linked in clustering.link_component(reps, pairs, score, similarity,
                                                config.clustering, weights, openings):
            rep_close = np.round(clustering.cohesion(linked, similarity, weights), 6)
            group = component[np.isin(rep_local[component], linked)]
            close = rep_close[np.searchsorted(linked, rep_local[group])]
            member_ids = [ids[r] for r in group]
            cid = clustering.cluster_id(member_ids)
            if with_stories:
                versions = group[rep_local[group] == group]
                story = merge_story([articles[r] for r in versions], cid, config,
                                    copies=copies.copies_by_version(group, rep_local, ids))
                stories.append(story)
                base = member_ids.index(story.base)
            else:
                base = min(range(len(group)), key=lambda k: (
                    -float(close[k]), _date_key(published[group[k]]), member_ids[k]))
            out_gidx.append(rows.gidx[group])
            out_cid.extend([cid] * len(group))
            flags = np.zeros(len(group), dtype=bool)
            flags[base] = True
            out_canonical.append(flags)
            out_close.append(close)
            clusters.append(Cluster(cid, tuple(sorted(member_ids)), member_ids[base]))
    gidx = np.concatenate(out_gidx or [np.empty(0, np.int64)])
    assigned = _split(_owner(gidx, offsets), len(offsets) - 1, gidx,
                      np.array(out_cid, dtype=object),
                      np.concatenate(out_canonical or [np.empty(0, bool)]),
                      np.concatenate(out_close or [np.empty(0)]))
    release_memory()  # merging freed millions of small objects: hand the heap back
    return [*assigned, clusters, stories]


def _date_key(value: object) -> tuple[int, str]:
    return (0, value.isoformat()) if isinstance(value, datetime) else (1, "")


def _finish(frame: pl.DataFrame, offset: int, config: Config, with_stories: bool,
            *assigned: tuple[np.ndarray, ...]) -> tuple[pl.DataFrame, list[Cluster], list[Story]]:
    """The partition's assignments; articles in no accepted edge are their own cluster."""
    n = frame.height
    ids: list[str] = frame["id"].to_list()
    cluster_of = np.empty(n, dtype=object)
    canonical = np.ones(n, dtype=bool)
    closeness = np.ones(n, dtype=np.float64)
    alone = np.ones(n, dtype=bool)
    for gidx, cids, flags, close in assigned:
        local = gidx - offset
        cluster_of[local], canonical[local], closeness[local] = cids, flags, close
        alone[local] = False
    clusters, stories = [], []
    singles = np.flatnonzero(alone)
    articles = to_articles(_take(frame, singles)) if with_stories else []
    for k, row in enumerate(singles):
        cid = clustering.cluster_id([ids[row]])
        cluster_of[row] = cid
        clusters.append(Cluster(cid, (ids[row],), ids[row]))
        if with_stories:
            stories.append(merge_story([articles[k]], cid, config))
    return assignments_frame(frame, cluster_of, canonical, closeness), clusters, stories


# --------------------------------------------------------------------------- driver


class _Run(StageTimer):
    """Submits the stages on one client and keeps the futures a recomputation needs."""

    def __init__(self, client: Any, config: Config) -> None:
        super().__init__()
        self.client = client
        self.config = config

    def submit(self, func: Any, *args: Any) -> Any:
        # The scheduler keeps each task's lineage while a dependent is wanted, so results a
        # dead worker held are recomputed; the client needs to hold no extra futures.
        return self.client.submit(func, *args, pure=False)

    def item(self, future: Any, index: int) -> Any:
        return self.submit(operator.getitem, future, index)

    def shuffle(self, sources: Sequence[Any], buckets: int) -> list[list[Any]]:
        """``out[b]`` = slice ``b`` of every source: the all-to-all step, one small task per
        (source, bucket) so each bucket fetches only its own slices.

        Submitted source by source: Dask runs tasks in submission order, so a source
        spilled to disk is read back once for all its slices, not once per slice.
        """
        items = [[self.item(s, b) for b in range(buckets)] for s in sources]
        return [[row[b] for row in items] for b in range(buckets)]

    def wait(self, futures: Iterable[Any]) -> None:
        _distributed().wait(list(futures))

    def gather(self, futures: Any) -> Any:
        return self.client.gather(futures)


def _in_memory_parts(run: _Run, frame: pl.DataFrame, partitions: int) -> list[Any]:
    """Slices of an in-memory frame, shipped inside their tasks so a lost worker's copy is
    recomputed from the task rather than lost (as scattered data would be)."""
    bounds = np.linspace(0, frame.height, partitions + 1).round().astype(int)
    return [run.submit(_own, frame.slice(int(a), int(b - a)))
            for a, b in itertools.pairwise(bounds)]


def _own(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def _read_files(run: _Run, pieces: list[_Piece], columns: io.Columns,
                skip_bad_rows: bool, coerce_ids: bool = False
                ) -> tuple[list[Any], list[Rejected]]:
    """Read every piece on the workers; reject or report duplicate ids across pieces."""
    reads = [run.submit(_read_piece, p, columns, skip_bad_rows, coerce_ids) for p in pieces]
    errors = run.gather([run.submit(operator.attrgetter("error"), r) for r in reads])
    for error in errors:
        if error:
            raise io.InputError(error)
    buckets = len(pieces)
    keys = [run.submit(_id_keys, r, k, buckets) for k, r in enumerate(reads)]
    dups = run.gather([run.submit(_duplicates, *col) for col in run.shuffle(keys, buckets)])
    repeats = sorted((d for bucket in dups for d in bucket), key=lambda d: (d[0][1], d[0][2]))

    def where(entry: tuple[str, int, int, int | None]) -> str:
        path = pieces[entry[1]].path
        return f"{path}:{entry[3]}" if entry[3] is not None else path

    if repeats and not skip_bad_rows:
        (article_id, _, _, _), first = repeats[0]
        raise io.InputError(f"{where(repeats[0][0])} (id {article_id!r}): duplicate id, first "
                            f"seen at {where(first)} (or pass --skip-bad-rows)")
    rejected = [r for rs in run.gather([run.submit(operator.attrgetter("rejected"), r)
                                        for r in reads]) for r in rs]
    order = {p.path: k for k, p in enumerate(pieces)}
    for entry, first in repeats:
        rejected.append(Rejected(pieces[entry[1]].path, entry[3], entry[0],
                                 f"duplicate id, first seen at {where(first)}"))
    drops: dict[int, list[int]] = {}
    for entry, _ in repeats:
        drops.setdefault(entry[1], []).append(entry[2])
    reads = [run.submit(_drop_rows, r, drops[k]) if k in drops else r
             for k, r in enumerate(reads)]
    rejected.sort(key=lambda r: (order.get(r.file, len(order)), r.line or 0))
    return [run.submit(_frame_of, r) for r in reads], rejected


@contextmanager
def _client(client: Any, scheduler: str | None) -> Iterator[Any]:
    """The caller's client, one connected to ``scheduler``, or a LocalCluster of this machine."""
    distributed = _distributed()
    if client is not None:
        yield client
        return
    if scheduler is not None:
        with distributed.Client(scheduler) as connected:
            yield connected
        return
    workers = max(1, os.cpu_count() or 1)
    with (
        distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                 dashboard_address=None) as local,
        distributed.Client(local) as connected,
    ):
        yield connected


def cluster_dask(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]] | str | Path | Sequence[str],
    config: Config | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    with_stories: bool = True,
    with_pairs: bool = False,
    columns: io.Columns | None = None,
    fmt: str | None = None,
    skip_bad_rows: bool = False,
    output: str | Path | None = None,
    output_format: str = "parquet",
    output_options: Mapping[str, Any] | None = None,
    coerce_ids: bool = False,
) -> ClusterResult:
    """Cluster articles by event on a Dask cluster; the same result as ``dedup.cluster``.

    Args:
        articles: what ``dedup.cluster`` accepts (a polars DataFrame, dicts, ``Article``
            records), or a path, glob or list of them (Parquet, JSONL, CSV, .txt folders),
            which the workers read themselves: Parquet sliced by rows, others a file each.
        config: thresholds for every stage, as for ``dedup.cluster``.
        client: a ``distributed.Client`` to run on (left open).
        scheduler: address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
            Without client or scheduler a ``LocalCluster`` of this machine is started.
        partitions: partitions of the input (default: one per 10,000 articles, at least
            one per worker for in-memory input). Results do not depend on it.
        with_stories: merge each cluster into a story, as ``dedup.cluster``.
        with_pairs: also return the candidate pairs (``result.pairs``); they are gathered to
            the client, about 20 per article, so off by default.
        columns, fmt, skip_bad_rows: how files are read, as ``io.read_articles``.
        output: a folder the workers write the results to (it must be storage every
            worker and this process reach): ``assignments/part-NNNNN.parquet`` (one part
            per input partition, rows in input order), ``clusters.jsonl`` and
            ``stories.jsonl``, byte for byte what the local engine writes. Nothing is
            gathered to the client, and the returned result then holds only ``stats``,
            ``timings`` and ``rejected``. The files are published as one set with a
            ``manifest.json`` (see ``dedup.outputs``), with ``rejected.jsonl`` when
            ``skip_bad_rows``: they appear only when the run succeeds, all at once.
        output_format: ``parquet`` or ``jsonl`` for the assignment parts.
        output_options: what the manifest records as the run's options.
        coerce_ids: read integer ids as their decimal text, as ``io.read_articles``.

    Raises:
        ImportError: dask.distributed is not installed (``pip install 'dedup[dask]'``).
        DaskEngineError: the cluster lost the run (a worker died too often, say).

    Example:
        >>> r = cluster_dask([{"id": "a", "text": "Quake hits Lima"}])  # doctest: +SKIP
        >>> r.assignments.height  # doctest: +SKIP
        1
    """
    distributed = _distributed()
    from distributed.comm.core import CommClosedError

    config = config or Config()
    try:
        with _client(client, scheduler) as connected:
            run = _Run(connected, config)
            return _cluster(run, articles, partitions, with_stories, with_pairs,
                            columns or io.Columns(), fmt, skip_bad_rows,
                            Path(output) if output is not None else None, output_format,
                            dict(output_options or {}), coerce_ids)
    except (distributed.KilledWorker, CommClosedError) as err:
        raise DaskEngineError(
            f"the Dask cluster lost this run ({type(err).__name__}: {err}); no output was "
            "written. A worker that keeps dying is usually out of memory: give workers "
            "more memory or use more partitions"
        ) from err
    except OSError as err:  # connecting to the scheduler timed out or was refused
        raise DaskEngineError(
            f"cannot reach the Dask scheduler at {scheduler or 'the local cluster'} ({err}); "
            "start one with `dask scheduler` and `dask worker ADDRESS`, or check the address"
        ) from err


def cluster_dataset(
    path_glob: str | Path | Sequence[str | Path],
    config: Config | None = None,
    **options: Any,
) -> ClusterResult:
    """Cluster the articles in files the workers read lazily (Parquet, JSONL, ...).

    Keyword options are those of ``cluster_dask`` (``scheduler=``, ``partitions=``, ...).

    Example:
        >>> cluster_dataset("feed/2024-*.parquet", scheduler="tcp://h:8786")  # doctest: +SKIP
    """
    return cluster_dask([str(p) for p in ([path_glob] if isinstance(path_glob, (str, Path))
                                          else path_glob)], config, **options)


def _is_paths(articles: Any) -> bool:
    if isinstance(articles, (str, Path)):
        return True
    return (isinstance(articles, (list, tuple)) and bool(articles)
            and all(isinstance(a, (str, Path)) for a in articles))


def _cluster(
    run: _Run,
    articles: Any,
    partitions: int | None,
    with_stories: bool,
    with_pairs: bool,
    columns: io.Columns,
    fmt: str | None,
    skip_bad_rows: bool,
    output: Path | None = None,
    output_format: str = "parquet",
    output_options: dict[str, Any] | None = None,
    coerce_ids: bool = False,
) -> ClusterResult:
    config = run.config
    workers = max(1, len(run.client.scheduler_info().get("workers", {})))
    rejected: list[Rejected] = []
    with run.stage("read"):
        if _is_paths(articles):
            pieces = _plan(_expand(articles), fmt, partitions)
            parts, rejected = _read_files(run, pieces, columns, skip_bad_rows, coerce_ids)
        else:
            frame = articles_frame(articles)
            count = partitions or max(workers, -(-frame.height // DEFAULT_PARTITION_ROWS))
            parts = _in_memory_parts(run, frame, max(1, min(count, frame.height)))
            del frame
        lengths = np.array(run.gather([run.submit(len, p) for p in parts]), dtype=np.int64)
        parts = [p for p, m in zip(parts, lengths, strict=True) if m > 0]
        lengths = lengths[lengths > 0]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    n = int(offsets[-1])
    if n == 0:
        from dedup.pipeline import cluster as local_cluster

        result = local_cluster([], config, with_stories=with_stories)
        result.rejected = rejected
        return result
    P = len(parts)
    B = P  # shuffle buckets: one per partition keeps every task about a partition's size

    with run.stage("normalize"):
        counts = [run.submit(_template_lines, p, config.normalize, B) for p in parts]
        templates = [run.submit(_templates, config.normalize, *col)
                     for col in run.shuffle(counts, B)]
        prepared = [run.submit(_prepare, p, config, *templates) for p in parts]
        # Copy groups (#18): one small task sees every article's signature key.
        groups = run.submit(_copy_groups, *[run.submit(_copy_keys, p) for p in prepared])
        excerpt_edges = run.submit(_excerpt_edges, groups, config.clustering, B,
                                   *[run.submit(_excerpt_keys, p) for p in prepared])
        distinct = int(run.gather(run.submit(_count_representatives, groups)))
        run.wait(prepared)
        # The client lets go of every future it no longer needs, stage by stage: a result
        # stays on its worker while the client holds its future, and at a million articles
        # the finished candidate stage alone was several GB of spill per worker.
        del counts, templates
    with run.stage("features"):
        freqs = [run.submit(_frequencies, p, groups, int(offsets[k]))
                 for k, p in enumerate(prepared)]
        while len(freqs) > 1:  # tree reduction: no node sums more than 8 vectors
            freqs = [run.submit(_add, *freqs[k : k + 8]) for k in range(0, len(freqs), 8)]
        weighed = [run.submit(_weigh, p, freqs[0], distinct, config, groups, int(offsets[k]))
                   for k, p in enumerate(prepared)]
        run.wait(weighed)
        del prepared
    with run.stage("candidates"):
        cand, perms = config.candidates, config.signatures.num_perm
        found = {}
        chains: dict[str, list[Any]] = {}
        oversized = []
        for which, threshold, largest, min_coll, depth in (
            ("copies", cand.copies_threshold, cand.copies_max_bucket_size, 1, 0),
            ("events", cand.events_threshold, cand.events_max_bucket_size,
             cand.events_min_collisions, getattr(cand, "events_split_depth", 0)),
        ):
            bands, rows = candidates.lsh_params(threshold, perms)
            entries = [run.submit(_band_entries, w, which, int(offsets[k]), bands, rows, depth,
                                  B)
                       for k, w in enumerate(weighed)]
            grouped = [run.submit(_band_buckets, n, largest, cand.crowded_chain, B, *col)
                       for col in run.shuffle(entries, B)]
            oversized += [run.item(g, B) for g in grouped]
            chains[which] = [run.submit(_chain_codes, *[run.item(g, B + 1 + b) for g in grouped])
                             for b in range(B)]
            found[which] = [run.submit(_count_pairs, min_coll, *col)
                            for col in run.shuffle(grouped, B)]
        capped = cand.events_max_per_doc is not None
        events: list[Any] = [[f] for f in found["events"]]
        if capped:
            directed = [run.submit(_directions, f, n, B) for f in found["events"]]
            strongest = [run.submit(_strongest, cand.events_max_per_doc, n, B, *col)
                         for col in run.shuffle(directed, B)]
            events = run.shuffle(strongest, B)
            del directed, strongest
        unions = [run.submit(_union, c, list(e) if capped else e[0], capped, cc, ec)
                  for c, e, cc, ec in zip(found["copies"], events, chains["copies"],
                                          chains["events"], strict=True)]
        sizes = run.gather([run.submit(_sizes, u) for u in unions])
        skipped = int(sum(run.gather(oversized)))
        del entries, grouped, oversized, found, events, chains
        # Signatures (2 KB an article) are done with: held to the end, they were a third
        # of a worker's state at a million articles.
        weighed = [run.submit(_features_only, w) for w in weighed]
    with run.stage("refine"):
        by_left = [run.submit(_by_left, u, n, offsets) for u in unions]
        mine = [run.submit(_sorted_codes, *col) for col in run.shuffle(by_left, P)]
        pair_codes = [run.item(u, 0) for u in unions] if with_pairs else []
        del unions, by_left
        scored = []
        waves = _waves(P, sum(s[0] for s in sizes), workers)
        for lo, hi in waves:
            left = [run.submit(_left_rows, w, int(offsets[k]), n, offsets, lo, hi, m)
                    for k, (w, m) in enumerate(zip(weighed, mine, strict=True))]
            wave = [run.submit(_score, weighed[d], int(offsets[d]), n,
                               config.clustering.edge_threshold, B, *col)
                    for d, col in zip(range(lo, hi), run.shuffle(left, hi - lo), strict=True)]
            run.wait(wave)  # the next wave's rows are shipped only once these are consumed
            scored += wave
        del left, mine
    with run.stage("cluster"):
        scored += [run.submit(_copy_edges, groups, int(offsets[k]), int(lengths[k]), B)
                   for k in range(P)]
        scored.append(excerpt_edges)
        del excerpt_edges
        graphs = [run.submit(_cc_init, *col) for col in run.shuffle(scored, B)]
        del scored
        rounds = 0
        while True:
            rounds += 1
            messages = [run.submit(_cc_messages, g, B) for g in graphs]
            received = [run.submit(_cc_receive, g, B, *col)
                        for g, col in zip(graphs, run.shuffle(messages, B), strict=True)]
            graphs = [run.item(r, B) for r in received]
            answers = [run.submit(_cc_answer, g, B, *col)
                       for g, col in zip(graphs, run.shuffle(received, B), strict=True)]
            jumped = [run.submit(_cc_jump, g, *col)
                      for g, col in zip(graphs, run.shuffle(answers, B), strict=True)]
            graphs = [run.item(j, 0) for j in jumped]
            changes = run.gather([run.item(r, B + 1) for r in received]
                                 + [run.item(j, 1) for j in jumped])
            if not any(changes):
                break
        del messages, received, answers, jumped
        labels = run.shuffle([run.submit(_labels_by_part, g, offsets) for g in graphs], P)
        frames = parts
        grouped_rows = [run.submit(_rows_by_group, f, w, int(offsets[k]), groups, B,
                                   *labels[k])
                        for k, (f, w) in enumerate(zip(frames, weighed, strict=True))]
        grouped_edges = run.shuffle([run.submit(_edges_by_group, g, B) for g in graphs], B)
        template = run.submit(_template_features, weighed[0])
        linked = [run.submit(_link, config, with_stories, offsets, template, rows, edges)
                  for rows, edges in zip(run.shuffle(grouped_rows, B), grouped_edges,
                                         strict=True)]
        del labels, grouped_rows, grouped_edges, graphs, weighed, template
        assigned = run.shuffle(linked, P)
        finished = [run.submit(_finish, f, int(offsets[k]), config, with_stories, *assigned[k])
                    for k, f in enumerate(frames)]
        run_stats = {
            "copy_pairs": sum(s[1] for s in sizes),
            "event_pairs": sum(s[2] for s in sizes),
            "oversized_buckets": skipped,
            "copies_collapsed": n - distinct,
            "partitions": P,
            "workers": workers,
            "component_rounds": rounds,
            "pair_waves": len(waves),
        }
        if output is not None:
            written = _write_on_workers(run, output, output_format, finished, linked, P,
                                        rejected if skip_bad_rows else None,
                                        output_options or {})
            stats = {
                "articles": n,
                "clusters": sum(w[0] for w in written),
                "largest_cluster": max((w[1] for w in written), default=0),
                **run_stats,
                "output": str(output),
            }
            return ClusterResult(
                assignments=pl.DataFrame(), clusters=[], stories=[], rejected=rejected,
                timings=run.timings, candidate_pairs=sum(s[0] for s in sizes), stats=stats,
            )
        outputs = run.gather(finished)
        linked_out = run.gather([[run.item(x, P), run.item(x, P + 1)] for x in linked])
    frames_out = [o[0] for o in outputs]
    clusters = [c for o in outputs for c in o[1]] + [c for lo in linked_out for c in lo[0]]
    stories = [s for o in outputs for s in o[2]] + [s for lo in linked_out for s in lo[1]]
    clusters.sort(key=lambda c: c.cluster_id)
    stories.sort(key=lambda s: s.cluster_id)
    pairs = np.empty((0, 2), dtype=np.int64)
    if with_pairs:
        codes = np.sort(np.concatenate(run.gather(pair_codes)))
        pairs = np.stack([codes // n, codes % n], axis=1)
    assignments = _concat(frames_out)
    stats = {
        "articles": n,
        "clusters": len(clusters),
        "largest_cluster": max((c.size for c in clusters), default=0),
        **run_stats,
    }
    return ClusterResult(
        assignments=assignments,
        clusters=clusters,
        stories=stories,
        rejected=rejected,
        timings=run.timings,
        candidate_pairs=sum(s[0] for s in sizes),
        pairs=pairs,
        stats=stats,
    )


def _write_on_workers(run: _Run, output: Path, fmt: str, finished: list[Any],
                      linked: list[Any], P: int, rejected: list[Rejected] | None,
                      options: dict[str, Any]) -> list[tuple[int, int]]:
    """Workers write their parts into a staging folder; this process merges the sorted
    cluster and story parts, then publishes everything as one set (``dedup.outputs``)."""
    from dedup import __version__

    with run.stage("write"), outputs.staged(output) as staging:
        tasks = [run.submit(_write_partition, str(staging.path), f"{k:05d}", fmt, f)
                 for k, f in enumerate(finished)]
        tasks += [run.submit(_write_linked, str(staging.path), f"l{b:05d}", run.item(x, P),
                             run.item(x, P + 1)) for b, x in enumerate(linked)]
        written = run.gather(tasks)
        parts = staging.path / _PARTS
        for kind in ("clusters", "stories"):
            files = sorted(parts.glob(f"{kind}-*.txt"))
            if files:
                io.merge_sorted_parts(files, staging.path / f"{kind}.jsonl")
        shutil.rmtree(parts)
        if rejected is not None:
            io.write_rejected(staging.path, rejected)
        staging.commit(options, __version__)
    return written


_PARTS = ".parts"


def _write_partition(staging: str, name: str, fmt: str,
                     finished: tuple[pl.DataFrame, list[Cluster], list[Story]]
                     ) -> tuple[int, int]:
    frame, clusters, stories = finished
    folder = Path(staging) / "assignments"
    folder.mkdir(parents=True, exist_ok=True)
    io.write_frame(folder / f"part-{name}.{fmt}", frame, fmt)
    return _write_linked(staging, name, clusters, stories)


def _write_linked(staging: str, name: str, clusters: list[Cluster], stories: list[Story]
                  ) -> tuple[int, int]:
    """Sorted part files of clusters and stories; returns (clusters, largest size)."""
    parts = Path(staging) / _PARTS
    parts.mkdir(parents=True, exist_ok=True)
    io.write_sorted_part(parts / f"clusters-{name}.txt",
                         ((c.cluster_id, c.to_dict()) for c in clusters))
    if stories:
        io.write_sorted_part(parts / f"stories-{name}.txt",
                             ((s.cluster_id, story_to_dict(s)) for s in stories))
    return len(clusters), max((c.size for c in clusters), default=0)


def _sizes(union: tuple[np.ndarray, int, int]) -> tuple[int, int, int]:
    return len(union[0]), union[1], union[2]


def _template_features(weighed: _Weighed) -> refine.Features:
    """A row-less copy of the features: carries the scoring rules (year factor, window)."""
    f = weighed.features
    return _features_of(f, _ship(weighed, np.empty(0, np.int64), 0))


def _features_of(template: refine.Features, rows: _Rows) -> refine.Features:
    """``template``'s scoring rules over other rows (same bytes as in the local engine's
    matrix), with every per-row field taken from ``rows``."""
    per_row = {"matrix": rows.matrix, "years": rows.years,
               "days": rows.days if template.days is not None else None}
    names = {f.name for f in dataclasses.fields(template)}
    if "has_years" in names:
        per_row["has_years"] = np.diff(rows.years.indptr) > 0
    if "salient" in names:
        per_row["salient"] = refine.Salient.empty()
    return dataclasses.replace(template, **per_row)


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    try:
        return pl.concat(frames, how="vertical")
    except pl.exceptions.PolarsError:  # extra columns typed differently across files
        return pl.concat(frames, how="diagonal_relaxed")

