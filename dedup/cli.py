"""The ``dedup`` command line: thin click commands over ``pipeline`` and ``io``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from dedup import io
from dedup.cli_index import index
from dedup.config import Config
from dedup.merge import story_from_dict, story_to_dict
from dedup.pipeline import ClusterResult, DedupInputError, cluster
from dedup.render import FORMATS as STORY_FORMATS
from dedup.render import render


class InputFailure(click.ClickException):
    """Bad input: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


@click.group()
@click.version_option(package_name="dedup")
def main() -> None:
    """Find news articles about the same event, cluster them, merge each cluster."""


main.add_command(index)


@main.command("cluster")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for assignments, clusters.jsonl and stories.jsonl.")
@click.option("--format", "fmt", type=click.Choice(io.FORMATS),
              help="Input format (default: from the extension; a folder is .txt files). "
                   "--format jsonl also writes assignments.jsonl unless --output-format says "
                   "otherwise.")
@click.option("--output-format", type=click.Choice(["parquet", "jsonl"]),
              help="Format of the assignments table (default parquet).")
@click.option("--id-col", default="id", show_default=True, help="Column holding the article id.")
@click.option("--text-col", default="text", show_default=True, help="Column holding the text.")
@click.option("--title-col", default="title", show_default=True, help="Column with the title.")
@click.option("--date-col", default="published", show_default=True,
              help="Column with the publication date (ISO 8601).")
@click.option("--source-col", default="source", show_default=True,
              help="Column naming the outlet (used to find its page templates).")
@click.option("--skip-bad-rows", is_flag=True,
              help="Reject bad rows into OUTDIR/rejected.jsonl instead of stopping.")
@click.option("--stories/--no-stories", default=True, show_default=True,
              help="Merge each cluster into a canonical story (OUTDIR/stories.jsonl).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True,
              help="Run in this process or on a Dask cluster (pip install 'dedup[dask]').")
@click.option("--scheduler",
              help="Dask scheduler address, e.g. tcp://host:8786 (implies --engine dask; "
                   "without it --engine dask starts a local cluster sized to this machine).")
@click.option("--partitions", type=click.IntRange(min=1),
              help="Input partitions for --engine dask (default: one per 50,000 articles).")
def cluster_command(
    inputs: tuple[str, ...],
    outdir: str,
    fmt: str | None,
    output_format: str | None,
    id_col: str,
    text_col: str,
    title_col: str,
    date_col: str,
    source_col: str,
    skip_bad_rows: bool,
    stories: bool,
    engine: str,
    scheduler: str | None,
    partitions: int | None,
) -> None:
    """Cluster the articles in INPUT... (files, .txt folders, or - for JSONL on stdin)."""
    columns = io.Columns(id=id_col, text=text_col, title=title_col, published=date_col,
                         source=source_col)
    out_fmt = output_format or ("jsonl" if fmt == "jsonl" else "parquet")
    if engine == "dask" or scheduler:
        if "-" in inputs:
            raise click.UsageError("--engine dask reads files on the workers: stdin (-) "
                                   "is not supported there; write it to a file first")
        result = _cluster_on_dask(inputs, columns, fmt, skip_bad_rows, stories, scheduler,
                                  partitions)
        _finish(Path(outdir), result, out_fmt, skip_bad_rows)
        return
    start = time.perf_counter()
    try:
        read = io.read_articles(inputs, fmt=fmt, columns=columns, skip_bad_rows=skip_bad_rows,
                                stdin=io.stdin_bytes() if "-" in inputs else None)
        read_seconds = time.perf_counter() - start
        result = cluster(read.frame, Config(), with_stories=stories,
                         progress=_progress_bar())
    except (io.InputError, DedupInputError) as err:
        raise InputFailure(str(err)) from None
    result.rejected = read.rejected
    result.timings = {"read": read_seconds, **{k: v for k, v in result.timings.items()
                                                 if k != "read"}}
    _finish(Path(outdir), result, out_fmt, skip_bad_rows)


def _finish(outdir: Path, result: ClusterResult, fmt: str, rejected_file: bool) -> None:
    start = time.perf_counter()
    write_outputs(outdir, result, fmt, rejected_file)
    result.timings["write"] = time.perf_counter() - start
    _summary(result)


def _cluster_on_dask(
    inputs: tuple[str, ...],
    columns: io.Columns,
    fmt: str | None,
    skip_bad_rows: bool,
    stories: bool,
    scheduler: str | None,
    partitions: int | None,
) -> ClusterResult:
    """The same job on Dask; imported lazily so the local engine never needs dask."""
    try:
        from dedup.engine_dask import DaskEngineError, cluster_dask
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    try:
        return cluster_dask(list(inputs), Config(), scheduler=scheduler, partitions=partitions,
                            with_stories=stories, columns=columns, fmt=fmt,
                            skip_bad_rows=skip_bad_rows)
    except (io.InputError, DedupInputError) as err:
        raise InputFailure(str(err)) from None
    except (DaskEngineError, ImportError) as err:
        raise click.ClickException(str(err)) from None


def write_outputs(outdir: Path, result: ClusterResult, fmt: str, rejected_file: bool) -> None:
    """Write every output file atomically; a crash never leaves a half-written file."""
    outdir.mkdir(parents=True, exist_ok=True)
    io.write_frame(outdir / f"assignments.{fmt}", result.assignments, fmt)
    io.write_jsonl(
        outdir / "clusters.jsonl",
        [{"cluster_id": c.cluster_id, "members": list(c.members), "size": c.size}
         for c in result.clusters],
    )
    stories = outdir / "stories.jsonl"
    if result.stories:
        io.write_jsonl(stories, [story_to_dict(story) for story in result.stories])
    elif stories.exists():
        stories.unlink()  # a stale file from an earlier run would not match these clusters
    if rejected_file:
        io.write_jsonl(
            outdir / "rejected.jsonl",
            [{"file": r.file, "line": r.line, "id": r.id, "reason": r.reason}
             for r in result.rejected],
        )


def _summary(result: ClusterResult) -> None:
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
        lines.append(f"LSH buckets skipped as oversized: {stats['oversized_buckets']:,}")
    click.echo("\n".join(lines), err=True)


def _progress_bar() -> Any:
    """A one-line progress display on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        click.echo(f"\r{stage:<10} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}",
                   err=True, nl=done >= total)

    return show


@main.command("stories")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(STORY_FORMATS), default="md",
              show_default=True, help="Markdown for terminals, one HTML page, or JSON lines.")
@click.option("--cluster", "cluster_ids", multiple=True,
              help="Only this cluster id (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
def stories_command(outdir: str, fmt: str, cluster_ids: tuple[str, ...],
                    output: str | None) -> None:
    """Show the merged stories that `dedup cluster` wrote to OUTDIR."""
    path = Path(outdir) / "stories.jsonl"
    if not path.exists():
        raise InputFailure(f"{path}: no stories here; run `dedup cluster INPUT -o {outdir}` "
                           "first (without --no-stories)")
    found = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                found.append(story_from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as err:
                raise InputFailure(f"{path}:{number}: not a story record ({err})") from None
    if cluster_ids:
        wanted = set(cluster_ids)
        found = [story for story in found if story.cluster_id in wanted]
        missing = wanted - {story.cluster_id for story in found}
        if missing:
            raise InputFailure(f"{path}: no cluster {', '.join(sorted(missing))}")
    text = render(found, fmt)
    if output:
        with io.atomic_path(Path(output)) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
