"""All file I/O: reading articles (JSONL, CSV, Parquet, .txt folders, stdin) and atomic writes.

Every input row ends up either as an article or as a ``Rejected`` record with its file and
line, so a run can always account for what it read. Errors name the file, the line or id,
and the fix; the CLI prints them on one line.
"""

from __future__ import annotations

import heapq
import io as _io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from dedup.records import Rejected

FORMATS = ("jsonl", "csv", "parquet", "txt")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
}


class InputError(ValueError):
    """Input that cannot be read; the message names the file and line and says the fix."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Which input columns hold the article fields."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    published: str = "published"
    source: str = "source"


@dataclass
class ReadResult:
    """Articles read (as a frame with the standard column names) and rows rejected."""

    frame: pl.DataFrame
    rejected: list[Rejected]


def detect_format(path: str, explicit: str | None) -> str:
    """Format from ``--format`` or the extension; a directory means a folder of .txt files."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"unknown format {explicit!r}: use one of {', '.join(FORMATS)}")
        return explicit
    if path == "-":
        return "jsonl"
    if Path(path).is_dir():
        return "txt"
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown format {Path(path).suffix or '(no extension)'!r}: "
            f"pass --format {'|'.join(FORMATS)}"
        )
    return fmt


def read_articles(
    paths: Sequence[str],
    *,
    fmt: str | None = None,
    columns: Columns = Columns(),
    skip_bad_rows: bool = False,
    stdin: IO[bytes] | None = None,
) -> ReadResult:
    """Read every input into one frame with columns id, text, title, published, source, extras.

    Bad rows raise ``InputError`` unless ``skip_bad_rows``, in which case they are
    returned as ``Rejected`` records. Duplicate ids across all inputs are bad rows too.
    """
    fast = _read_tables(paths, fmt, columns)
    if fast is not None:
        return ReadResult(frame=fast, rejected=[])
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []

    bad = bad_row_handler(skip_bad_rows, rejected)
    seen: dict[str, str] = {}
    for path in paths:
        kind = detect_format(path, fmt)
        if path != "-" and not Path(path).exists():
            raise InputError(f"{path}: no such file or directory")
        for line, raw in records(path, kind, stdin, bad):
            article = map_row(raw, columns, path, line, bad)
            if article is None:
                continue
            where = f"{path}:{line}" if line is not None else path
            if article["id"] in seen:
                bad(path, line, article["id"], f"duplicate id, first seen at {seen[article['id']]}")
                continue
            seen[article["id"]] = where
            rows.append(article)
    return ReadResult(frame=articles_table(rows), rejected=rejected)


def _read_tables(paths: Sequence[str], fmt: str | None, columns: Columns) -> pl.DataFrame | None:
    """Parquet and CSV inputs read column-wise, or None when any row needs a closer look.

    A million rows as Python dicts cost ~9 GB; columns cost the size of the data. Any
    input that is not a clean table (a bad id, text that is not a string, an unreadable
    date, a duplicate id) returns None, and the row-by-row reader then reports or rejects
    exactly as before.
    """
    frames = []
    for path in paths:
        kind = detect_format(path, fmt) if path != "-" else "jsonl"
        if kind not in ("parquet", "csv") or not Path(path).is_file():
            return None
        try:
            raw = pl.read_parquet(path) if kind == "parquet" else _read_csv(path)
        except Exception:  # the row reader names the problem
            return None
        frame = _standard_columns(raw, columns)
        if frame is None:
            return None
        frames.append(frame)
    if not frames:
        return None
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if frame["id"].is_duplicated().any():
        return None
    return frame


def _standard_columns(raw: pl.DataFrame, columns: Columns) -> pl.DataFrame | None:
    """``raw`` renamed and typed as ``articles_table`` makes it, or None if a row is bad."""
    if columns.id not in raw.columns or columns.text not in raw.columns:
        return None
    if raw[columns.text].dtype not in (pl.String, pl.Null):
        return None
    ids = raw[columns.id].cast(pl.String)
    if ids.null_count() or (ids.str.strip_chars() == "").any():
        return None
    published = _dates(raw[columns.published]) if columns.published in raw.columns else None
    if columns.published in raw.columns and published is None:
        return None

    def text_of(name: str, empty: str | None) -> pl.Series:
        if name not in raw.columns:
            return pl.Series(name, [empty] * raw.height, dtype=pl.String)
        values = raw[name].cast(pl.String)
        return values.fill_null(empty) if empty is not None else values

    core = pl.DataFrame({
        "id": ids,
        "text": raw[columns.text].cast(pl.String).fill_null(""),
        "title": text_of(columns.title, ""),
        "published": published if published is not None
        else pl.Series([None] * raw.height, dtype=pl.Datetime("us")),
        "source": text_of(columns.source, None),
    })
    mapped = {columns.id, columns.text, columns.title, columns.published, columns.source}
    return core.hstack(raw.select(c for c in raw.columns if c not in mapped))


def _dates(values: pl.Series) -> pl.Series | None:
    """Naive-UTC datetimes of a column, or None if a value is not a readable date."""
    if values.dtype == pl.Null:
        return pl.Series(values.name, [None] * len(values), dtype=pl.Datetime("us"))
    if isinstance(values.dtype, pl.Datetime):
        if values.dtype.time_zone is not None:
            values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return values.cast(pl.Datetime("us"))
    if values.dtype == pl.Date:
        return values.cast(pl.Datetime("us"))
    if values.dtype != pl.String:
        return None
    unique = values.unique().drop_nulls().to_list()
    try:
        parsed = {v: _parse_date(v) for v in unique}
    except ValueError:
        return None
    return values.replace_strict(parsed, default=None, return_dtype=pl.Datetime("us"))


Bad = Callable[[str, "int | None", "str | None", str], None]


def bad_row_handler(skip_bad_rows: bool, rejected: list[Rejected]) -> Bad:
    """What to do with a bad row: raise one clear error, or record it and go on."""

    def bad(file: str, line: int | None, row_id: str | None, reason: str) -> None:
        if not skip_bad_rows:
            where = f"{file}:{line}" if line is not None else file
            who = f" (id {row_id!r})" if row_id is not None else ""
            raise InputError(f"{where}{who}: {reason} (or pass --skip-bad-rows)")
        rejected.append(Rejected(file=file, line=line, id=row_id, reason=reason))

    return bad


def records(
    path: str, kind: str, stdin: IO[bytes] | None, bad: Bad
) -> Iterator[tuple[int | None, dict[str, Any]]]:
    if kind == "jsonl":
        yield from _jsonl(path, stdin if path == "-" else None, bad)
    elif kind == "csv":
        yield from _tabular(path, _read_csv)
    elif kind == "parquet":
        yield from _tabular(path, lambda p: pl.read_parquet(p))
    else:
        yield from _txt_folder(path, bad)


def _jsonl(path: str, stream: IO[bytes] | None, bad: Bad) -> Iterator[tuple[int, dict[str, Any]]]:
    handle = stream if stream is not None else open(path, "rb")  # noqa: SIM115
    try:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad(path, number, None, f"bytes that are not UTF-8 at column {err.start + 1}; "
                    "re-encode the file as UTF-8")
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                bad(path, number, None, f"malformed JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(obj, dict):
                bad(path, number, None, "a JSON line must be an object with id and text")
                continue
            yield number, obj
    finally:
        if stream is None:
            handle.close()


def _read_csv(path: str) -> pl.DataFrame:
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{path}:{line}: bytes that are not UTF-8; re-encode the file as UTF-8"
        ) from None
    return pl.read_csv(_io.BytesIO(data), infer_schema=False)


def _tabular(
    path: str, reader: Callable[[str], pl.DataFrame]
) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        frame = reader(path)
    except InputError:
        raise
    except Exception as err:  # polars raises several types for unreadable files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: cannot read ({first})") from None
    # CSV line numbers count the header; Parquet rows are numbered from 1.
    offset = 2 if path.lower().endswith(".csv") else 1
    yield from enumerate(frame.iter_rows(named=True), start=offset)


def _txt_folder(path: str, bad: Bad) -> Iterator[tuple[int | None, dict[str, Any]]]:
    files = [Path(path)] if Path(path).is_file() else sorted(Path(path).glob("*.txt"))
    if not files:
        raise InputError(f"{path}: folder holds no .txt files")
    for file in files:
        try:
            content = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            line = file.read_bytes().count(b"\n", 0, err.start) + 1
            bad(str(file), line, file.stem, "bytes that are not UTF-8; re-encode it as UTF-8")
            continue
        lines = content.splitlines()
        first = next((k for k, ln in enumerate(lines) if ln.strip()), None)
        # The first line is often a headline but sometimes the lede paragraph, so it
        # stays in the text as well (normalize drops repeats of it).
        title = lines[first].strip() if first is not None else ""
        yield None, {"id": file.stem, "title": title, "text": content, "source": None}


def map_row(
    raw: dict[str, Any], columns: Columns, path: str, line: int | None, bad: Bad
) -> dict[str, Any] | None:
    row_id = raw.get(columns.id)
    if row_id is None or str(row_id).strip() == "":
        bad(path, line, None, f"missing id: no value in column {columns.id!r} (map it with "
            "--id-col)")
        return None
    row_id = str(row_id)
    if columns.text not in raw:
        bad(path, line, row_id, f"missing text: no column {columns.text!r} (map it with "
            "--text-col)")
        return None
    text = raw[columns.text]
    if text is not None and not isinstance(text, str):
        bad(path, line, row_id, f"text in column {columns.text!r} is not a string")
        return None
    published = raw.get(columns.published)
    try:
        published = _parse_date(published)
    except ValueError:
        bad(path, line, row_id, f"unreadable date {published!r} in column "
            f"{columns.published!r}: use ISO 8601 (2024-03-22 or 2024-03-22T18:00:00)")
        return None
    mapped = {columns.id, columns.text, columns.title, columns.published, columns.source}
    title = raw.get(columns.title)
    source = raw.get(columns.source)
    return {
        "id": row_id,
        "text": text or "",
        "title": "" if title is None else str(title),
        "published": published,
        "source": None if source is None else str(source),
        **{k: v for k, v in raw.items() if k not in mapped},
    }


def _parse_date(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if parsed.tzinfo is not None:  # store naive UTC so mixed inputs compare
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def articles_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "id": pl.String(),
        "text": pl.String(),
        "title": pl.String(),
        "published": pl.Datetime("us"),
        "source": pl.String(),
    }
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(*(pl.col(c).cast(t) for c, t in schema.items()))


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temp path beside ``target`` that replaces it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise readers of the output
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(target: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write JSON lines atomically, keys in a fixed order, so runs are byte-identical."""
    with jsonl_sink(target) as write:
        for record in records:
            write(record)


@contextmanager
def jsonl_sink(target: Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A function that appends one JSON line; the file appears only if the block succeeds.

    Lets a producer stream records (a million stories) to disk instead of holding them.
    """
    with text_sink(target) as write_text:

        def write(record: dict[str, Any]) -> None:
            write_text(json_line(record))

        yield write


@contextmanager
def text_sink(target: Path) -> Iterator[Callable[[str], None]]:
    """``jsonl_sink`` for lines already serialized (``pipeline.cluster``'s
    ``on_story_lines``): a function that appends text; the file appears only on success."""
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:

        def write(text: str) -> None:
            out.write(text)

        yield write


def json_line(record: dict[str, Any]) -> str:
    """One output line: the same bytes whichever engine or process writes the record."""
    return json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"


def write_sorted_part(target: Path, keyed: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """A part file of ``key<TAB>json`` lines sorted by key, for ``merge_sorted_parts``."""
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        for key, record in sorted(keyed, key=lambda item: item[0]):
            if "\t" in key or "\n" in key:
                raise ValueError(f"part key {key!r} holds a tab or newline")
            out.write(key + "\t" + json_line(record))


def merge_sorted_parts(parts: Sequence[Path], target: Path) -> int:
    """Merge sorted part files into one JSON-lines file in key order, streaming.

    Memory is one line per part, however large the parts: how a distributed run writes
    clusters.jsonl and stories.jsonl without gathering them. Returns the lines written.
    """
    handles = [open(part, encoding="utf-8", newline="\n") for part in parts]  # noqa: SIM115
    written = 0
    try:
        with open(target, "w", encoding="utf-8", newline="\n") as out:
            for line in heapq.merge(*handles, key=lambda ln: ln.split("\t", 1)[0]):
                out.write(line.split("\t", 1)[1])
                written += 1
    finally:
        for handle in handles:
            handle.close()
    return written


def publish(staging: Path, outdir: Path, replaces: Sequence[str] = ()) -> None:
    """Move everything in ``staging`` into ``outdir``, then delete ``staging``.

    Files are replaced atomically one by one; a folder (partitioned assignments) is
    swapped by two renames. ``replaces`` names outputs of another shape that the new ones
    supersede (``assignments.parquet`` when ``assignments/`` arrives), removed after.
    """
    trash = Path(tempfile.mkdtemp(prefix=".dedup-old-", dir=outdir))
    try:
        for item in sorted(staging.iterdir()):
            target = outdir / item.name
            if target.is_dir() and not target.is_symlink():
                target.rename(trash / item.name)
            os.replace(item, target)
        for name in replaces:
            stale = outdir / name
            if stale.is_dir() and not stale.is_symlink():
                stale.rename(trash / name)
            elif stale.exists():
                stale.unlink()
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def write_frame(target: Path, frame: pl.DataFrame, fmt: str) -> None:
    """Write a table atomically as Parquet or JSONL."""
    with atomic_path(target) as tmp:
        if fmt == "parquet":
            # No statistics timestamps or writer metadata that vary between runs.
            frame.write_parquet(tmp, compression="zstd", statistics=False)
        else:
            write_rows = frame.to_dicts()
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                for row in write_rows:
                    out.write(json_line(row))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def stdin_bytes() -> IO[bytes]:
    """Standard input as bytes (so encoding errors are ours to report)."""
    return sys.stdin.buffer
