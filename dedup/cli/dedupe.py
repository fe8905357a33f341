"""``dedup dedupe``: one row kept per copy group, on this machine or on Dask."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click

from dedup import io
from dedup.cli import app
from dedup.dedupe import KEEP_RULES, DedupeResult, dedupe, dedupe_columns, dedupe_parquet
from dedup.parallel import WorkerDied
from dedup.pipeline import DedupInputError


@app.main.command("dedupe")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File for the kept articles: .parquet or .jsonl (one row per copy group, "
                   "every input column plus `copies`, the group's size).")
@app.input_options(skip_help="Reject bad rows into OUTPUT.rejected.jsonl instead of stopping.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.8,
              show_default=True,
              help="Estimated Jaccard of word n-gram sets from which two texts are copies.")
@click.option("--ngram", type=click.IntRange(min=1), default=5, show_default=True,
              help="Words per shingle.")
@click.option("--keep", type=click.Choice(KEEP_RULES), default="first", show_default=True,
              help="Row kept per group: first in input order, earliest published (undated "
                   "last), or longest text; ties go to the earlier row.")
@click.option("--groups", "groups_path", type=click.Path(dir_okay=False),
              help="Also write id -> copy_group (the id kept for its group) for every "
                   "article read (.parquet or .jsonl).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True,
              help="dask: the workers of a local Dask cluster read and sign the partitions; "
                   "the same output.")
@click.option("-j", "--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Threads signing texts (0: every available core). Output is identical for "
                   "any value.")
def dedupe_command(
    inputs: tuple[str, ...],
    output: str,
    reading: app.Reading,
    threshold: float,
    ngram: int,
    keep: str,
    groups_path: str | None,
    engine: str,
    workers: int,
) -> None:
    """Drop near-duplicate articles from INPUT... (files, .txt folders, or - for JSONL on
    stdin): exact copies of the normalized text, then texts at estimated Jaccard >=
    --threshold on word n-grams, joined transitively; one row kept per copy group."""
    if engine == "dask" and "-" in inputs:
        raise click.UsageError("--engine dask reads files on the workers: stdin (-) is not "
                               "supported there; write it to a file first")
    target = Path(output)
    out_fmt = app.table_format(target, "-o")
    groups_target = Path(groups_path) if groups_path else None
    groups_fmt = app.table_format(groups_target, "--groups") if groups_target else None
    app.refuse_overwriting(inputs, [(target, "-o"), (groups_target, "--groups"), (
        target.with_name(target.name + ".rejected.jsonl"), "-o's rejects file")])
    reading = dataclasses.replace(reading, columns=dedupe_columns(reading.columns))
    fmt, columns, skip_bad_rows, coerce_ids = reading
    rejects = target.with_name(target.name + ".rejected.jsonl")
    for path, option in ((target, "-o"), (groups_target, "--groups"),
                         (rejects if skip_bad_rows else None, "-o's rejects")):
        if path is not None:
            app.check_writable(path, option)
    try:
        result = (_dedupe_on_dask(inputs, reading, threshold, ngram, keep) if engine == "dask"
                  else _stream_parquet(inputs, reading, threshold, ngram, keep, workers))
        if result is not None:
            # Reading is part of the signatures stage (streamed batches, or the workers).
            read: io.ReadResult | None = None
            read_seconds = result.timings.get("read", 0.0)
        else:
            read, read_seconds = app.read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
            result = dedupe(read.frame, threshold=threshold, ngram=ngram, keep=keep,
                            workers=workers)
    except DedupInputError as err:
        raise app.InputFailure(str(err)) from None
    except WorkerDied as err:
        raise click.ClickException(str(err)) from None
    rejected = read.rejected if read is not None else result.rejected
    notes = list(read.notes if read is not None else result.stats.get("notes", []))
    result = dataclasses.replace(result, names=columns.fields())  # the input's own names
    start = time.perf_counter()
    try:
        renamed = result.write_kept(target, out_fmt)
        notes.extend(f"input column {result.names.get(k, k)!r} is an output name: carried as "
                     f"{v!r}" for k, v in renamed.items() if v.startswith("input_copies"))
        if groups_target is not None and groups_fmt is not None:
            io.write_frame(groups_target, result.named_groups(), groups_fmt)
        if skip_bad_rows:
            io.write_rejected(rejects, rejected)
        elif not rejects.is_dir():
            rejects.unlink(missing_ok=True)  # an earlier run's, not this output's
    except OSError as err:
        raise app.InputFailure(f"{err.filename or target}: cannot write ({err.strerror or err}); "
                           "pick another output path") from None
    timings = {"read": read_seconds, **{k: v for k, v in result.timings.items() if k != "read"},
               "write": time.perf_counter() - start}
    stats = result.stats
    lines = [
        f"articles read   {stats['articles'] + len(rejected):>10,}",
        f"  kept          {stats['kept']:>10,}",
        f"  dropped       {stats['dropped']:>10,}  ({stats['exact_duplicates']:,} exact, "
        f"{stats['near_duplicates']:,} near copies)",
        f"  rejected      {len(rejected):>10,}",
        f"largest group   {stats['largest_group']:>10,}",
        "seconds per stage:",
        *(f"  {name:<13} {seconds:>10.3f}" for name, seconds in timings.items()),
        *(f"note: {note}" for note in notes),
    ]
    click.echo("\n".join(lines), err=True)


def _dedupe_on_dask(inputs: tuple[str, ...], reading: app.Reading, threshold: float, ngram: int,
                    keep: str) -> DedupeResult:
    """``dedupe_dask`` on a local cluster of this machine; imported lazily so the local
    engine never needs dask."""
    try:
        from dedup.engine_dask import DaskEngineError, dedupe_dask
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    try:
        return dedupe_dask(list(inputs), threshold, ngram, keep, columns=reading.columns,
                           fmt=reading.fmt, skip_bad_rows=reading.skip_bad_rows,
                           coerce_ids=reading.coerce_ids)
    except io.InputError as err:
        raise app.InputFailure(str(err)) from None
    except (DaskEngineError, ImportError) as err:
        raise click.ClickException(str(err)) from None


def _stream_parquet(inputs: tuple[str, ...], reading: app.Reading, threshold: float, ngram: int,
                    keep: str, workers: int) -> DedupeResult | None:
    """``dedupe_parquet`` when every input is a Parquet file (memory holds a batch, not the
    corpus); None for other inputs, or when a row needs the row reader's report."""
    try:
        kinds = {io.detect_format(path, reading.fmt) for path in inputs}
    except io.InputError:
        return None  # the reader says why
    if kinds != {"parquet"} or not all(Path(path).is_file() for path in inputs):
        return None
    return dedupe_parquet(list(inputs), threshold=threshold, ngram=ngram, keep=keep,
                          workers=workers, columns=reading.columns,
                          coerce_ids=reading.coerce_ids)
