"""Near-duplicate removal: keep one article of each copy group (#21).

What datasketch, rensa, text-dedup and datatrove users run to clean a corpus, as one stage:

1. a light normalization per article: ``normalize.clean_line`` per line, page furniture
   dropped (``normalize.is_boilerplate``, repeated lines once), lower-cased; no sentences,
   names or terms. Each distinct line of a batch is cleaned once, the plain ASCII ones by
   polars expressions (``light_batch``): copies share lines;
2. word tokens, their n-gram shingle hashes and a 64-bit key of each text's token sequence,
   in one compiled loop over the UTF-8 bytes (``shingling``); exact duplicates are equal
   keys;
3. MinHash signatures of the shingles (``signatures.MinHasher``, its compiled kernel),
   LSH banding at ``threshold`` (``candidates.lsh_pairs``), each candidate pair verified
   by its estimated Jaccard over the whole signature, joined transitively
   (``copies.copy_groups``: exact keys first, then near copies);
4. one row kept per group by the ``keep`` rule.

Step 1 runs on polars' threads, step 2 and the signatures on ``workers`` threads (compiled
loops that release the GIL), chunk by chunk, and a chunk's result depends only on its
texts: the output is byte-identical for any ``workers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import polars as pl

from dedup import copies, io, jit, normalize, shingling, signatures
from dedup.parallel import resolve_workers, thread_map
from dedup.pipeline import StageTimer, articles_frame
from dedup.records import Article, Rejected

Keep = Literal["first", "earliest", "longest"]
KEEP_RULES: tuple[str, ...] = ("first", "earliest", "longest")
CHUNK = 5_000  # articles signed at once by one thread
BATCH = 50_000  # articles normalized at once: bounds the memory of their lines
_NUM_PERM = 128
_SEED = 1
WRITE_ROWS = 50_000  # kept rows per slice written (a Parquet row group)


FrameSource = Callable[[], Iterator[pl.DataFrame]]


@dataclass(frozen=True, slots=True)
class DedupeResult:
    """What ``dedupe`` found.

    ``kept_rows``: the rows kept (one per copy group), ascending; ``copies``: the size of
    each one's group. ``groups``: one row per input article, in input order: ``id`` and
    ``copy_group``, the id of the article kept for its group. ``source`` gives the input's
    rows in order, a frame at a time (the frame itself, or a Parquet file read again batch
    by batch), so ``write_kept`` never holds a copy of every kept text at once.
    """

    source: FrameSource
    kept_rows: np.ndarray
    copies: np.ndarray
    groups: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)  # rows a reader set aside
    # Output name of each standard column (``{"id": "doc_id"}``: the input's own names,
    # as ``dedup dedupe --id-col doc_id`` read them); unnamed ones keep theirs.
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def kept(self) -> pl.DataFrame:
        """The kept rows, every input column plus ``copies`` (a new frame)."""
        return pl.concat(list(self.kept_frames()))

    def kept_frames(self, renamed: dict[str, str] | None = None) -> Iterator[pl.DataFrame]:
        """The kept rows and their ``copies``, ``WRITE_ROWS`` at a time: the same slices
        however the input was read (so the same Parquet row groups), at least one frame.
        ``renamed`` receives ``renames`` of the source's columns."""
        rows, sizes = self.kept_rows, self.copies
        pending: list[pl.DataFrame] = []
        count = at = taken = 0
        empty: pl.DataFrame | None = None
        for frame in self.source():
            stop = int(np.searchsorted(rows, at + frame.height))
            names = self.renames(frame.columns)
            frame = frame.rename(names) if names else frame
            if renamed is not None:
                renamed.update(names)
            if empty is None:
                empty = frame.head(0).with_columns(pl.Series("copies", [], dtype=pl.Int64))
            if stop > taken:
                pending.append(frame.select(pl.all().gather(rows[taken:stop] - at))
                               .with_columns(pl.Series("copies", sizes[taken:stop],
                                                       dtype=pl.Int64)))
                count += stop - taken
            taken, at = stop, at + frame.height
            while count >= WRITE_ROWS:
                merged = pl.concat(pending)
                yield merged.head(WRITE_ROWS).rechunk()
                pending, count = [merged.slice(WRITE_ROWS)], count - WRITE_ROWS
        if count:
            yield pl.concat(pending).rechunk()
        elif not taken:  # nothing kept: the columns alone
            yield empty if empty is not None else pl.DataFrame(
                {"copies": pl.Series([], dtype=pl.Int64)})

    def renames(self, columns: Sequence[str]) -> dict[str, str]:
        """New names of a source frame's columns that change in the output: the input's
        own names for the standard columns, then whichever column would be called
        ``copies`` (the output's) as ``input_copies``."""
        out = {k: v for k, v in self.names.items() if k in columns and k != v}
        final = [out.get(c, c) for c in columns]
        if "copies" in final:
            new, k = "input_copies", 2
            while new in final:
                new, k = f"input_copies_{k}", k + 1
            out[columns[final.index("copies")]] = new
        return out

    def named_groups(self) -> pl.DataFrame:
        """``groups`` with the id column under the input's name for it (``id`` when that
        name is ``copy_group``, the groups' own column)."""
        name = self.names.get("id", "id")
        return self.groups.rename({"id": name}) if name not in ("id", "copy_group") else (
            self.groups)

    def write_kept(self, target: str | Path, fmt: io.TableFormat) -> dict[str, str]:
        """Write the kept rows atomically, a slice at a time: the same bytes for the same
        input, read whole or streamed. Returns the input columns renamed (``renames``)."""
        if fmt not in io.TABLE_FORMATS:
            raise ValueError(f"fmt={fmt!r}: write 'parquet' or 'jsonl'")
        renamed: dict[str, str] = {}
        with io.atomic_path(Path(target)) as tmp:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                writer: Any = None
                try:
                    for part in self.kept_frames(renamed):
                        table = part.to_arrow()
                        if writer is None:
                            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd",
                                                      write_statistics=False)
                        writer.write_table(table, row_group_size=WRITE_ROWS)
                finally:
                    if writer is not None:
                        writer.close()
                return renamed
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                for part in self.kept_frames(renamed):
                    for row in part.to_dicts():
                        out.write(io.json_line(row))
        return renamed

    def mapping(self) -> dict[str, str]:
        """``groups`` as a dict: article id -> id of the article kept for its group."""
        return dict(zip(self.groups["id"].to_list(), self.groups["copy_group"].to_list(),
                        strict=True))


@dataclass(frozen=True, slots=True)
class SignedChunk:
    """A chunk's exact keys, MinHash signatures and which texts have any token."""

    keys: np.ndarray
    signatures: np.ndarray
    present: np.ndarray


def light_text(text: str) -> bytes:
    """A text after the light normalization, as UTF-8: cleaned (``normalize.clean_text``),
    furniture lines dropped (``normalize.strip_boilerplate``), lower-cased. The same text
    under two outlets' furniture gives the same bytes."""
    lines = normalize.strip_boilerplate(normalize.clean_text(text))
    return " ".join(lines).lower().encode("utf-8", "surrogatepass")


def _line_values(raw: str) -> tuple[str | None, str | None, bool]:
    """(casefold key, lower-cased text, whether the whole text must be cleaned at once) of
    one raw line, as ``light_text`` treats it: key None for an empty or furniture line."""
    line = normalize.clean_line(raw)
    if line is None:  # a mark that reaches across lines: the whole text
        return None, None, True
    if not line or normalize.is_boilerplate(line):
        return None, None, False
    return line.casefold(), line.lower(), False


# A line that ``clean_line`` leaves as it is but for stripping, so polars can clean it:
# printable ASCII (NFKC already, no fancy quotes, no tab or carriage return), no two
# spaces in a row, no tokenisation mark.
_PLAIN_LINE = (pl.col("raw").str.contains(r"^[\x20-\x7e]*$")
               & ~pl.col("raw").str.contains("  ", literal=True)
               & ~pl.col("raw").str.contains(normalize.TOKENISED_PATTERN))
_STRIPPED = pl.col("line")
_FURNITURE = (_STRIPPED == "") | _STRIPPED.str.contains(normalize.BOILERPLATE_PATTERN)


def light_batch(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``light_text`` of many texts at once, as one UTF-8 buffer and each text's end in it.

    Why: cleaning line by line in Python was most of the time of a job. Here polars splits
    the texts into lines and cleans each distinct line once: the plain ASCII lines that most
    texts are made of with vectorised string expressions (the same rules: ``normalize``'s
    furniture pattern, run by Rust's regex), any other line by ``normalize.clean_line``. A
    text with a line that needs the whole text (a carriage return, a tokenisation mark) is
    cleaned whole by ``light_text``. Each kept line is followed by a space where
    ``light_text`` joins lines with one: the same tokens, so the same shingles and keys.
    """
    n = len(texts)
    lines = (pl.DataFrame({"text": texts}).with_row_index("doc")
             .select("doc", pl.col("text").str.split("\n").alias("raw"))
             .explode("raw").filter(pl.col("raw") != ""))
    distinct = lines.select(pl.col("raw").unique()).with_columns(_PLAIN_LINE.alias("plain"))
    plain = (distinct.filter(pl.col("plain"))
             .with_columns(pl.col("raw").str.strip_chars(" ").alias("line"))
             .select("raw", pl.when(_FURNITURE).then(None)
                     .otherwise(pl.col("line").str.to_lowercase()).alias("low"))
             .select("raw", pl.col("low").alias("key"), "low", pl.lit(False).alias("whole")))
    other = distinct.filter(~pl.col("plain"))["raw"].to_list()
    keys, lows, whole = (zip(*map(_line_values, other), strict=True) if other
                         else ((), (), ()))
    table = pl.concat([plain, pl.DataFrame(
        {"raw": other, "key": list(keys), "low": list(lows), "whole": list(whole)},
        schema={"raw": pl.String, "key": pl.String, "low": pl.String, "whole": pl.Boolean})])
    lines = lines.join(table, on="raw", how="left", maintain_order="left")
    wholes = lines.filter(pl.col("whole"))["doc"].unique().sort()
    pieces = (lines.filter(pl.col("key").is_not_null() & ~pl.col("doc").is_in(wholes.implode()))
              .filter(pl.struct("doc", "key").is_first_distinct())
              .select("doc", (pl.col("low") + " ").alias("piece")))
    if len(wholes):
        whole_texts = texts.gather(wholes).to_list()
        pieces = pl.concat([pieces, pl.DataFrame(
            {"doc": wholes, "piece": [light_text(t).decode("utf-8", "surrogatepass") + " "
                                      for t in whole_texts]},
            schema=pieces.schema)]).sort("doc", maintain_order=True)
    import pyarrow as pa

    array = pieces["piece"].to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if len(array) else np.empty(
        0, dtype=np.uint8)
    buf = data[offsets[0] : offsets[-1]]
    line_ends = np.cumsum(np.bincount(pieces["doc"].to_numpy(), minlength=n)[:n])
    return buf, (offsets[line_ends] - offsets[0]).astype(np.int64)


def sign_span(buf: np.ndarray, ends: np.ndarray, ngram: int, hasher: signatures.MinHasher
              ) -> SignedChunk:
    """Exact keys, signatures and presence of the documents ``buf`` holds, ending at
    ``ends`` (the buffer of a span of documents; compiled loops, so threads share it)."""
    flat, shingle_ends, keys, tokens = shingling.shingle_hashes(buf, ends, ngram)
    return SignedChunk(keys, hasher.signatures_flat(flat, shingle_ends), tokens > 0)


def _ready() -> None:
    """Load the compiled loops now: every chunk of a job big enough to have several
    repays them (and threads must not race to load them)."""
    jit.kernels(jit.MIN_WORK)
    shingling.shingle_hashes(np.zeros(shingling.COMPILE_FROM_BYTES, dtype=np.uint8),
                             np.array([1], dtype=np.int64), 1)


def sign(texts: pl.Series | Iterable[pl.Series], *, ngram: int = 5,
         workers: int | None = 1, num_perm: int = _NUM_PERM, seed: int = _SEED
         ) -> SignedChunk:
    """Exact keys, signatures and presence of every text (``texts``: one Series, or the
    Series of a stream of batches, as ``dedupe_parquet`` reads them).

    A batch of up to ``BATCH`` texts at a time is normalized (``light_batch``: polars, on
    its own threads; the next batch is read and normalized while this one is signed), then
    signed ``CHUNK`` texts at a time on ``workers`` threads (the compiled loops release the
    GIL). A text's values depend on it alone: not on ``workers``, nor on where the batches
    and chunks fall.
    """
    if isinstance(texts, pl.Series):
        whole = texts
        texts = (whole.slice(first, BATCH) for first in range(0, len(whole), BATCH))
    threads = resolve_workers(workers)
    hasher = signatures.MinHasher(num_perm, seed)
    batches = iter(texts)
    loaded = False
    parts: list[SignedChunk] = []

    def light_next() -> tuple[np.ndarray, np.ndarray] | None:
        batch = next(batches, None)
        return None if batch is None else light_batch(batch)

    with ThreadPoolExecutor(1, thread_name_prefix="dedup-light") as ahead:
        pending = ahead.submit(light_next)
        while (batch := pending.result()) is not None:
            buf, ends = batch
            pending = ahead.submit(light_next)
            if not loaded and len(ends) > CHUNK:
                _ready()
                loaded = True
            starts = np.concatenate(([0], ends[:-1]))

            def span(at: int, buf: np.ndarray = buf, ends: np.ndarray = ends,
                     starts: np.ndarray = starts) -> SignedChunk:
                stop = min(at + CHUNK, len(ends))
                origin = starts[at]
                return sign_span(buf[origin : ends[stop - 1]], ends[at:stop] - origin, ngram,
                                 hasher)

            parts.extend(thread_map(span, range(0, len(ends), CHUNK), threads))
    if not parts:
        return SignedChunk(np.empty(0, np.uint64), np.empty((0, num_perm), np.uint32),
                           np.empty(0, bool))
    return SignedChunk(np.concatenate([p.keys for p in parts]),
                       np.concatenate([p.signatures for p in parts]),
                       np.concatenate([p.present for p in parts]))


def kept_rows(group: np.ndarray, keep: str, published: pl.Series | None = None,
              lengths: np.ndarray | None = None) -> np.ndarray:
    """The row kept for each copy group (``group[r]``: the lowest row of ``r``'s group),
    ascending.

    ``first``: the group's first row in input order. ``earliest``: the lowest
    ``published`` (rows without a date after every dated one). ``longest``: the most
    characters of text (``lengths``). Ties go to the earlier row in input order, so every
    rule is stable.
    """
    n = len(group)
    rows = np.arange(n)
    if keep == "first":
        return np.flatnonzero(group == rows)
    if keep == "earliest":
        if published is None:
            raise ValueError("keep='earliest' needs the published dates")
        stamps = published.cast(pl.Datetime("us")).dt.epoch("us")
        missing = stamps.is_null().to_numpy()
        primary = stamps.fill_null(0).to_numpy().astype(np.int64)
        order = np.lexsort((rows, primary, missing, group))
    elif keep == "longest":
        if lengths is None:
            raise ValueError("keep='longest' needs the text lengths")
        order = np.lexsort((rows, -lengths.astype(np.int64), group))
    else:
        raise ValueError(f"keep must be one of {', '.join(KEEP_RULES)}, not {keep!r}")
    firsts = order[np.concatenate(([True], group[order][1:] != group[order][:-1]))]
    return np.sort(firsts)


def check_options(threshold: float, ngram: int, keep: str) -> None:
    """A ValueError naming the first option out of range."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, not {ngram}")
    if keep not in KEEP_RULES:
        raise ValueError(f"keep must be one of {', '.join(KEEP_RULES)}, not {keep!r}")


@dataclass
class RowColumns:
    """What the groups and the keep rule need of every row, gathered batch by batch (or
    partition by partition: ``engine_dask``)."""

    ids: list[pl.Series] = field(default_factory=list)
    published: list[pl.Series] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pl.DataFrame) -> pl.Series:
        """Keep ``frame``'s ids, dates and text lengths; its texts."""
        self.ids.append(frame["id"])
        self.published.append(frame["published"])
        self.lengths.append(frame["text"].str.len_chars().fill_null(0).to_numpy())
        return frame["text"]


def grouped(signed: SignedChunk, cols: RowColumns, source: FrameSource, threshold: float,
             keep: str, max_bucket_size: int, timer: StageTimer, threads: int = 1
             ) -> DedupeResult:
    """Copy groups of the signed rows, the kept row of each, and the groups frame: what
    every engine does once the rows are signed (LSH bands grouped on ``threads``)."""
    with timer.stage("groups"):
        groups = copies.copy_groups(signed.keys, signed.present, signed.signatures,
                                    threshold=threshold, max_bucket_size=max_bucket_size,
                                    threads=threads)
        group = groups.group
        n = len(group)
        exact = int(n - np.count_nonzero(groups.exact == np.arange(n)))
        published = pl.concat(cols.published) if cols.published else None
        lengths = np.concatenate(cols.lengths) if cols.lengths else np.empty(0, np.int64)
        kept = kept_rows(group, keep, published, lengths)
        # Each row's group -> the kept row of that group.
        chosen = np.empty(n, dtype=np.int64)
        chosen[group[kept]] = kept
        kept_of = chosen[group]
        sizes = np.bincount(group, minlength=n)[group[kept]]
    with timer.stage("output"):
        ids = pl.concat(cols.ids) if cols.ids else pl.Series("id", [], dtype=pl.String)
        group_frame = pl.DataFrame({"id": ids, "copy_group": ids.gather(kept_of)})
    stats = {"articles": n, "kept": len(kept), "dropped": n - len(kept),
             "exact_duplicates": exact, "near_duplicates": n - len(kept) - exact,
             "largest_group": int(sizes.max()) if len(sizes) else 0}
    return DedupeResult(source, kept, sizes.astype(np.int64), group_frame, stats,
                        timer.timings)


def dedupe(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    threshold: float = 0.8,
    ngram: int = 5,
    keep: Keep | str = "first",
    *,
    workers: int | None = 1,
    max_bucket_size: int = 100,
) -> DedupeResult:
    """Keep one article per copy group: exact duplicates of the normalized text, then
    near duplicates at estimated Jaccard >= ``threshold`` on word ``ngram``-grams, joined
    transitively (A~B and B~C put A, B and C in one group).

    Args:
        articles: a polars DataFrame with ``id`` and ``text`` (other columns pass
            through), or an iterable of dicts or ``Article`` records, as for ``cluster``.
        threshold: estimated Jaccard of word n-gram sets from which two texts are copies.
        ngram: words per shingle.
        keep: which row of a group stays: ``first`` (input order), ``earliest``
            (``published``), ``longest`` (characters of text); ties: input order.
        workers: processes (0 or None: every core); the output does not depend on it.
        max_bucket_size: LSH buckets larger than this are split and chained, never
            dropped (``candidates.lsh_pairs``).

    An article without a word (empty text) is nobody's copy: it is kept, alone.

    Example:
        >>> r = dedupe([{"id": "a", "text": "Quake hits Lima"},
        ...             {"id": "b", "text": "Quake hits  LIMA"}])
        >>> r.kept["id"].to_list(), r.mapping()
        (['a'], {'a': 'a', 'b': 'a'})
    """
    check_options(threshold, ngram, keep)
    timer = StageTimer()
    with timer.stage("read"):
        frame = articles_frame(articles)
    cols = RowColumns()
    with timer.stage("signatures"):
        signed = sign(cols.add(frame), ngram=ngram, workers=workers)
    return grouped(signed, cols, lambda: iter([frame]), threshold, keep, max_bucket_size,
                   timer, resolve_workers(workers))


class _NeedsRowReader(Exception):
    """A batch holds a row that only the row-by-row reader can report or reject."""


def dedupe_columns(columns: io.Columns | None) -> io.Columns:
    """The reader's columns for a dedupe: its output has no ``cluster_id``, ``similarity``,
    ... so input columns of those names keep them (only the article fields are taken)."""
    return replace(columns or io.Columns(), reserved=io.ARTICLE_FIELDS)


def dedupe_parquet(
    paths: Sequence[str],
    threshold: float = 0.8,
    ngram: int = 5,
    keep: Keep | str = "first",
    *,
    workers: int | None = 1,
    max_bucket_size: int = 100,
    columns: io.Columns | None = None,
    coerce_ids: bool = False,
    batch_rows: int = BATCH,
) -> DedupeResult | None:
    """``dedupe`` of Parquet files read ``batch_rows`` rows at a time, so memory holds a
    batch of texts, not the corpus: the id, text and date columns once to sign them, then
    every column again as the kept rows are written (``DedupeResult.source``). The same
    result and the same output bytes as ``dedupe`` of the files read whole.

    None when the files need the row-by-row reader (``io.read_articles``): an unreadable
    file, files of different schemas, a bad row, a duplicate id. It reports or rejects
    them; nothing is lost by trying here first.
    """
    import pyarrow.parquet as pq

    check_options(threshold, ngram, keep)
    columns = dedupe_columns(columns)
    try:
        files = [pq.ParquetFile(path) for path in paths]
    except Exception:  # pyarrow raises several types; the row reader names the problem
        return None
    if not files or any(f.schema_arrow != files[0].schema_arrow for f in files):
        return None
    names = files[0].schema_arrow.names
    wanted = [c for c in (columns.id, columns.text, columns.published) if c in names]

    def batches(read: list[str] | None) -> Iterator[pl.DataFrame]:
        for file in files:
            for batch in file.iter_batches(batch_size=batch_rows, columns=read):
                frame = io.standard_columns(cast(pl.DataFrame, pl.from_arrow(batch)), columns,
                                             coerce_ids)
                if frame is None:
                    raise _NeedsRowReader
                yield articles_frame(frame)

    def source() -> Iterator[pl.DataFrame]:
        yield from batches(None)

    timer = StageTimer()
    cols = RowColumns()
    try:
        with timer.stage("signatures"):
            signed = sign((cols.add(frame) for frame in batches(wanted)), ngram=ngram,
                          workers=workers)
    except _NeedsRowReader:
        return None
    if not cols.ids or pl.concat(cols.ids).is_duplicated().any():
        return None
    result = grouped(signed, cols, source, threshold, keep, max_bucket_size, timer,
                     resolve_workers(workers))
    notes = io.Notes()  # what reading every column says (renamed columns)
    io.standard_columns(cast(pl.DataFrame, pl.from_arrow(files[0].schema_arrow.empty_table())),
                        columns, coerce_ids, notes)
    result.stats["notes"] = notes.lines()
    return result
