"""What every ``dedup`` command shares: the click group, the input options with one
spelling, settings files, bad input as one line (exit 2), and progress bars."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from dedup import io
from dedup.config import Config
from dedup.configfile import ConfigError
from dedup.configfile import load_config as load_config_file

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
                     help="Column with the publication date (ISO 8601 or RFC 2822)."),
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


def load_config(path: str | None) -> Config:
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


def read_inputs(inputs: tuple[str, ...], fmt: str | None, columns: io.Columns,
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


def table_format(path: Path, option: str) -> io.TableFormat:
    """parquet or jsonl, from a table path's extension; anything else is a usage error."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise click.UsageError(f"{option} {path}: name a .parquet or .jsonl file")


def emit(text: str, output: str | None) -> None:
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


def refuse_overwriting(inputs: Sequence[str], outputs: Sequence[tuple[Path | None, str]]
                       ) -> None:
    """A usage error when an output file (``(path, option)``) is an input, which it would
    replace, or when two outputs name one file."""
    def same(a: Path, b: Path) -> bool:
        return a.resolve() == b.resolve()

    named = [(out, option) for out, option in outputs if out is not None]
    for path in (p for p in inputs if p != "-"):
        for out, option in named:
            if same(Path(path), out):
                raise click.UsageError(f"{option} {out} is an input: write the output "
                                       "elsewhere")
    for k, (out, option) in enumerate(named):
        for first, first_option in named[:k]:
            if same(first, out):
                raise click.UsageError(f"{option} {out} is the {first_option} file: name "
                                       "another file")


def check_writable(path: Path, option: str) -> None:
    """One line, before any work, when ``path`` cannot take a new file (a folder there, a
    file where a folder should be, permissions, a read-only file system): found after the
    work, the work would be done and its record lost. A missing folder is fine when its
    nearest existing parent takes one: the atomic write creates it."""
    if path.is_dir():
        raise InputFailure(f"{path}: is a folder; pick another {option} file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dedup-probe-"):
            pass
    except OSError as err:
        raise InputFailure(f"{path}: cannot write there ({err.strerror or err}); pick another "
                           f"{option} file") from None
