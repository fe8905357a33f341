"""``dedup cluster``, ``dedup stories`` and ``dedup config``: the batch job, on this machine
or on Dask, and reading back what it wrote."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import click

from dedup import __version__, io, outputs
from dedup.cli import app
from dedup.config import Config
from dedup.configfile import config_to_toml
from dedup.merge import story_from_dict, story_to_dict
from dedup.parallel import WorkerDied
from dedup.pipeline import ClusterResult, DedupInputError, cluster
from dedup.records import Story
from dedup.render import FORMATS as STORY_FORMATS
from dedup.render import Format as StoryFormat
from dedup.render import render


@app.main.command("cluster")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for assignments, clusters.jsonl and stories.jsonl.")
@click.option("--output-format", type=click.Choice(["parquet", "jsonl"]),
              help="Format of the assignments table (default parquet; JSONL when --format "
                   "jsonl).")
@app.input_options(skip_help="Reject bad rows into OUTDIR/rejected.jsonl instead of stopping.")
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
@app.config_option("this run")
def cluster_command(
    inputs: tuple[str, ...],
    outdir: str,
    output_format: str | None,
    reading: app.Reading,
    stories: bool,
    engine: str,
    scheduler: str | None,
    partitions: int | None,
    workers: int,
    config_path: str | None,
) -> None:
    """Cluster the articles in INPUT... (files, .txt folders, or - for JSONL on stdin)."""
    config = app.load_config(config_path)
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
    read, read_seconds = app.read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
    try:
        with outputs.staged(target) as staging, contextlib.ExitStack() as stack:
            # Streamed to disk as they are merged (serialized by the workers): they never
            # all sit in memory.
            on_story_lines = (stack.enter_context(io.text_sink(staging.path / "stories.jsonl"))
                              if stories else None)
            try:
                progress = stack.enter_context(app.progress_bar())
                result = cluster(read.frame, config, with_stories=stories, progress=progress,
                                 workers=workers, on_story_lines=on_story_lines)
            except DedupInputError as err:
                raise app.InputFailure(str(err)) from None
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
        raise app.InputFailure(str(err)) from None
    except OSError as err:
        raise app.InputFailure(f"{target}: cannot write the outputs ({err.strerror or err}); "
                           "pick another -o folder") from None
    _summary(result, read.notes)


def run_options(inputs: tuple[str, ...] | list[str], fmt: str | None, columns: io.Columns,
                skip_bad_rows: bool, coerce_ids: bool, stories: bool, output_format: str
                ) -> dict[str, Any]:
    """What ``manifest.json`` records of a run's options (those that change its output)."""
    return {"inputs": list(inputs), "format": fmt, "columns": columns.fields(),
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
        raise app.InputFailure(str(err)) from None
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


@app.main.command("config")
@app.config_option("the printed settings (default: print the defaults)")
def config_command(config_path: str | None) -> None:
    """Print every setting as TOML, with the comments saying how each default was chosen;
    save it, edit it, and pass it to `dedup cluster --config` or `dedup index add --config`."""
    click.echo(config_to_toml(app.load_config(config_path)), nl=False)


@app.main.command("stories")
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
            raise app.InputFailure(f"{Path(outdir) / 'stories.jsonl'}: no cluster "
                               f"{', '.join(sorted(missing))}")
    app.emit(render(found, fmt), output)


def read_stories(outdir: Path) -> list[Story]:
    """The stories of the set OUTDIR holds, checked against its manifest (sha256)."""
    try:
        found_set = outputs.open_set(outdir)
    except outputs.OutputError as err:
        raise app.InputFailure(str(err)) from None
    path = found_set.path("stories.jsonl")
    entry = found_set.entry("stories.jsonl")
    shown = outdir / "stories.jsonl"
    if path is None or entry is None:
        raise app.InputFailure(f"{shown}: no stories here; run `dedup cluster INPUT -o {outdir}` "
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
                    raise app.InputFailure(f"{shown}:{number}: bytes that are not UTF-8; not a "
                                       "file `dedup cluster` wrote") from None
                except (ValueError, KeyError, TypeError, AttributeError,
                        RecursionError) as err:
                    raise app.InputFailure(f"{shown}:{number}: not a story record "
                                       f"({str(err)[:200]})") from None
            digest = reader.hexdigest()
    except OSError as err:
        raise app.InputFailure(f"{shown}: cannot read ({err.strerror or err})") from None
    if digest != entry.get("sha256"):
        raise app.InputFailure(f"{shown}: does not match {outputs.MANIFEST} (changed after the run "
                           f"wrote it); run `dedup cluster INPUT -o {outdir}` again")
    return found
