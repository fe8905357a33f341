"""Atomic writes: JSON lines, sorted parts merged in key order, frames, rejected rows."""

import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import polars as pl

from dedup.io.jsontext import json_line
from dedup.records import Rejected


def write_rejected(target: Path, rejected: Iterable[Rejected]) -> None:
    """One JSON line per row left out (file, line, id, reason): ``rejected.jsonl`` of an
    output set, ``dedupe``'s ``OUTPUT.rejected.jsonl``, ``index add --rejected``."""
    write_jsonl(target,
                ({"file": r.file, "line": r.line, "id": r.id, "reason": r.reason}
                 for r in rejected))


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temp path beside ``target`` that replaces it only if the block succeeds."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as err:  # named by the file the user asked for, not our temp name
        raise OSError(err.errno, err.strerror, str(target)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise readers of the output
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename == tmp:
            raise OSError(err.errno, err.strerror, str(target)) from None
        raise
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


# The formats a table is written in (assignments, kept rows, copy groups).
TableFormat = Literal["parquet", "jsonl"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("parquet", "jsonl")


def write_frame(target: Path, frame: pl.DataFrame, fmt: TableFormat) -> None:
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


