"""``dedup index ...``: thin click commands over ``StoryIndex`` (register with
``main.add_command(index)``).

Each command calls one ``StoryIndex`` method with the same names; bad input, a file that is
not an index and a version mismatch print one line and exit with code 2, as ``dedup cluster``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from dedup import io
from dedup.index import StoryIndex, StoryIndexError
from dedup.merge import story_to_dict
from dedup.pipeline import DedupInputError


class IndexInputFailure(click.ClickException):
    """Bad input or a bad index file: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def _open(path: str, *, create: bool) -> StoryIndex:
    try:
        return StoryIndex.open(path, create=create)
    except StoryIndexError as err:
        raise IndexInputFailure(str(err)) from None


@click.group("index")
def index() -> None:
    """An incremental story index for feeds: add articles as they arrive, read stories."""


@index.command("add")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(io.FORMATS),
              help="Input format (default: from the extension; a folder is .txt files).")
@click.option("--id-col", default="id", show_default=True, help="Column holding the article id.")
@click.option("--text-col", default="text", show_default=True, help="Column holding the text.")
@click.option("--title-col", default="title", show_default=True, help="Column with the title.")
@click.option("--date-col", default="published", show_default=True,
              help="Column with the publication date (ISO 8601).")
@click.option("--source-col", default="source", show_default=True,
              help="Column naming the outlet.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Skip bad rows and ids already in the index instead of stopping.")
def add_command(
    db: str,
    inputs: tuple[str, ...],
    fmt: str | None,
    id_col: str,
    text_col: str,
    title_col: str,
    date_col: str,
    source_col: str,
    skip_bad_rows: bool,
) -> None:
    """Add the articles in INPUT... (files, .txt folders, or - for JSONL on stdin) to DB,
    creating it if needed; all in one transaction."""
    columns = io.Columns(id=id_col, text=text_col, title=title_col, published=date_col,
                         source=source_col)
    start = time.perf_counter()
    try:
        read = io.read_articles(inputs, fmt=fmt, columns=columns, skip_bad_rows=skip_bad_rows,
                                stdin=io.stdin_bytes() if "-" in inputs else None)
    except io.InputError as err:
        raise IndexInputFailure(str(err)) from None
    frame = read.frame
    with _open(db, create=True) as story_index:
        skipped = 0
        try:
            if skip_bad_rows and frame.height:
                known = story_index.existing(frame["id"].to_list())
                skipped = len(known)
                frame = frame.filter(~frame["id"].is_in(list(known)))
            placed = story_index.add(frame)
            stats = story_index.stats()
        except (DedupInputError, StoryIndexError) as err:
            raise IndexInputFailure(str(err)) from None
    new = sum(p.is_new_cluster for p in placed)
    merged = len({m for p in placed for m in p.merged})
    lines = [
        f"articles added  {len(placed):>10,}",
        f"  new clusters  {new:>10,}",
        f"  joined        {len(placed) - new:>10,}",
        f"  merged ids    {merged:>10,}",
        f"  rejected      {len(read.rejected) + skipped:>10,}",
        f"index articles  {stats['articles']:>10,}",
        f"index clusters  {stats['clusters']:>10,}",
        f"seconds         {time.perf_counter() - start:>10.3f}",
    ]
    click.echo("\n".join(lines), err=True)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise IndexInputFailure(
            f"unreadable --since {value!r}: use ISO 8601 (2024-03-22 or 2024-03-22T18:00:00)"
        ) from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@index.command("stories")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only stories changed at or after this time (ISO 8601, UTC).")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md",
              show_default=True, help="Markdown for people, JSON lines for programs.")
def stories_command(db: str, since: str | None, fmt: str) -> None:
    """Print the merged stories in DB, with who says what and where versions differ."""
    updated_since = _parse_since(since)
    with _open(db, create=False) as story_index:
        try:
            infos, stories = [], []
            for info in story_index.clusters(updated_since):
                try:
                    stories.append(story_index.story(info.cluster_id))
                except KeyError:
                    continue  # merged or expired by another process since the listing
                infos.append(info)
        except StoryIndexError as err:
            raise IndexInputFailure(str(err)) from None
    if fmt == "json":
        for info, story in zip(infos, stories, strict=True):
            record: dict[str, Any] = {**story_to_dict(story),
                                      "updated_at": info.updated_at.isoformat()}
            click.echo(json.dumps(record, ensure_ascii=False))
    else:
        from dedup.render import render_markdown  # the batch command's renderer

        click.echo(render_markdown(stories), nl=False)


@index.command("retired")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only ids retired at or after this time (ISO 8601, UTC).")
def retired_command(db: str, since: str | None) -> None:
    """Print the cluster ids DB retired (merged into another story, or expired), one JSON
    line each: cluster_id, merged_into, live (the id holding the story now), retired_at,
    reason. A retired id is never handed out again."""
    updated_since = _parse_since(since)
    with _open(db, create=False) as story_index:
        try:
            retired = story_index.retired(updated_since)
        except StoryIndexError as err:
            raise IndexInputFailure(str(err)) from None
    for info in retired:
        click.echo(json.dumps({"cluster_id": info.cluster_id, "merged_into": info.merged_into,
                               "live": info.live, "retired_at": info.retired_at.isoformat(),
                               "reason": info.reason}))


@index.command("stats")
@click.argument("db", type=click.Path(dir_okay=False))
def stats_command(db: str) -> None:
    """Print counts, dates and disk use of DB."""
    with _open(db, create=False) as story_index:
        stats = story_index.stats()
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        click.echo(f"{key:<{width}}  {shown}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*$")


def _parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise IndexInputFailure(f"unreadable --older-than {value!r}: use e.g. 7d, 12h or 30m")
    amount, unit = float(match.group(1)), match.group(2) or "d"
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})


@index.command("expire")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--older-than", required=True,
              help="Remove articles published (or added, if undated) before now minus this: "
                   "7d, 12h, 30m.")
def expire_command(db: str, older_than: str) -> None:
    """Remove old articles from DB; their clusters keep their ids and stories are updated."""
    window = _parse_duration(older_than)
    with _open(db, create=False) as story_index:
        try:
            removed = story_index.expire(older_than=window)
            stats = story_index.stats()
        except StoryIndexError as err:
            raise IndexInputFailure(str(err)) from None
    click.echo(f"articles removed {removed:>10,}\nindex articles   {stats['articles']:>10,}",
               err=True)
