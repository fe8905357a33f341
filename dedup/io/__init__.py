"""All file I/O: reading articles (JSONL, CSV, Parquet, .txt folders, stdin) and atomic writes.

Every input row ends up either as an article or as a ``Rejected`` record with its file and
line, so a run can always account for what it read. Errors name the file, the line or id,
and the fix; the CLI prints them on one line.

- ``readers``: inputs to articles: column mapping, bad rows, dates (``read_articles``);
- ``formats``: each format as raw records with their lines (JSONL, CSV, Parquet, .txt);
- ``writers``: atomic files, JSON lines, sorted parts, frames (``write_jsonl``, ...);
- ``jsontext``: values kept as input JSON, output lines with fixed bytes;
- ``errors``: ``DedupInputError`` (also ``InputError``), the one input-error class.
"""

from __future__ import annotations

from dedup.io.errors import DedupInputError, InputError
from dedup.io.formats import Bad, Notes, records
from dedup.io.jsontext import RawJSON, json_line, json_text
from dedup.io.readers import (
    ARTICLE_FIELDS,
    FORMATS,
    MAX_NESTING,
    RESERVED,
    Columns,
    ReadResult,
    articles_table,
    bad_row_handler,
    carried_names,
    detect_format,
    distinct_inputs,
    map_row,
    missing_column,
    read_articles,
    read_tables,
    standard_columns,
    stdin_bytes,
)
from dedup.io.writers import (
    TABLE_FORMATS,
    TableFormat,
    atomic_path,
    jsonl_sink,
    merge_sorted_parts,
    publish,
    text_sink,
    write_frame,
    write_jsonl,
    write_rejected,
    write_sorted_part,
)

__all__ = [
    "ARTICLE_FIELDS",
    "FORMATS",
    "MAX_NESTING",
    "RESERVED",
    "TABLE_FORMATS",
    "Bad",
    "Columns",
    "DedupInputError",
    "InputError",
    "Notes",
    "RawJSON",
    "ReadResult",
    "TableFormat",
    "articles_table",
    "atomic_path",
    "bad_row_handler",
    "carried_names",
    "detect_format",
    "distinct_inputs",
    "json_line",
    "json_text",
    "jsonl_sink",
    "map_row",
    "merge_sorted_parts",
    "missing_column",
    "publish",
    "read_articles",
    "read_tables",
    "records",
    "standard_columns",
    "stdin_bytes",
    "text_sink",
    "write_frame",
    "write_jsonl",
    "write_rejected",
    "write_sorted_part",
]
