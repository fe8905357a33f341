"""Reading the input on the workers: a plan of partitions, rows read with the rules of
``io.read_articles``, and duplicate ids found across partitions by a shuffle."""

from __future__ import annotations

import glob
import itertools
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dedup import io
from dedup.engine_dask.records import Duplicate, IdEntry, Piece, Read
from dedup.engine_dask.routing import route_text, take
from dedup.engine_dask.runner import Run
from dedup.prepare import articles_frame
from dedup.records import Rejected

__all__ = ["expand", "plan", "read_files"]


def expand(paths: str | Path | Sequence[str | Path]) -> list[str]:
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
    io.distinct_inputs(out)
    return out


def plan(files: list[str], fmt: str | None, partitions: int | None,
         partition_rows: int) -> list[Piece]:
    """Partitions of the input: Parquet files sliced by rows, other formats whole files.

    Only Parquet metadata (row counts) is read here, on the client.
    """
    kinds = [io.detect_format(f, fmt) for f in files]
    rows = {f: _parquet_rows(f) for f, k in zip(files, kinds, strict=True) if k == "parquet"}
    total = sum(rows.values())
    pieces: list[Piece] = []
    for f, kind in zip(files, kinds, strict=True):
        if kind != "parquet":
            pieces.append(Piece(f, kind))
            continue
        if partitions is None:
            count = max(1, -(-rows[f] // partition_rows))
        else:
            count = max(1, round(partitions * rows[f] / max(total, 1)))
        count = max(1, min(count, rows[f]))
        bounds = np.linspace(0, rows[f], count + 1).round().astype(int)
        pieces.extend(
            Piece(f, kind, int(a), int(b - a)) for a, b in itertools.pairwise(bounds)
        )
    return pieces


def _cannot_read(path: str, err: Exception) -> io.InputError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return io.InputError(f"{path}: cannot read ({first})")


def _parquet_rows(path: str) -> int:
    try:
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    except Exception as err:  # polars raises several types for unreadable files
        raise _cannot_read(path, err) from None


def read_piece(piece: Piece, columns: io.Columns, skip_bad_rows: bool,
               coerce_ids: bool = False) -> Read:
    """Read one partition on a worker with the rules of ``io.read_articles`` (bad rows, dates,
    column mapping); duplicate ids across partitions are found later, by a shuffle."""
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    rejected: list[Rejected] = []
    notes = io.Notes()
    bad = io.bad_row_handler(skip_bad_rows, rejected)
    try:
        for line, raw in _piece_records(piece, bad, notes):
            if not rows and not rejected and piece.fmt in ("csv", "parquet"):
                missing = io.missing_column(piece.path, list(raw), columns)
                if missing is not None:  # as the local reader says it
                    return Read(io.articles_table([]), [], [], missing)
            article = io.map_row(raw, columns, piece.path, line, bad, coerce_ids=coerce_ids,
                                 notes=notes)
            if article is not None:
                rows.append(article)
                lines.append(line)
    except io.InputError as err:
        return Read(io.articles_table([]), [], rejected, str(err))
    except OSError as err:
        return Read(io.articles_table([]), [], rejected,
                    f"{piece.path}: cannot read ({err.strerror or err})")
    frame = io.articles_table(rows, notes)
    return Read(frame, lines, rejected, notes=notes.counts)


def _piece_records(piece: Piece, bad: io.Bad, notes: io.Notes
                   ) -> Iterator[tuple[int | None, dict[str, Any]]]:
    if piece.fmt != "parquet":
        yield from io.records(piece.path, piece.fmt, None, bad, notes)
        return
    try:
        frame = pl.scan_parquet(piece.path).slice(piece.offset, piece.length).collect()
    except Exception as err:  # polars raises several types for unreadable files
        raise _cannot_read(piece.path, err) from None
    yield from enumerate(frame.iter_rows(named=True), start=piece.offset + 1)


def _frame_of(read: Read) -> pl.DataFrame:
    return articles_frame(read.frame)


def _id_keys(read: Read, part: int, buckets: int) -> list[list[IdEntry]]:
    out: list[list[IdEntry]] = [[] for _ in range(buckets)]
    for row, (article_id, line) in enumerate(zip(read.frame["id"], read.lines, strict=True)):
        out[route_text(article_id, buckets)].append(IdEntry(article_id, part, row, line))
    return out


def _duplicates(*slices: list[IdEntry]) -> list[Duplicate]:
    """Every id seen more than once, with its first occurrence (the earliest row)."""
    first: dict[str, IdEntry] = {}
    repeats = []
    for entry in sorted((e for s in slices for e in s), key=lambda e: (e.part, e.row)):
        if entry.id in first:
            repeats.append(Duplicate(entry, first[entry.id]))
        else:
            first[entry.id] = entry
    return repeats


def _drop_rows(read: Read, rows: list[int]) -> Read:
    keep = np.setdiff1d(np.arange(read.frame.height), np.asarray(rows, dtype=np.int64))
    return Read(take(read.frame, keep), [read.lines[k] for k in keep], read.rejected,
                notes=read.notes)


def read_files(run: Run, pieces: list[Piece], columns: io.Columns,
               skip_bad_rows: bool, coerce_ids: bool = False
               ) -> tuple[list[Any], list[Rejected], list[str]]:
    """Read every piece on the workers; reject or report duplicate ids across pieces.
    Returns the frames' futures, the rows rejected and the read's notes for the summary."""
    reads = [run.submit(read_piece, p, columns, skip_bad_rows, coerce_ids) for p in pieces]
    errors = run.gather([run.submit(operator.attrgetter("error"), r) for r in reads])
    for error in errors:
        if error:
            raise io.InputError(error)
    buckets = len(pieces)
    keys = [run.submit(_id_keys, r, k, buckets) for k, r in enumerate(reads)]
    dups = run.gather([run.submit(_duplicates, *col) for col in run.shuffle(keys, buckets)])
    repeats = sorted((d for bucket in dups for d in bucket),
                     key=lambda d: (d.repeat.part, d.repeat.row))

    def where(entry: IdEntry) -> str:
        path = pieces[entry.part].path
        return f"{path}:{entry.line}" if entry.line is not None else path

    if repeats and not skip_bad_rows:
        repeat, first = repeats[0].repeat, repeats[0].first
        raise io.InputError(f"{where(repeat)} (id {repeat.id!r}): duplicate id, first "
                            f"seen at {where(first)} (or pass --skip-bad-rows)")
    rejected = [r for rs in run.gather([run.submit(operator.attrgetter("rejected"), r)
                                        for r in reads]) for r in rs]
    order = {p.path: k for k, p in enumerate(pieces)}
    drops: dict[int, list[int]] = {}
    for d in repeats:
        rejected.append(Rejected(pieces[d.repeat.part].path, d.repeat.line, d.repeat.id,
                                 f"duplicate id, first seen at {where(d.first)}"))
        drops.setdefault(d.repeat.part, []).append(d.repeat.row)
    reads = [run.submit(_drop_rows, r, drops[k]) if k in drops else r
             for k, r in enumerate(reads)]
    rejected.sort(key=lambda r: (order.get(r.file, len(order)), r.line or 0))
    notes = io.Notes()
    for counts in run.gather([run.submit(operator.attrgetter("notes"), r) for r in reads]):
        for note, count in counts.items():
            notes.add(note, count)
    return [run.submit(_frame_of, r) for r in reads], rejected, notes.lines()
