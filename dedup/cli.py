"""The ``dedup`` command line: thin click commands over ``pipeline``, ``index`` and ``io``.

Each command calls one API function or ``StoryIndex`` method with the same option names;
bad input, a file that is not an index or a version mismatch print one line and exit 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from dedup import __version__, io, outputs
from dedup.config import Config
from dedup.configfile import ConfigError, config_differences, config_to_toml, format_value
from dedup.configfile import load_config as load_config_file
from dedup.dedupe import KEEP_RULES, DedupeResult, dedupe, dedupe_parquet
from dedup.index import StoryIndex, StoryIndexError
from dedup.merge import story_from_dict, story_to_dict
from dedup.parallel import WorkerDied
from dedup.pipeline import ClusterResult, DedupInputError, cluster
from dedup.records import Rejected, Story
from dedup.render import FORMATS as STORY_FORMATS
from dedup.render import Format as StoryFormat
from dedup.render import render

F = TypeVar("F", bound=Callable[..., Any])


class InputFailure(click.ClickException):
    """Bad input or a bad index file: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def input_options(skip_help: str) -> Callable[[F], F]:
    """The input options every command that reads articles shares, with one spelling."""
    options = [
        click.option("--format", "fmt", type=click.Choice(io.FORMATS),
                     help="Input format (default: from the extension; a folder is .txt "
                          "files)."),
        click.option("--id-col", default="id", show_default=True,
                     help="Column holding the article id."),
        click.option("--text-col", default="text", show_default=True,
                     help="Column holding the text."),
        click.option("--title-col", default="title", show_default=True,
                     help="Column with the title."),
        click.option("--date-col", default="published", show_default=True,
                     help="Column with the publication date (ISO 8601)."),
        click.option("--source-col", default="source", show_default=True,
                     help="Column naming the outlet (used to find its page templates)."),
        click.option("--skip-bad-rows", is_flag=True, help=skip_help),
        click.option("--coerce-ids", is_flag=True,
                     help="Accept integer ids and read them as their decimal text (12 -> "
                          "\"12\"); without it a non-string id is a bad row."),
    ]

    def apply(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, fmt: str | None, id_col: str, text_col: str, title_col: str,
                    date_col: str, source_col: str, skip_bad_rows: bool, coerce_ids: bool,
                    **kwargs: Any) -> Any:
            columns = io.Columns(id=id_col, text=text_col, title=title_col,
                                 published=date_col, source=source_col)
            return func(*args, reading=Reading(fmt, columns, skip_bad_rows, coerce_ids),
                        **kwargs)

        wrapped: Any = command
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped

    return apply


@dataclasses.dataclass(frozen=True)
class Reading:
    """The shared input options of a command (``input_options``), as one value."""

    fmt: str | None
    columns: io.Columns
    skip_bad_rows: bool
    coerce_ids: bool

    def __iter__(self) -> Iterator[Any]:
        return iter((self.fmt, self.columns, self.skip_bad_rows, self.coerce_ids))


def config_option(what: str) -> Callable[[F], F]:
    """``--config FILE``: settings from TOML (see ``dedup config``)."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help=f"TOML settings file for {what} (any Config field; `dedup "
                             "config` prints every one with its default).")


def _load_config(path: str | None) -> Config:
    """The settings in ``path`` over the defaults; a bad file is one line and exit 2."""
    if path is None:
        return Config()
    try:
        return load_config_file(path)
    except ConfigError as err:
        raise InputFailure(str(err)) from None


@click.group()
@click.version_option(package_name="dedup")
def main() -> None:
    """Find news articles about the same event, cluster them, merge each cluster."""


@main.command("cluster")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for assignments, clusters.jsonl and stories.jsonl.")
@click.option("--output-format", type=click.Choice(["parquet", "jsonl"]),
              help="Format of the assignments table (default parquet; JSONL when --format "
                   "jsonl).")
@input_options(skip_help="Reject bad rows into OUTDIR/rejected.jsonl instead of stopping.")
@click.option("--stories/--no-stories", default=True, show_default=True,
              help="Merge each cluster into a canonical story (OUTDIR/stories.jsonl).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True,
              help="Run in this process or on a Dask cluster (pip install 'dedup[dask]').")
@click.option("--scheduler",
              help="Dask scheduler address, e.g. tcp://host:8786 (implies --engine dask; "
                   "without it --engine dask starts a local cluster sized to this machine).")
@click.option("--partitions", type=click.IntRange(min=1),
              help="Input partitions for --engine dask (default: one per 10,000 articles).")
@click.option("-j", "--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for the local engine (0: every available core). Output is "
                   "identical for any value.")
@config_option("this run")
def cluster_command(
    inputs: tuple[str, ...],
    outdir: str,
    output_format: str | None,
    reading: Reading,
    stories: bool,
    engine: str,
    scheduler: str | None,
    partitions: int | None,
    workers: int,
    config_path: str | None,
) -> None:
    """Cluster the articles in INPUT... (files, .txt folders, or - for JSONL on stdin)."""
    config = _load_config(config_path)
    fmt, columns, skip_bad_rows, coerce_ids = reading
    out_fmt: io.TableFormat = ("jsonl" if (output_format or fmt) == "jsonl" else "parquet")
    options = run_options(inputs, fmt, columns, skip_bad_rows, coerce_ids, stories, out_fmt)
    options["config"] = dataclasses.asdict(config)
    target = Path(outdir)
    if engine == "dask" or scheduler:
        if "-" in inputs:
            raise click.UsageError("--engine dask reads files on the workers: stdin (-) "
                                   "is not supported there; write it to a file first")
        result = _cluster_on_dask(inputs, columns, fmt, skip_bad_rows, coerce_ids, stories,
                                  scheduler, partitions, target, out_fmt,
                                  {**options, "engine": "dask"}, config)
        _summary(result, result.stats.get("notes", []))
        return
    read, read_seconds = _read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
    try:
        with outputs.staged(target) as staging, contextlib.ExitStack() as stack:
            # Streamed to disk as they are merged (serialized by the workers): they never
            # all sit in memory.
            on_story_lines = (stack.enter_context(io.text_sink(staging.path / "stories.jsonl"))
                              if stories else None)
            try:
                progress = stack.enter_context(progress_bar())
                result = cluster(read.frame, config, with_stories=stories, progress=progress,
                                 workers=workers, on_story_lines=on_story_lines)
            except DedupInputError as err:
                raise InputFailure(str(err)) from None
            except WorkerDied as err:
                raise click.ClickException(str(err)) from None
            stack.close()
            result.rejected = read.rejected
            result.timings = {"read": read_seconds, **{k: v for k, v in result.timings.items()
                                                         if k != "read"}}
            start = time.perf_counter()
            write_files(staging.path, result, out_fmt, skip_bad_rows, stories_written=stories)
            staging.commit({**options, "engine": "local"}, __version__)
            result.timings["write"] = time.perf_counter() - start
    except outputs.OutputError as err:
        raise InputFailure(str(err)) from None
    except OSError as err:
        raise InputFailure(f"{target}: cannot write the outputs ({err.strerror or err}); "
                           "pick another -o folder") from None
    _summary(result, read.notes)


def run_options(inputs: tuple[str, ...] | list[str], fmt: str | None, columns: io.Columns,
                skip_bad_rows: bool, coerce_ids: bool, stories: bool, output_format: str
                ) -> dict[str, Any]:
    """What ``manifest.json`` records of a run's options (those that change its output)."""
    return {"inputs": list(inputs), "format": fmt, "columns": dataclasses.asdict(columns),
            "skip_bad_rows": skip_bad_rows, "coerce_ids": coerce_ids, "stories": stories,
            "output_format": output_format}


def _cluster_on_dask(
    inputs: tuple[str, ...],
    columns: io.Columns,
    fmt: str | None,
    skip_bad_rows: bool,
    coerce_ids: bool,
    stories: bool,
    scheduler: str | None,
    partitions: int | None,
    outdir: Path,
    out_fmt: io.TableFormat,
    options: dict[str, Any],
    config: Config,
) -> ClusterResult:
    """The same job on Dask, outputs written by the workers (partitioned assignments);
    imported lazily so the local engine never needs dask."""
    try:
        from dedup.engine_dask import DaskEngineError, cluster_dask
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    try:
        return cluster_dask(list(inputs), config, scheduler=scheduler, partitions=partitions,
                            with_stories=stories, columns=columns, fmt=fmt,
                            skip_bad_rows=skip_bad_rows, output=outdir, output_format=out_fmt,
                            output_options=options, coerce_ids=coerce_ids)
    except (io.InputError, DedupInputError, outputs.OutputError) as err:
        raise InputFailure(str(err)) from None
    except (DaskEngineError, ImportError) as err:
        raise click.ClickException(str(err)) from None


def write_outputs(outdir: Path, result: ClusterResult, fmt: io.TableFormat, rejected_file: bool,
                  options: dict[str, Any] | None = None) -> None:
    """Publish a result's files in ``outdir`` as one set (see ``dedup.outputs``): a crash
    or kill leaves the earlier set, never a mix, and files of earlier runs go."""
    with outputs.staged(outdir) as staging:
        write_files(staging.path, result, fmt, rejected_file)
        staging.commit(options or {}, __version__)


def write_files(folder: Path, result: ClusterResult, fmt: io.TableFormat, rejected_file: bool,
                stories_written: bool = False) -> None:
    """Write a result's files into a (staging) folder.

    ``stories_written``: stories.jsonl is being streamed by the caller, leave it alone.
    """
    io.write_frame(folder / f"assignments.{fmt}", result.assignments, fmt)
    io.write_jsonl(folder / "clusters.jsonl", (c.to_dict() for c in result.clusters))
    if result.stories and not stories_written:
        io.write_jsonl(folder / "stories.jsonl",
                       (story_to_dict(story) for story in result.stories))
    if rejected_file:
        io.write_rejected(folder / "rejected.jsonl", result.rejected)


def _summary(result: ClusterResult, notes: list[str]) -> None:
    stats: dict[str, Any] = result.stats
    read = stats["articles"] + len(result.rejected)
    lines = [
        f"articles read   {read:>10,}",
        f"  clustered     {stats['articles']:>10,}",
        f"  rejected      {len(result.rejected):>10,}",
        f"clusters        {stats['clusters']:>10,}",
        f"largest cluster {stats['largest_cluster']:>10,}",
        f"candidate pairs {result.candidate_pairs:>10,}",
        "seconds per stage:",
        *(f"  {name:<13} {seconds:>10.3f}" for name, seconds in result.timings.items()),
    ]
    if stats.get("oversized_buckets"):
        lines.append(f"LSH buckets over their size cap: {stats['oversized_buckets']:,}")
    lines.extend(f"note: {note}" for note in notes)
    click.echo("\n".join(lines), err=True)


class StageProgress:
    """``progress(stage, done, total)`` drawn as one ``click.progressbar`` per stage.

    Click's bar (not rich: click is already a dependency and its bar is enough for one
    line per stage) is redrawn at most ~200 times per stage, so an add placing a million
    articles one by one does not spend its time writing to the terminal.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.bar: Any = None
        self.stage: tuple[str, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.stage != (stage, total):
            self.close()
            self.stage = (stage, total)
            self.bar = click.progressbar(length=max(total, 1), label=f"{stage:<10}",
                                         file=self.stream, show_pos=True, width=30)
            self.bar.__enter__()
        bar = self.bar
        step = done - bar.pos
        if step > 0 and (step * 200 >= total or done >= total):
            bar.update(step)
        if done >= total:
            self.close()

    def close(self) -> None:
        """End the current stage's line (a bar left open by an error is ended too)."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        self.stage = None


@contextlib.contextmanager
def progress_bar(stream: Any = None) -> Iterator[StageProgress | None]:
    """Progress bars on stderr, only when stderr is a terminal (None otherwise: no output
    at all, not even click's one-line label for a redirected stream)."""
    target: Any = stream if stream is not None else sys.stderr
    if not target.isatty():
        yield None
        return
    progress = StageProgress(target)
    try:
        yield progress
    finally:
        progress.close()


@main.command("dedupe")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File for the kept articles: .parquet or .jsonl (one row per copy group, "
                   "every input column plus `copies`, the group's size).")
@input_options(skip_help="Reject bad rows into OUTPUT.rejected.jsonl instead of stopping.")
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
    reading: Reading,
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
    out_fmt = _table_format(target, "-o")
    groups_target = Path(groups_path) if groups_path else None
    groups_fmt = _table_format(groups_target, "--groups") if groups_target else None
    _refuse_overwriting(inputs, target, groups_target)
    fmt, columns, skip_bad_rows, coerce_ids = reading
    try:
        result = (_dedupe_on_dask(inputs, reading, threshold, ngram, keep) if engine == "dask"
                  else _stream_parquet(inputs, reading, threshold, ngram, keep, workers))
        if result is not None:
            # Reading is part of the signatures stage (streamed batches, or the workers).
            read: io.ReadResult | None = None
            read_seconds = result.timings.get("read", 0.0)
        else:
            read, read_seconds = _read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
            result = dedupe(read.frame, threshold=threshold, ngram=ngram, keep=keep,
                            workers=workers)
    except DedupInputError as err:
        raise InputFailure(str(err)) from None
    except WorkerDied as err:
        raise click.ClickException(str(err)) from None
    rejected = read.rejected if read is not None else result.rejected
    notes = list(read.notes if read is not None else result.stats.get("notes", []))
    result = dataclasses.replace(result, names={  # the input's own column names
        f.name: getattr(columns, f.name) for f in dataclasses.fields(columns)})
    start = time.perf_counter()
    rejects = target.with_name(target.name + ".rejected.jsonl")
    try:
        renamed = result.write_kept(target, out_fmt)
        notes.extend(f"input column {result.names.get(k, k)!r} is an output name: carried as "
                     f"{v!r}" for k, v in renamed.items() if v.startswith("input_copies"))
        if groups_target is not None and groups_fmt is not None:
            io.write_frame(groups_target, result.named_groups(), groups_fmt)
        if skip_bad_rows:
            io.write_rejected(rejects, rejected)
        else:
            rejects.unlink(missing_ok=True)  # an earlier run's, not this output's
    except OSError as err:
        raise InputFailure(f"{err.filename or target}: cannot write ({err.strerror or err}); "
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


def _refuse_overwriting(inputs: tuple[str, ...], target: Path, groups: Path | None) -> None:
    """A usage error when an output would replace an input or the other output."""
    def same(a: Path, b: Path) -> bool:
        return a.resolve() == b.resolve()

    rejects = target.with_name(target.name + ".rejected.jsonl")
    for path in (p for p in inputs if p != "-"):
        for out, option in ((target, "-o"), (groups, "--groups"), (rejects, "-o's rejects file")):
            if out is not None and same(Path(path), out):
                raise click.UsageError(f"{option} {out} is an input: write the output "
                                       "elsewhere")
    if groups is not None and same(groups, target):
        raise click.UsageError(f"--groups {groups} is the -o file: name another file")


def _dedupe_on_dask(inputs: tuple[str, ...], reading: Reading, threshold: float, ngram: int,
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
        raise InputFailure(str(err)) from None
    except (DaskEngineError, ImportError) as err:
        raise click.ClickException(str(err)) from None


def _stream_parquet(inputs: tuple[str, ...], reading: Reading, threshold: float, ngram: int,
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


def _read_inputs(inputs: tuple[str, ...], fmt: str | None, columns: io.Columns,
                 skip_bad_rows: bool, coerce_ids: bool) -> tuple[io.ReadResult, float]:
    """Every input read (``-``: JSONL on stdin), and the seconds it took; bad input is one
    line naming the file and line (exit 2)."""
    start = time.perf_counter()
    try:
        read = io.read_articles(inputs, fmt=fmt, columns=columns, skip_bad_rows=skip_bad_rows,
                                stdin=io.stdin_bytes() if "-" in inputs else None,
                                coerce_ids=coerce_ids)
    except io.InputError as err:
        raise InputFailure(str(err)) from None
    if read.frame.height == 0 and not read.rejected:
        read.notes.append(f"no articles in {', '.join(inputs)}: is that the right input?")
    return read, time.perf_counter() - start


def _table_format(path: Path, option: str) -> io.TableFormat:
    """parquet or jsonl, from a table path's extension; anything else is a usage error."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise click.UsageError(f"{option} {path}: name a .parquet or .jsonl file")


@main.command("config")
@config_option("the printed settings (default: print the defaults)")
def config_command(config_path: str | None) -> None:
    """Print every setting as TOML, with the comments saying how each default was chosen;
    save it, edit it, and pass it to `dedup cluster --config` or `dedup index add --config`."""
    click.echo(config_to_toml(_load_config(config_path)), nl=False)


@main.command("stories")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(STORY_FORMATS), default="md",
              show_default=True, help="Markdown for terminals, one HTML page, or JSON lines.")
@click.option("--cluster", "cluster_ids", multiple=True,
              help="Only this cluster id (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
def stories_command(outdir: str, fmt: StoryFormat, cluster_ids: tuple[str, ...],
                    output: str | None) -> None:
    """Show the merged stories that `dedup cluster` wrote to OUTDIR."""
    found = read_stories(Path(outdir))
    if cluster_ids:
        wanted = set(cluster_ids)
        found = [story for story in found if story.cluster_id in wanted]
        missing = wanted - {story.cluster_id for story in found}
        if missing:
            raise InputFailure(f"{Path(outdir) / 'stories.jsonl'}: no cluster "
                               f"{', '.join(sorted(missing))}")
    _emit(render(found, fmt), output)


def _emit(text: str, output: str | None) -> None:
    """``text`` to the ``-o`` file (atomically) or to stdout."""
    if output:
        try:
            with io.atomic_path(Path(output)) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as err:
            raise InputFailure(f"{output}: cannot write ({err.strerror or err}); "
                               "pick another -o file") from None
    else:
        click.echo(text, nl=False)


def read_stories(outdir: Path) -> list[Story]:
    """The stories of the set OUTDIR holds, checked against its manifest (sha256)."""
    try:
        found_set = outputs.open_set(outdir)
    except outputs.OutputError as err:
        raise InputFailure(str(err)) from None
    path = found_set.path("stories.jsonl")
    entry = found_set.entry("stories.jsonl")
    shown = outdir / "stories.jsonl"
    if path is None or entry is None:
        raise InputFailure(f"{shown}: no stories here; run `dedup cluster INPUT -o {outdir}` "
                           "first (without --no-stories)")
    found = []
    try:
        with path.open("rb") as handle:
            reader = outputs.HashingReader(handle)
            for number, raw in enumerate(reader, start=1):
                try:
                    line = raw.decode("utf-8")
                    if not line.strip():
                        continue
                    found.append(story_from_dict(json.loads(line)))
                except UnicodeDecodeError:
                    raise InputFailure(f"{shown}:{number}: bytes that are not UTF-8; not a "
                                       "file `dedup cluster` wrote") from None
                except (ValueError, KeyError, TypeError, AttributeError,
                        RecursionError) as err:
                    raise InputFailure(f"{shown}:{number}: not a story record "
                                       f"({str(err)[:200]})") from None
            digest = reader.hexdigest()
    except OSError as err:
        raise InputFailure(f"{shown}: cannot read ({err.strerror or err})") from None
    if digest != entry.get("sha256"):
        raise InputFailure(f"{shown}: does not match {outputs.MANIFEST} (changed after the run "
                           f"wrote it); run `dedup cluster INPUT -o {outdir}` again")
    return found


# --------------------------------------------------------------------------- index

def _open(path: str, *, create: bool, config: Config | None = None) -> StoryIndex:
    """Open the index with ``config``, or else with the settings it was created with."""
    try:
        return StoryIndex.open(path, config or StoryIndex.read_config(path), create=create)
    except StoryIndexError as err:
        raise InputFailure(str(err)) from None


# Settings that may differ from the ones an index was created with: they change how long a
# writer waits, not what it computes.
_PER_RUN_SETTINGS = frozenset({"index.busy_timeout"})


def _index_config(db: str, config_path: str | None) -> Config | None:
    """The settings for an add: the file's, which must agree with the ones the index was
    created with (placing with other thresholds would mix two clusterings in one index)."""
    if config_path is None:
        return None  # the index's own (the defaults for a new or an older index)
    given = _load_config(config_path)
    try:
        stored = StoryIndex.read_config(db)
    except StoryIndexError as err:
        raise InputFailure(str(err)) from None
    if stored is None:
        return given
    differ = [d for d in config_differences(stored, given) if d[0] not in _PER_RUN_SETTINGS]
    if differ:
        key, built, asked = differ[0]
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        raise InputFailure(
            f"{db}: created with {key} = {format_value(built)}, but {config_path} says "
            f"{format_value(asked)}{more}; an index keeps the settings it was created with: "
            "drop --config to use them, or build a new index with these")
    return given


@main.group("index")
def index() -> None:
    """An incremental story index for feeds: add articles as they arrive, read stories."""


@index.command("add")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@input_options(skip_help="Skip bad rows and ids already in the index instead of stopping.")
@config_option("a new index (an existing index keeps the settings it was created with)")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False),
              help="With --skip-bad-rows: write the rows left out (file, line, id, reason) "
                   "to this JSONL file.")
def index_add_command(
    db: str,
    inputs: tuple[str, ...],
    reading: Reading,
    config_path: str | None,
    rejected_path: str | None,
) -> None:
    """Add the articles in INPUT... (files, .txt folders, or - for JSONL on stdin) to DB,
    creating it if needed; all in one transaction."""
    config = _index_config(db, config_path)
    fmt, columns, skip_bad_rows, coerce_ids = reading
    start = time.perf_counter()
    read, _ = _read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
    frame = read.frame
    with _open(db, create=True, config=config) as story_index, progress_bar() as progress:
        skipped = 0
        try:
            known: set[str] = set()
            if skip_bad_rows and frame.height:
                known = story_index.existing(frame["id"].to_list())
                skipped = len(known)
                frame = frame.filter(~frame["id"].is_in(list(known)))
            placed = story_index.add(frame, progress=progress)
            stats = story_index.stats()
        except (DedupInputError, StoryIndexError) as err:
            raise InputFailure(str(err)) from None
    if rejected_path is not None:
        left = [*read.rejected, *(Rejected(", ".join(inputs), None, i, f"already in {db}")
                                   for i in sorted(known))]
        try:
            io.write_rejected(Path(rejected_path), left)
        except OSError as err:
            raise InputFailure(f"{rejected_path}: cannot write ({err.strerror or err}); the "
                               "articles were added, pick another --rejected file") from None
    new = sum(p.is_new_cluster for p in placed)
    created = len({p.cluster_id for p in placed if p.is_new_cluster})
    merged = len({m for p in placed for m in p.merged})
    lines = [
        f"articles added  {len(placed):>10,}",
        f"  into new ids  {new:>10,}",
        f"  into old ids  {len(placed) - new:>10,}",
        f"  new ids       {created:>10,}",
        f"  merged ids    {merged:>10,}",
        f"  rejected      {len(read.rejected) + skipped:>10,}",
        f"index articles  {stats['articles']:>10,}",
        f"index clusters  {stats['clusters']:>10,}",
        f"seconds         {time.perf_counter() - start:>10.3f}",
        *(f"note: {note}" for note in read.notes),
    ]
    click.echo("\n".join(lines), err=True)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputFailure(
            f"unreadable --since {value!r}: use ISO 8601 (2024-03-22 or 2024-03-22T18:00:00)"
        ) from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@index.command("stories")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only stories changed at or after this time (ISO 8601, UTC).")
@click.option("--format", "fmt", type=click.Choice(STORY_FORMATS), default="md",
              show_default=True, help="Markdown for terminals, one HTML page, or JSON lines "
                                      "(each with its updated_at).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
def index_stories_command(db: str, since: str | None, fmt: StoryFormat,
                          output: str | None) -> None:
    """Print the merged stories in DB, with who says what and where versions differ."""
    updated_since = _parse_since(since)
    with _open(db, create=False) as story_index:
        try:
            updates = story_index.updates(updated_since)  # one snapshot
        except StoryIndexError as err:
            raise InputFailure(str(err)) from None
    if fmt == "json":
        text = "".join(json.dumps({**story_to_dict(story),
                                   "updated_at": info.updated_at.isoformat()},
                                  ensure_ascii=False) + "\n" for info, story in updates)
    else:
        text = render([story for _, story in updates], fmt) if updates else ""
    _emit(text, output)


@index.command("retired")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only ids retired at or after this time (ISO 8601, UTC).")
def index_retired_command(db: str, since: str | None) -> None:
    """Print the cluster ids DB retired (merged into another story, or expired), one JSON
    line each: cluster_id, merged_into, live (the id holding the story now), retired_at,
    reason. A retired id is never handed out again."""
    updated_since = _parse_since(since)
    with _open(db, create=False) as story_index:
        try:
            retired = story_index.retired(updated_since)
        except StoryIndexError as err:
            raise InputFailure(str(err)) from None
    for info in retired:
        click.echo(json.dumps({"cluster_id": info.cluster_id, "merged_into": info.merged_into,
                               "live": info.live, "retired_at": info.retired_at.isoformat(),
                               "reason": info.reason}))


@index.command("stats")
@click.argument("db", type=click.Path(dir_okay=False))
def index_stats_command(db: str) -> None:
    """Print counts, dates and disk use of DB."""
    with _open(db, create=False) as story_index:
        try:
            stats = story_index.stats()
        except StoryIndexError as err:
            raise InputFailure(str(err)) from None
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        click.echo(f"{key:<{width}}  {shown}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*$")


def _parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise InputFailure(f"unreadable --older-than {value!r}: use e.g. 7d, 12h or 30m")
    amount, unit = float(match.group(1)), match.group(2) or "d"
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})


@index.command("expire")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--older-than", required=True,
              help="Remove articles published (or added, if undated) before now minus this: "
                   "7d, 12h, 30m.")
def index_expire_command(db: str, older_than: str) -> None:
    """Remove old articles from DB; their clusters keep their ids and stories are updated."""
    window = _parse_duration(older_than)
    with _open(db, create=False) as story_index:
        try:
            removed = story_index.expire(older_than=window)
            stats = story_index.stats()
        except StoryIndexError as err:
            raise InputFailure(str(err)) from None
    click.echo(f"articles removed {removed:>10,}\nindex articles   {stats['articles']:>10,}",
               err=True)
