"""Each input format read as raw records, with the line each starts on.

JSONL (with a fast path for flat objects and repairs of lone surrogates), CSV (physical
lines, a quote that never closes refused), Parquet and folders of .txt files. ``readers``
maps these records to articles; what a read changed without rejecting a row is counted
in ``Notes``, and a bad row goes to a ``Bad`` handler.
"""

from __future__ import annotations

import csv
import io as _io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import polars as pl

from dedup.io.errors import InputError
from dedup.io.jsontext import RawJSON

_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")

# What to do with a bad row (file, line, id, reason): raise, or record it and go on.
Bad = Callable[[str, "int | None", "str | None", str], None]


class Notes:
    """What a read changed without rejecting a row (renamed columns, repaired text, columns
    kept as JSON text), counted per kind, for the run's summary."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, note: str, count: int = 1) -> None:
        self.counts[note] = self.counts.get(note, 0) + count

    def lines(self) -> list[str]:
        return [note if n == 1 else f"{note} ({n:,} rows)" for note, n in self.counts.items()]


def records(
    path: str, kind: str, stdin: IO[bytes] | None, bad: Bad, notes: Notes | None = None
) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """Each row of one input as (line, raw record); bad rows go to ``bad``."""
    notes = notes if notes is not None else Notes()
    if kind == "jsonl":
        yield from _jsonl(path, stdin if path == "-" else None, bad, notes)
    elif kind == "csv":
        yield from _csv_rows(path, bad)
    elif kind == "parquet":
        yield from _tabular(path, lambda p: pl.read_parquet(p))
    else:
        yield from _txt_folder(path, bad)


def _jsonl(path: str, stream: IO[bytes] | None, bad: Bad, notes: Notes
           ) -> Iterator[tuple[int, dict[str, Any]]]:
    handle = stream if stream is not None else open(path, "rb")  # noqa: SIM115
    try:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_BOM):  # spreadsheet tools write one
                raw = raw[len(_BOM):]
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
                what = err.msg.removesuffix(" at")  # "Unterminated string starting at"
                bad(path, number, None, f"malformed JSON ({what} at column {err.colno})")
                continue
            except RecursionError:  # nested deeper than the decoder goes
                obj = _shallow_object(text)
                if obj is None:
                    bad(path, number, None, "malformed JSON (nested too deep to read)")
                    continue
            if not isinstance(obj, dict):
                bad(path, number, None, "a JSON line must be an object with id and text")
                continue
            if "\\u" in text and _has_surrogate(obj):  # only escapes make them
                fixed = _repair(obj)
                if fixed is None:
                    bad(path, number, None, "nested too deep to repair its lone surrogates")
                    continue
                obj = fixed
                notes.add("text with lone surrogates (invalid \\ud800-\\udfff escapes) "
                          "repaired to U+FFFD")
            yield number, obj
    finally:
        if stream is None:
            handle.close()


def _shallow_object(text: str) -> dict[str, Any] | None:
    """A JSON object whose members are decoded one by one, a member nested too deep for
    the decoder kept as its JSON text (``RawJSON``); None if it is not a JSON object.

    Scans brackets without recursion, so 100,000 nested lists cost one pass.
    """
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if pos >= len(text) or text[pos] != "{":
        return None
    out: dict[str, Any] = {}
    pos = _skip_space(text, pos + 1)
    if pos < len(text) and text[pos] == "}":
        return out if not text[pos + 1:].strip() else None
    while True:
        if pos >= len(text) or text[pos] != '"':
            return None
        try:
            key, pos = _scanstring(text, pos + 1)
        except ValueError:
            return None
        pos = _skip_space(text, pos)
        if pos >= len(text) or text[pos] != ":":
            return None
        start = _skip_space(text, pos + 1)
        end = _value_end(text, start)
        if end is None:
            return None
        raw = text[start:end].strip()
        try:
            value, used = decoder.raw_decode(raw)
            if used != len(raw):
                return None
        except RecursionError:
            value = RawJSON(raw)
        except ValueError:
            return None
        out[key] = value
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "}" and not text[pos + 1:].strip():
            return out
        return None


_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_JSON_MARKS = re.compile(r'["\[\]{},]')


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _value_end(text: str, pos: int) -> int | None:
    """Where the JSON value starting at ``pos`` ends (brackets counted, strings skipped)."""
    depth = 0
    while True:
        found = _JSON_MARKS.search(text, pos)
        if found is None:
            return len(text) if depth == 0 else None
        pos, mark = found.start(), found.group()
        if mark == '"':
            try:
                pos = _scanstring(text, pos + 1)[1]
            except ValueError:
                return None
            continue
        if mark in "[{":
            depth += 1
        elif mark in "]}":
            if depth == 0:
                return pos
            depth -= 1
        elif depth == 0:  # a comma between members
            return pos
        pos += 1


def _has_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a lone surrogate (from a ``\\ud800`` escape)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _repair(value: Any, depth: int = 0) -> Any:
    """``value`` with lone surrogates replaced by U+FFFD (they cannot be written as UTF-8);
    None when it is nested too deep to rebuild."""
    if depth > 200:
        return None
    if isinstance(value, str):
        return type(value)(_SURROGATE.sub("\ufffd", value))
    if isinstance(value, list):
        items = [_repair(v, depth + 1) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value,
                                                                        strict=True)) else items
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            fixed = _repair(v, depth + 1)
            if fixed is None and v is not None:
                return None
            out[_SURROGATE.sub("\ufffd", k)] = fixed
        return out
    return value


def _csv_rows(path: str, bad: Bad) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV records with the physical line each starts on (quoted fields may hold newlines).

    Bytes that are not UTF-8 make only their record bad. Empty fields are missing values,
    as polars reads them.
    """
    data = Path(path).read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
        clean = True
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        clean = False
    _check_quotes(path, text)
    reader = _csv_reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        if not clean and any(_ESCAPED_BYTE.search(h) for h in header):
            raise InputError(f"{path}:1: bytes that are not UTF-8 in the header; re-encode "
                             "the file as UTF-8")
        _check_header(path, header)
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            if not clean and any(_ESCAPED_BYTE.search(v) for v in record):
                bad(path, start, None, "bytes that are not UTF-8; re-encode the file as UTF-8")
                continue
            if len(record) != len(header):
                bad(path, start, None, f"{len(record)} fields where the header has "
                    f"{len(header)} (an unquoted comma or newline?)")
                continue
            yield start, {h: (v if v != "" else None) for h, v in zip(header, record,
                                                                       strict=True)}
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: unreadable CSV ({err})") from None


def _check_header(path: str, header: Sequence[str]) -> None:
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{path}:1: column {repeated[0]!r} appears twice in the header; "
                         "rename one")


def _check_quotes(path: str, text: str) -> bool:
    """Refuse a quoted field left open at the end; True when some record's field count
    differs from the header's."""
    unclosed, ragged = _scan(text)
    if unclosed is not None:
        raise InputError(f"{path}:{unclosed}: a quoted field opens here and never closes, so "
                         "every later line would be part of it: close or double the quote")
    return ragged


# The csv module refuses a field over 128 KiB, which polars reads: a long article would read
# column-wise and fail row by row. Raised (never lowered) for the whole process, as the csv
# module keeps the limit nowhere else.
_FIELD_LIMIT = 2**31 - 1


def _csv_reader(text: str) -> Any:
    """``csv.reader`` over a file's text, fields of any length."""
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    return csv.reader(_io.StringIO(text, newline=""))


def _scan(text: str) -> tuple[int | None, bool]:
    """The line of the last record when a quoted field in it runs to the end of the file
    (or None), and whether any record's field count differs from the first's.

    The lenient reader would take the rest of the file into an open field without a word.
    Only the last record can run to the end, and it does exactly when the probe ``\\n"\\n``
    appended to it closes a field instead of starting new records.
    """
    reader = _csv_reader(text)
    last, start, width, ragged = None, 1, None, False
    try:
        for record in reader:
            last, start = start, reader.line_num + 1
            if record:
                width = len(record) if width is None else width
                ragged = ragged or len(record) != width
    except csv.Error:  # the row reader names it
        return None, True
    if last is None:
        return None, ragged
    # Records start on a line of their own: the last one after its first last - 1 lines.
    offset = sum(map(len, itertools.islice(_io.StringIO(text, newline=""), last - 1)))
    probe = _csv_reader(text[offset:] + '\n"\n')
    return (last if sum(1 for _ in probe) == 1 else None), ragged


def read_csv_frame(path: str) -> pl.DataFrame:
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{path}:{line}: bytes that are not UTF-8; re-encode the file as UTF-8"
        ) from None
    text = data.decode("utf-8-sig")
    _check_header(path, next(_csv_reader(text), []))
    # polars reads '"a""' at the end as "a" and fills a short row with nulls, without a
    # word: the row reader reports both.
    if _check_quotes(path, text):
        raise InputError(f"{path}: a record's field count differs from the header's")
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


def _txt_files(folder: Path) -> list[tuple[str, Path]]:
    """Each .txt file below ``folder`` with its id: the path under the folder without
    ``.txt`` ("2024/03/story"), so that a crawl filed by day keeps apart two days'
    "story.txt". Subfolders are read (a file left unread would be lost without a word),
    in sorted order; links to folders are not followed, so a loop cannot recur."""
    def unreadable(err: OSError) -> None:
        raise InputError(f"{err.filename}: cannot read this folder ({err.strerror}): "
                         "fix its permissions or move it out of the input folder")

    found = []
    for root, _, names in os.walk(folder, onerror=unreadable):
        base = Path(root).relative_to(folder)
        found += [(base / n).as_posix() for n in names if n.lower().endswith(".txt")]
    return [(name[:-len(".txt")], folder / name) for name in sorted(found)]


def _txt_folder(path: str, bad: Bad) -> Iterator[tuple[int | None, dict[str, Any]]]:
    files = ([(Path(path).stem, Path(path))] if Path(path).is_file()
             else _txt_files(Path(path)))
    if not files:
        raise InputError(f"{path}: folder holds no .txt files (subfolders included)")
    seen: dict[str, Path] = {}
    for row_id, file in files:
        if not file.name[: -len(".txt")].strip():  # ".txt", " .txt": no id ("sub/" ...)
            bad(str(file), None, row_id, "no name before .txt, so no id; rename the file")
            continue
        if row_id in seen:  # "a.txt" and "a.TXT"
            bad(str(file), None, row_id, f"the same id as {seen[row_id]} (the names differ "
                "only in the case of .txt); rename one")
            continue
        seen[row_id] = file
        if not file.is_file():  # never open a FIFO or a device: reading it may never end
            bad(str(file), None, row_id, "a link to nothing; remove it or restore its target"
                if file.is_symlink() and not file.exists()
                else "not a regular file (a pipe, socket or device); move it out of the folder")
            continue
        try:
            content = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            line = file.read_bytes().count(b"\n", 0, err.start) + 1
            bad(str(file), line, row_id, "bytes that are not UTF-8; re-encode it as UTF-8")
            continue
        except OSError as err:
            bad(str(file), None, row_id, f"cannot read ({err.strerror or err}); fix its "
                "permissions or move it out of the folder")
            continue
        lines = content.splitlines()
        first = next((k for k, ln in enumerate(lines) if ln.strip()), None)
        # The first line is often a headline but sometimes the lede paragraph, so it
        # stays in the text as well (normalize drops repeats of it).
        title = lines[first].strip() if first is not None else ""
        yield None, {"id": row_id, "title": title, "text": content, "source": None}
