"""Reading: the column-wise fast path for Parquet/CSV agrees with the row-by-row reader."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dedup import io

ROWS = [
    {"id": "a", "text": "Quake hits Lima.", "title": "Quake",
     "published": "2024-03-22T18:00:00+02:00", "source": "x.com", "lang": "en"},
    {"id": "b", "text": None, "title": None, "published": "2024-03-23", "source": None,
     "lang": "es"},
    {"id": "7", "text": "Storm.", "title": "Storm", "published": None, "source": "y.org",
     "lang": None},
]


def _jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_parquet_and_csv_read_like_jsonl(tmp_path: Path) -> None:
    reference = io.read_articles([str(_jsonl(tmp_path / "in.jsonl"))]).frame
    pl.DataFrame(ROWS).write_parquet(tmp_path / "in.parquet")
    pl.DataFrame(ROWS).write_csv(tmp_path / "in.csv")
    for name in ("in.parquet", "in.csv"):
        assert io.read_tables([str(tmp_path / name)], None, io.Columns()) is not None
        frame = io.read_articles([str(tmp_path / name)]).frame
        assert frame.equals(reference), name
    assert reference["published"].to_list()[:2] == [datetime(2024, 3, 22, 16, 0),
                                                    datetime(2024, 3, 23)]


def test_aware_datetimes_become_naive_utc(tmp_path: Path) -> None:
    when = datetime(2024, 3, 22, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    pl.DataFrame({"id": ["a"], "text": ["t"], "published": [when]}).write_parquet(
        tmp_path / "in.parquet")
    frame = io.read_articles([str(tmp_path / "in.parquet")]).frame
    assert frame["published"].to_list() == [when.astimezone(UTC).replace(tzinfo=None)]


def test_bad_rows_in_tables_are_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    pl.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"],
                  "published": ["2024-01-01", "last tuesday", None]}).write_csv(path)
    with pytest.raises(io.InputError, match=r"in\.csv:3 \(id 'b'\): unreadable date"):
        io.read_articles([str(path)])
    read = io.read_articles([str(path)], skip_bad_rows=True)
    assert read.frame["id"].to_list() == ["a", "c"]
    assert [(r.line, r.id) for r in read.rejected] == [(3, "b")]


def test_duplicate_ids_across_tables_fall_back_to_rejection(tmp_path: Path) -> None:
    for name in ("one.parquet", "two.parquet"):
        pl.DataFrame({"id": ["a", name], "text": ["x", "y"]}).write_parquet(tmp_path / name)
    paths = [str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")]
    with pytest.raises(io.InputError, match="duplicate id"):
        io.read_articles(paths)
    read = io.read_articles(paths, skip_bad_rows=True)
    assert read.frame["id"].to_list() == ["a", "one.parquet", "two.parquet"]
    assert [r.id for r in read.rejected] == ["a"]


def test_readers_and_drivers_raise_one_input_error_class(tmp_path: Path) -> None:
    """A reader's bad row and a driver's bad article are one class: one ``except`` (the
    CLI's, a caller's) catches both."""
    from dedup import DedupInputError, cluster

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(DedupInputError, match=r"bad\.jsonl:2"):
        io.read_articles([str(bad)])
    with pytest.raises(io.InputError, match="duplicate id 'a'"):
        cluster([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])


def test_a_parquet_title_or_source_holding_lists_is_carried_as_json_text(
        tmp_path: Path) -> None:
    # The column-wise reader cannot cast a list to text: the row reader carries it, as it
    # carries a JSONL title that is a list (it was a polars traceback).
    path = tmp_path / "t.parquet"
    pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "title": [[None], ["t"]],
                  "source": [["s"], None]}).write_parquet(path)
    read = io.read_articles([str(path)])
    assert read.frame["title"].to_list() == ["[null]", '["t"]']
    assert read.frame["source"].to_list() == ['["s"]', None]


def test_rss_dates_are_read_as_rfc_2822(tmp_path: Path) -> None:
    # RSS pubDate spells dates the e-mail way; ISO 8601 stays the documented form.
    path = tmp_path / "feed.jsonl"
    path.write_text('{"id": "a", "text": "x", "published": "Fri, 22 Mar 2024 18:00:00 GMT"}\n'
                    '{"id": "b", "text": "y", "published": "22 Mar 2024 18:00:00 +0200"}\n'
                    '{"id": "c", "text": "z", "published": "2024-03-22T18:00:00Z"}\n')
    read = io.read_articles([str(path)])
    assert [d.isoformat() for d in read.frame["published"].to_list()] == [
        "2024-03-22T18:00:00", "2024-03-22T16:00:00", "2024-03-22T18:00:00"]
    path.write_text('{"id": "a", "text": "x", "published": "Fri, 99 Foo 2024"}\n')
    with pytest.raises(io.InputError, match="unreadable date"):
        io.read_articles([str(path)])


def test_a_txt_folder_is_read_with_its_subfolders(tmp_path: Path) -> None:
    for name, text in [("top.TXT", "Top story.\nBody."), ("2024/03/22/story.txt", "First."),
                       ("2024/03/23/story.txt", "Second."), ("2024/notes.md", "not read")]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    frame = io.read_articles([str(tmp_path)]).frame
    # Ids are paths under the folder, so the two days' "story.txt" stay two articles.
    assert frame["id"].to_list() == ["2024/03/22/story", "2024/03/23/story", "top"]
    assert frame["title"].to_list() == ["First.", "Second.", "Top story."]


def test_an_unreadable_subfolder_is_an_error_not_a_loss(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text("A.", encoding="utf-8")

    def walk(top: str, onerror: Any = None) -> Any:
        yield str(top), ["locked"], ["a.txt"]
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "locked")))

    monkeypatch.setattr(io.formats.os, "walk", walk)
    with pytest.raises(io.InputError, match=r"locked: cannot read this folder"):
        io.read_articles([str(tmp_path)])


def test_an_input_given_twice_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    path = _jsonl(tmp_path / "in.jsonl")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(io.InputError, match=r"^\./in\.jsonl: given twice \(as in\.jsonl\)"):
        io.read_articles(["in.jsonl", "./in.jsonl"])
    with pytest.raises(io.InputError, match=r"^- \(standard input\): given twice"):
        io.read_articles(["-", "-"], stdin=path.open("rb"))


def test_links_to_nothing_and_pipes_in_a_txt_folder_are_bad_rows(tmp_path: Path) -> None:
    import os

    (tmp_path / "a.txt").write_text("Storm hits the city.", encoding="utf-8")
    (tmp_path / "broken.txt").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.txt")  # opened, it would block the read for ever
    with pytest.raises(io.InputError, match=r"broken\.txt \(id 'broken'\): a link to nothing"):
        io.read_articles([str(tmp_path)])
    read = io.read_articles([str(tmp_path)], skip_bad_rows=True)
    assert read.frame["id"].to_list() == ["a"]
    assert [(r.id, r.reason.split(" (")[0]) for r in read.rejected] == [
        ("broken", "a link to nothing; remove it or restore its target"),
        ("pipe", "not a regular file")]


def test_txt_names_that_give_no_id_or_the_same_id_are_bad_rows_naming_the_file(
        tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Storm hits the city.", encoding="utf-8")
    (tmp_path / "a.TXT").write_text("Another story entirely.", encoding="utf-8")
    (tmp_path / ".txt").write_text("No name at all.", encoding="utf-8")
    (tmp_path / " .txt").write_text("A blank name (a review).", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".TXT").write_text("Nor here (a review: its id was 'sub/').")
    read = io.read_articles([str(tmp_path)], skip_bad_rows=True)
    assert read.frame["text"].to_list() == ["Another story entirely."]  # sorted: a.TXT first
    assert [(r.file, r.id, r.reason.split(" (")[0]) for r in read.rejected] == [
        (str(tmp_path / " .txt"), " ", "no name before .txt, so no id; rename the file"),
        (str(tmp_path / ".txt"), "", "no name before .txt, so no id; rename the file"),
        (str(tmp_path / "a.txt"), "a", f"the same id as {tmp_path / 'a.TXT'}"),
        (str(tmp_path / "sub" / ".TXT"), "sub/", "no name before .txt, so no id; rename the file")]


def test_a_csv_quote_that_never_closes_is_an_error_not_lost_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('id,text\nz,ok\na,"abc"def\nc,"open\nd,x\ne,y\n', encoding="utf-8")
    # Read leniently, rows d and e would vanish into c's text.
    with pytest.raises(io.InputError, match=r"bad\.csv:4: a quoted field opens here and never"):
        io.read_articles([str(bad)], skip_bad_rows=True)
    fine = tmp_path / "fine.csv"
    fine.write_text('id,text\na,"abc"def\nb,5" screen\nc,"two\nlines"\n', encoding="utf-8")
    assert io.read_articles([str(fine)]).frame["text"].to_list() == [
        "abcdef", '5" screen', "two\nlines"]
    # A short row is the same bad row whatever the other rows hold (the column-wise read
    # filled it with nulls unless another row was long).
    for extra in ("", 'x3,"a,b",c,d\n'):
        short = tmp_path / "short.csv"
        short.write_text("id,text,title\nx1,hello,T\nx2,only text\n" + extra, encoding="utf-8")
        with pytest.raises(io.InputError, match=r"short\.csv:3: 2 fields where the header has 3"):
            io.read_articles([str(short)])
        assert io.read_tables([str(short)], None, io.Columns()) is None
    # A field over the csv module's 128 KiB limit reads row by row as column-wise, and a
    # short row after it is still found (a review: the scan stopped at the long field).
    long_text = "word " * 40_000
    long = tmp_path / "long.csv"
    long.write_text(f'id,text\nx1,"{long_text}"\nx2,short\nx3\n', encoding="utf-8")
    with pytest.raises(io.InputError, match=r"long\.csv:4: 1 fields where the header"):
        io.read_articles([str(long)])
    kept = io.read_articles([str(long)], skip_bad_rows=True)  # row by row
    assert kept.frame["text"].to_list() == [long_text, "short"]
    assert [r.line for r in kept.rejected] == [4]
    # A malformed quote earlier in the record is not the record running to the end.
    mixed = tmp_path / "mixed.csv"
    mixed.write_text('id,text,n,m\n1,"a"b,"multi\n",x\n', encoding="utf-8")
    assert io.read_articles([str(mixed)]).frame["text"].to_list() == ["ab"]
    twice = tmp_path / "twice.csv"
    twice.write_text("id,text,text\na,x,y\n", encoding="utf-8")
    with pytest.raises(io.InputError, match=r"twice\.csv:1: column 'text' appears twice"):
        io.read_articles([str(twice)])


def test_a_failed_atomic_write_names_the_target_not_its_temp_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for target in (tmp_path / "a-file" / "out.jsonl", tmp_path / "dir"):
        if target.name == "dir":
            target.mkdir()  # os.replace of a file over a folder fails at the end
        with pytest.raises(OSError) as caught, io.atomic_path(target) as tmp:
            tmp.write_text("x")
        assert caught.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "dir"]  # no temp left


def test_a_csv_with_another_separator_says_so(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("id;text\na;Storm hits the city\n", encoding="utf-8")
    with pytest.raises(io.InputError, match=r"one column 'id;text': the file is not "
                       "comma-separated"):
        io.read_articles([str(path)])



@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet='ab,"\r\n', min_size=1, max_size=6), min_size=1, max_size=4),
       st.integers(min_value=0, max_value=12))
@example(texts=['a"a'], cut=3)  # '"a""' at the end: polars alone reads it as "a"
def test_only_a_quoted_field_left_open_at_the_end_is_called_unclosed(
        texts: list[str], cut: int) -> None:
    def written(rows: list[list[str]]) -> str:
        buffer = StringIO(newline="")
        csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
        return buffer.getvalue()

    rows = [["id", "text"]] + [[f"r{i}", t] for i, t in enumerate(texts)]
    before = written(rows[:-1])
    last = written(rows[-1:])
    # Cut the last record inside its text's quotes (not between the two of a doubled one).
    opening = last.index(',"') + 2
    inside = last[:opening + cut]
    value = inside[opening:]
    if len(inside) >= len(last) - 3 or (len(value) - len(value.rstrip('"'))) % 2:
        inside = last[:opening]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text(before + last, encoding="utf-8", newline="")
        assert io.read_articles([str(path)]).frame["text"].to_list() == texts
        path.write_text(before + inside, encoding="utf-8", newline="")
        line = len(StringIO(before, newline="").readlines()) + 1
        with pytest.raises(io.InputError, match=rf"in\.csv:{line}: a quoted field opens here"):
            io.read_articles([str(path)], skip_bad_rows=True)
