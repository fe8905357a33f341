"""Reading articles (JSONL, CSV, Parquet, .txt folders, stdin).

Every input row ends up either as an article or as a ``Rejected`` record with its file and
line, so a run can always account for what it read. Errors name the file, the line or id,
and the fix; the CLI prints them on one line.
"""

from __future__ import annotations

import email.utils
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from dedup.io.errors import InputError
from dedup.io.formats import Bad, Notes, read_csv_frame, records
from dedup.io.jsontext import RawJSON, json_text
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


# Names the outputs write (assignments: id, cluster_id, is_canonical, similarity and the
# mapped article fields). An input column of one of these names that is not mapped to an
# article field is carried as ``input_NAME`` instead (noted in the run's summary).
ARTICLE_FIELDS = ("id", "text", "title", "published", "source")
RESERVED = (*ARTICLE_FIELDS, "cluster_id", "is_canonical", "similarity", "copy_group")
# Extra columns nested deeper than this are carried as JSON text: Parquet writers and
# polars' recursive types are not made for 1,000-level lists.
MAX_NESTING = 32


@dataclass(frozen=True, slots=True)
class Columns:
    """Which input columns hold the article fields, and the output names an other input
    column is carried away from (``carried_names``): ``dedup dedupe`` writes no
    ``cluster_id``, so it keeps that column's name (``ARTICLE_FIELDS`` only)."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    published: str = "published"
    source: str = "source"
    reserved: tuple[str, ...] = RESERVED

    def fields(self) -> dict[str, str]:
        """Each article field's input column: ``{"id": "doc_id", "text": "text", ...}``."""
        return {name: getattr(self, name) for name in ARTICLE_FIELDS}


@dataclass
class ReadResult:
    """Articles read (as a frame with the standard column names) and rows rejected."""

    frame: pl.DataFrame
    rejected: list[Rejected]
    notes: list[str] = field(default_factory=list)


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


def distinct_inputs(paths: Sequence[str]) -> None:
    """An ``InputError`` when one input is given twice (``a.jsonl ./a.jsonl``, ``- -``):
    read twice, every one of its rows would be reported as a duplicate id of itself."""
    seen: dict[str, str] = {}
    for path in paths:
        key = path if path == "-" else str(Path(path).resolve())
        if key in seen:
            shown = "- (standard input)" if path == "-" else path
            also = "" if seen[key] == path else f" (as {seen[key]})"
            raise InputError(f"{shown}: given twice{also}; pass each input once")
        seen[key] = path


def read_articles(
    paths: Sequence[str],
    *,
    fmt: str | None = None,
    columns: Columns = Columns(),
    skip_bad_rows: bool = False,
    stdin: IO[bytes] | None = None,
    coerce_ids: bool = False,
) -> ReadResult:
    """Read every input into one frame with columns id, text, title, published, source, extras.

    Bad rows raise ``InputError`` unless ``skip_bad_rows``, in which case they are
    returned as ``Rejected`` records. Duplicate ids across all inputs are bad rows too.
    Ids must be strings (``coerce_ids``: integers are read as their decimal text).
    """
    notes = Notes()
    distinct_inputs(paths)
    for path in paths:
        kind = detect_format(path, fmt)
        if path == "-":
            if kind != "jsonl":
                raise InputError(f"-: standard input is read as JSONL only, not {kind}: save "
                                 "it to a file and pass the file")
            continue
        if not Path(path).exists():
            raise InputError(f"{path}: no such file or directory")
        if kind != "txt" and Path(path).is_dir():
            raise InputError(f"{path}: is a folder, not a {kind} file (a folder of .txt "
                             "files is read without --format, or with --format txt)")
    try:
        fast = read_tables(paths, fmt, columns, coerce_ids, notes)
        if fast is not None:
            return ReadResult(frame=fast, rejected=[], notes=notes.lines())
        rows: list[dict[str, Any]] = []
        rejected: list[Rejected] = []

        bad = bad_row_handler(skip_bad_rows, rejected)
        seen: dict[str, str] = {}
        for path in paths:
            kind = detect_format(path, fmt)
            for line, raw in records(path, kind, stdin, bad, notes):
                article = map_row(raw, columns, path, line, bad, coerce_ids=coerce_ids,
                                  notes=notes)
                if article is None:
                    continue
                where = f"{path}:{line}" if line is not None else path
                if article["id"] in seen:
                    bad(path, line, article["id"],
                        f"duplicate id, first seen at {seen[article['id']]}")
                    continue
                seen[article["id"]] = where
                rows.append(article)
    except OSError as err:
        where = err.filename if err.filename is not None else ", ".join(paths)
        raise InputError(f"{where}: cannot read ({err.strerror or err})") from None
    return ReadResult(frame=articles_table(rows, notes), rejected=rejected, notes=notes.lines())


def read_tables(paths: Sequence[str], fmt: str | None, columns: Columns,
                 coerce_ids: bool = False, notes: Notes | None = None) -> pl.DataFrame | None:
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
            raw = pl.read_parquet(path) if kind == "parquet" else read_csv_frame(path)
        except Exception:  # the row reader names the problem
            return None
        missing = missing_column(path, raw.columns, columns)
        if missing is not None:  # no row can have it: the mapping is wrong
            raise InputError(missing)
        frame = _standard_columns(raw, columns, coerce_ids, notes or Notes())
        if frame is None:
            return None
        frames.append(frame)
    if not frames:
        return None
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if frame["id"].is_duplicated().any():
        return None
    return frame


def standard_columns(raw: pl.DataFrame, columns: Columns, coerce_ids: bool = False,
                     notes: Notes | None = None) -> pl.DataFrame | None:
    """``raw`` (a clean table's rows) renamed and typed as ``read_articles`` gives them, or
    None when a row needs the row-by-row reader (to be reported or rejected). Public for
    readers that stream a table batch by batch (``dedupe_parquet``)."""
    return _standard_columns(raw, columns, coerce_ids, notes or Notes())


def missing_column(path: str, names: Sequence[str], columns: Columns) -> str | None:
    """The error for a table (CSV header, Parquet schema) without the id or text column:
    a wrong mapping, not bad rows, so it stops the run even with --skip-bad-rows."""
    for flag, name in (("--id-col", columns.id), ("--text-col", columns.text)):
        if name not in names:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
                return (f"{path}: one column {names[0]!r}: the file is not comma-separated; "
                        "save it as CSV with commas (or as JSONL or Parquet)")
            return f"{path}: no column {name!r} (columns: {shown}): map it with {flag}"
    return None


def _standard_columns(raw: pl.DataFrame, columns: Columns, coerce_ids: bool, notes: Notes
                      ) -> pl.DataFrame | None:
    """``raw`` renamed and typed as ``articles_table`` makes it, or None if a row is bad."""
    if columns.id not in raw.columns or columns.text not in raw.columns:
        return None
    if raw[columns.text].dtype not in (pl.String, pl.Null):
        return None
    if raw[columns.id].dtype != pl.String and not (coerce_ids and raw[columns.id].dtype in (
            pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)):
        return None  # the row reader names the first row whose id is not a string
    ids = raw[columns.id].cast(pl.String)
    if ids.null_count() or (ids.str.strip_chars() == "").any():
        return None
    published = (dates_column(raw[columns.published]) if columns.published in raw.columns
                 else None)
    if columns.published in raw.columns and published is None:
        return None

    if any(raw[name].dtype.is_nested() for name in (columns.title, columns.source)
           if name in raw.columns):
        return None  # a list or record as a title: the row reader carries it as JSON text

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
    extras = [c for c in raw.columns if c not in mapped]
    renamed = carried_names(extras, notes, columns.reserved)
    return core.hstack(raw.select(pl.col(c).alias(renamed.get(c, c)) for c in extras))


def carried_names(names: Iterable[str], notes: Notes | None = None,
                  reserved: Sequence[str] = RESERVED) -> dict[str, str]:
    """New names for extra input columns that clash with output names (``reserved``):
    ``cluster_id`` is carried as ``input_cluster_id`` (``input_cluster_id_2``, ... when the
    input has that too)."""
    names = list(names)
    taken = set(names) | set(reserved)
    out: dict[str, str] = {}
    for name in names:
        if name not in reserved:
            continue
        new, k = f"input_{name}", 2
        while new in taken:
            new, k = f"input_{name}_{k}", k + 1
        taken.add(new)
        out[name] = new
        if notes is not None:
            notes.add(f"input column {name!r} is an output name: carried as {new!r}")
    return out


def dates_column(values: pl.Series) -> pl.Series | None:
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
        parsed = {v: parse_date(v) for v in unique}
    except ValueError:
        return None
    return values.replace_strict(parsed, default=None, return_dtype=pl.Datetime("us"))


def bad_row_handler(skip_bad_rows: bool, rejected: list[Rejected]) -> Bad:
    """What to do with a bad row: raise one clear error, or record it and go on."""

    def bad(file: str, line: int | None, row_id: str | None, reason: str) -> None:
        if not skip_bad_rows:
            where = f"{file}:{line}" if line is not None else file
            who = f" (id {row_id!r})" if row_id is not None else ""
            raise InputError(f"{where}{who}: {reason} (or pass --skip-bad-rows)")
        rejected.append(Rejected(file=file, line=line, id=row_id, reason=reason))

    return bad



def map_row(
    raw: dict[str, Any], columns: Columns, path: str, line: int | None, bad: Bad, *,
    coerce_ids: bool = False, notes: Notes | None = None,
) -> dict[str, Any] | None:
    """One raw record as an article dict (standard names, extras after), or None after
    reporting it to ``bad``."""
    row_id = raw.get(columns.id)
    if columns.id not in raw:
        bad(path, line, None, f"missing id: no column {columns.id!r} in this row "
            f"({_columns_of(raw)}): map it with --id-col")
        return None
    if row_id is None or (isinstance(row_id, str) and row_id.strip() == ""):
        bad(path, line, None, f"missing id: no value in column {columns.id!r}")
        return None
    if not isinstance(row_id, str):
        integer = isinstance(row_id, int) and not isinstance(row_id, bool)
        if not (coerce_ids and integer):
            shown = json_text(row_id)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            bad(path, line, None, f"id {shown} in column {columns.id!r} is a "
                f"{_json_kind(row_id)}, not a string: quote it in the input"
                + (" or pass --coerce-ids" if integer else ""))
            return None
        row_id = str(row_id)
    if columns.text not in raw:
        bad(path, line, row_id, f"missing text: no column {columns.text!r} in this row "
            f"({_columns_of(raw)}): map it with --text-col")
        return None
    text = raw[columns.text]
    if text is not None and not isinstance(text, str):
        bad(path, line, row_id, f"text in column {columns.text!r} is not a string")
        return None
    published = raw.get(columns.published)
    try:
        published = parse_date(published)
    except ValueError:
        bad(path, line, row_id, f"unreadable date {published!r} in column "
            f"{columns.published!r}: use ISO 8601 (2024-03-22 or 2024-03-22T18:00:00) or "
            "RFC 2822 (Fri, 22 Mar 2024 18:00:00 GMT)")
        return None
    mapped = {columns.id, columns.text, columns.title, columns.published, columns.source}
    title = raw.get(columns.title)
    source = raw.get(columns.source)
    extras = {k: v for k, v in raw.items() if k not in mapped}
    renamed = (carried_names(extras, notes, columns.reserved)
               if not extras.keys().isdisjoint(columns.reserved) else {})
    return {
        "id": row_id,
        "text": text or "",
        "title": "" if title is None else title if isinstance(title, str) else json_text(title),
        "published": published,
        "source": None if source is None else source if isinstance(source, str)
        else json_text(source),
        **{renamed.get(k, k): v for k, v in extras.items()},
    }


def _columns_of(raw: dict[str, Any], most: int = 8) -> str:
    """The columns a row has, for an error that suggests which one to map."""
    names = [str(k) for k in raw]
    shown = ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most
                                       else "")
    return f"columns: {shown}" if names else "no columns"


def _json_kind(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "number"), (float, "number"), (list, "list"),
                       (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def parse_date(value: Any) -> datetime | None:
    """A naive-UTC datetime of an ISO 8601 value, or of an RFC 2822 one as RSS ``pubDate``
    writes it ("Fri, 22 Mar 2024 18:00:00 GMT"); None for none; ValueError otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                raise ValueError(text) from None
    if parsed.tzinfo is not None:  # store naive UTC so mixed inputs compare
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def articles_table(rows: list[dict[str, Any]], notes: Notes | None = None) -> pl.DataFrame:
    """The frame of mapped rows: core columns typed, each extra column typed by its values
    or, when they disagree (a number here, a list there) or nest deeper than
    ``MAX_NESTING``, kept as JSON text (noted in ``notes``)."""
    schema: dict[str, pl.DataType] = {
        "id": pl.String(),
        "text": pl.String(),
        "title": pl.String(),
        "published": pl.Datetime("us"),
        "source": pl.String(),
    }
    if not rows:
        return pl.DataFrame(schema=schema)
    columns = [pl.Series(name, [row.get(name) for row in rows], dtype=dtype)
               for name, dtype in schema.items()]
    extras = list(dict.fromkeys(k for row in rows for k in row if k not in schema))
    for name in extras:
        series, why = _extra_column(name, [row.get(name) for row in rows])
        if why is not None and notes is not None:
            notes.add(f"column {name!r} kept as JSON text ({why})")
        columns.append(series)
    return pl.DataFrame(columns)


def _extra_column(name: str, values: list[Any]) -> tuple[pl.Series, str | None]:
    """A typed column holding exactly ``values``, else their JSON text and the reason."""
    why: str | None = None
    if any(isinstance(v, RawJSON) for v in values):
        why = "nested too deep to decode"
    elif any(_nesting(v) > MAX_NESTING for v in values if isinstance(v, (list, dict))):
        why = f"nested deeper than {MAX_NESTING} levels"
    else:
        kinds = {_json_kind(v) for v in values if v is not None}
        attempts: list[pl.DataType | None] = [None]
        if kinds == {"number"}:
            attempts.append(pl.Float64())
        for dtype in attempts:
            try:
                series = pl.Series(name, values, dtype=dtype, strict=dtype is None)
            except Exception:  # polars raises several types for values it cannot hold
                continue
            if _writable_type(series.dtype) and series.to_list() == values:
                return series, None
        why = f"its values are {' and '.join(sorted(kinds))}s" if len(kinds) > 1 \
            else "its values mix types or shapes"
    return pl.Series(name, [None if v is None else json_text(v) for v in values],
                     dtype=pl.String), why


def _nesting(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (no recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if depth > MAX_NESTING:
                return depth
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


def _writable_type(dtype: Any) -> bool:
    """Whether Parquet and JSON writers take this type (not an object, not an empty struct)."""
    if dtype == pl.Object:
        return False
    if isinstance(dtype, pl.Struct):
        return bool(dtype.fields) and all(_writable_type(f.dtype) for f in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _writable_type(dtype.inner)
    return True



def stdin_bytes() -> IO[bytes]:
    """Standard input as bytes (so encoding errors are ours to report)."""
    return sys.stdin.buffer
