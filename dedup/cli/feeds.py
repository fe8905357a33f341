"""``dedup index ...``: the incremental ``StoryIndex`` for feeds (add, read, expire, remove)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import click

from dedup import io
from dedup.cli import app
from dedup.config import Config
from dedup.configfile import config_differences, format_value
from dedup.index import StoryIndex, StoryIndexError
from dedup.io.readers import parse_date
from dedup.merge import story_to_dict
from dedup.pipeline import DedupInputError
from dedup.records import Rejected
from dedup.render import FORMATS as STORY_FORMATS
from dedup.render import Format as StoryFormat
from dedup.render import render


def _open(path: str, *, create: bool, config: Config | None = None) -> StoryIndex:
    """Open the index with ``config``, or else with the settings it was created with."""
    try:
        return StoryIndex.open(path, config or StoryIndex.read_config(path), create=create)
    except StoryIndexError as err:
        raise app.InputFailure(str(err)) from None


# Settings that may differ from the ones an index was created with: they change how long a
# writer waits, not what it computes.
_PER_RUN_SETTINGS = frozenset({"index.busy_timeout"})


def _index_config(db: str, config_path: str | None) -> Config | None:
    """The settings for an add: the file's, which must agree with the ones the index was
    created with (placing with other thresholds would mix two clusterings in one index)."""
    if config_path is None:
        return None  # the index's own (the defaults for a new or an older index)
    given = app.load_config(config_path)
    try:
        stored = StoryIndex.read_config(db)
    except StoryIndexError as err:
        raise app.InputFailure(str(err)) from None
    if stored is None:
        return given
    differ = [d for d in config_differences(stored, given) if d[0] not in _PER_RUN_SETTINGS]
    if differ:
        key, built, asked = differ[0]
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        raise app.InputFailure(
            f"{db}: created with {key} = {format_value(built)}, but {config_path} says "
            f"{format_value(asked)}{more}; an index keeps the settings it was created with: "
            "drop --config to use them, or build a new index with these")
    return given


@app.main.group("index")
def index() -> None:
    """An incremental story index for feeds: add articles as they arrive, read stories."""


@index.command("add")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@app.input_options(skip_help="Skip bad rows and ids already in the index instead of stopping.")
@app.config_option("a new index (an existing index keeps the settings it was created with)")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False),
              help="With --skip-bad-rows: write the rows left out (file, line, id, reason) "
                   "to this JSONL file.")
def index_add_command(
    db: str,
    inputs: tuple[str, ...],
    reading: app.Reading,
    config_path: str | None,
    rejected_path: str | None,
) -> None:
    """Add the articles in INPUT... (files, .txt folders, or - for JSONL on stdin) to DB,
    creating it if needed; all in one transaction."""
    if rejected_path is not None:
        app.refuse_overwriting(inputs, [(Path(db), "DB"), (Path(rejected_path), "--rejected")])
        app.check_writable(Path(rejected_path), "--rejected")
    config = _index_config(db, config_path)
    fmt, columns, skip_bad_rows, coerce_ids = reading
    start = time.perf_counter()
    read, _ = app.read_inputs(inputs, fmt, columns, skip_bad_rows, coerce_ids)
    frame = read.frame
    with _open(db, create=True, config=config) as story_index, app.progress_bar() as progress:
        skipped = 0
        try:
            known: list[str] = []  # in input order
            if skip_bad_rows and frame.height:
                ids = frame["id"].to_list()
                found = story_index.existing(ids)
                known = [i for i in ids if i in found]
                skipped = len(known)
                frame = frame.filter(~frame["id"].is_in(known))
            placed = story_index.add(frame, progress=progress)
            stats = story_index.stats()
        except DedupInputError as err:  # an id already in the index: name the inputs
            raise app.InputFailure(f"{', '.join(inputs)}: {err}") from None
        except StoryIndexError as err:
            raise app.InputFailure(str(err)) from None
    if rejected_path is not None:
        left = [*read.rejected, *(Rejected(", ".join(inputs), None, i, f"already in {db}")
                                   for i in known)]
        try:
            io.write_rejected(Path(rejected_path), left)
        except OSError as err:
            raise app.InputFailure(f"{rejected_path}: cannot write ({err.strerror or err}); the "
                               "articles were added, pick another --rejected file") from None
    new = sum(p.is_new_cluster for p in placed)
    created = len({p.cluster_id for p in placed if p.is_new_cluster})
    merged = len(placed.retired)  # also ids merged into stories no new article joined
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
    """``--since`` read as the inputs' dates are (``io.parse_date``), as naive UTC."""
    try:
        return parse_date(value)
    except ValueError:
        raise app.InputFailure(f"unreadable --since {value!r}: use ISO 8601 (2024-03-22 or "
                           "2024-03-22T18:00:00) or RFC 2822") from None


@index.command("stories")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only stories the index changed at or after this time (when "
              "it merged them, not when they were published): ISO 8601 or RFC 2822, UTC.")
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
            raise app.InputFailure(str(err)) from None
    if fmt == "json":
        text = "".join(json.dumps({**story_to_dict(story),
                                   "updated_at": info.updated_at.isoformat()},
                                  ensure_ascii=False) + "\n" for info, story in updates)
    else:
        text = render([story for _, story in updates], fmt) if updates else ""
    app.emit(text, output)


@index.command("retired")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--since", help="Only ids retired at or after this time (ISO 8601 or RFC "
              "2822, UTC).")
def index_retired_command(db: str, since: str | None) -> None:
    """Print the cluster ids DB retired (merged into another story, expired or removed), one
    JSON line each: cluster_id, merged_into, live (the id holding the story now), retired_at,
    reason. A retired id is never handed out again."""
    updated_since = _parse_since(since)
    with _open(db, create=False) as story_index:
        try:
            retired = story_index.retired(updated_since)
        except StoryIndexError as err:
            raise app.InputFailure(str(err)) from None
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
            raise app.InputFailure(str(err)) from None
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        click.echo(f"{key:<{width}}  {shown}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*$")


@index.command("remove")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("ids", nargs=-1, required=True)
def index_remove_command(db: str, ids: tuple[str, ...]) -> None:
    """Remove the articles with these IDS from DB, to add corrected versions under the same
    ids; clusters left empty retire their ids. An id not in DB removes nothing (exit 2)."""
    with _open(db, create=False) as story_index:
        try:
            removed = story_index.remove(ids)
            stats = story_index.stats()
        except (DedupInputError, StoryIndexError) as err:
            raise app.InputFailure(str(err)) from None
    click.echo(f"articles removed {removed:>10,}\nindex articles   {stats['articles']:>10,}",
               err=True)


def _parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise app.InputFailure(f"unreadable --older-than {value!r}: use e.g. 7d, 12h or 30m")
    amount, unit = float(match.group(1)), match.group(2) or "d"
    try:
        return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    except OverflowError:
        raise app.InputFailure(f"--older-than {value!r} is longer than any date: use e.g. "
                               "3650d") from None


@index.command("expire")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--older-than", required=True,
              help="Remove articles published (or added, if undated) before now minus this: "
                   "7d, 12h, 30m (a number alone is days).")
def index_expire_command(db: str, older_than: str) -> None:
    """Remove old articles from DB; their clusters keep their ids and stories are updated."""
    window = _parse_duration(older_than)
    with _open(db, create=False) as story_index:
        try:
            removed = story_index.expire(older_than=window)
            stats = story_index.stats()
        except StoryIndexError as err:
            raise app.InputFailure(str(err)) from None
    click.echo(f"articles removed {removed:>10,}\nindex articles   {stats['articles']:>10,}",
               err=True)
