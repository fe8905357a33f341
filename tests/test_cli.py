from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dedup.cli import main
from tests.conftest import DISTRACTORS, SEED_IDS, SEEDS


def run(*args: str, stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cluster_seed_folder(tmp_path: Path) -> None:
    result = run("cluster", str(SEEDS), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(tmp_path / "out" / "assignments.parquet")
    assert sorted(out["id"]) == list(SEED_IDS)
    assert out["cluster_id"].n_unique() == 1
    assert out["is_canonical"].sum() == 1
    clusters = [json.loads(x) for x in (tmp_path / "out" / "clusters.jsonl").open()]
    assert clusters == [{"cluster_id": out["cluster_id"][0], "members": list(SEED_IDS),
                         "size": 2}]
    assert "articles read" in result.stderr and "clusters" in result.stderr


def test_every_format_gives_the_same_clusters(tmp_path: Path) -> None:
    rows = [{"id": d["id"], "text": d["text"], "title": d["title"]} for d in DISTRACTORS]
    frame = pl.DataFrame(rows)
    _jsonl(tmp_path / "a.jsonl", rows)
    frame.write_csv(tmp_path / "a.csv")
    frame.write_parquet(tmp_path / "a.parquet")
    outs = []
    for name in ("a.jsonl", "a.csv", "a.parquet"):
        result = run("cluster", str(tmp_path / name), "-o", str(tmp_path / name[2:]))
        assert result.exit_code == 0, result.output
        outs.append(pl.read_parquet(tmp_path / name[2:] / "assignments.parquet")
                    .select("id", "cluster_id"))
    assert outs[0].equals(outs[1]) and outs[1].equals(outs[2])


def test_stdin_and_jsonl_output(tmp_path: Path) -> None:
    data = "".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in DISTRACTORS)
    result = run("cluster", "-", "-o", str(tmp_path), "--format", "jsonl", stdin=data.encode())
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "assignments.jsonl").open()]
    assert [r["id"] for r in rows] == [d["id"] for d in DISTRACTORS]


def test_column_mapping(tmp_path: Path) -> None:
    rows = [{"doc_id": "x1", "body": "Quake hits Lima", "headline": "Quake", "when":
             "2024-03-22", "outlet": "AP"}]
    src = _jsonl(tmp_path / "in.jsonl", rows)
    result = run("cluster", str(src), "-o", str(tmp_path / "o"), "--id-col", "doc_id",
                 "--text-col", "body", "--title-col", "headline", "--date-col", "when",
                 "--source-col", "outlet")
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(tmp_path / "o" / "assignments.parquet")
    assert out["id"].to_list() == ["x1"] and out["source"].to_list() == ["AP"]
    assert out["published"].dt.year().to_list() == [2024]


def test_outputs_are_byte_identical_across_runs(tmp_path: Path) -> None:
    rows = [{"id": d["id"], "text": d["text"]} for d in DISTRACTORS]
    src = _jsonl(tmp_path / "in.jsonl", rows)
    for name in ("one", "two"):
        assert run("cluster", str(src), str(SEEDS), "-o", str(tmp_path / name)).exit_code == 0
    for file in ("assignments.parquet", "clusters.jsonl", "stories.jsonl"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes()


BAD_CASES = [
    ("missing.jsonl", None, "no such file"),
    ("in.xml", b"<a/>", "unknown format"),
    ("in.jsonl", b'{"id": "a", "text": "x"}\n{"id": "b", "text": \n', "in.jsonl:2"),
    ("in.jsonl", b'{"id": "a", "text": "caf\xe9"}\n', "not UTF-8"),
    ("in.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "duplicate id"),
    ("in.jsonl", b'{"text": "x"}\n', "missing id: no column 'id' in this row (columns: text)"),
    ("in.jsonl", b'{"id": "a", "body": "x"}\n', "columns: id, body): map it with --text-col"),
    ("in.csv", b"id,body\na,x\n", "in.csv: no column 'text' (columns: id, body): map it with"),
    ("in.csv", b"id,text\na,caf\xe9\n", "in.csv:2"),
    ("in.jsonl", b'{"id": "a", "text": "x", "published": "yesterday"}\n', "unreadable date"),
]


def test_stdin_in_another_format_is_one_clear_line(tmp_path: Path) -> None:
    result = run("cluster", "-", "--format", "csv", "-o", str(tmp_path / "out"),
                 stdin=b"id,text\na,x\n")
    assert result.exit_code == 2
    assert result.stderr == ("Error: -: standard input is read as JSONL only, not csv: save it "
                             "to a file and pass the file\n")


@pytest.mark.parametrize(("name", "content", "expected"), BAD_CASES)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    result = run("cluster", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "assignments.parquet").exists()


def test_skip_bad_rows_accounts_for_every_row(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"id": "a", "text": "Quake hits Lima"}\n'
        b"not json\n"
        b'{"id": "a", "text": "again"}\n'
        b'{"id": "c", "text": "caf\xe9"}\n'
        b'{"id": "d", "text": "   "}\n'
    )
    result = run("cluster", str(src), "-o", str(tmp_path / "out"), "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(tmp_path / "out" / "assignments.parquet")
    rejected = [json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").open()]
    assert out["id"].to_list() == ["a", "d"]
    assert [r["line"] for r in rejected] == [2, 3, 4]
    assert out.height + len(rejected) == 5
    assert "rejected               3" in result.stderr


def test_every_command_has_help() -> None:
    for args in (["--help"], ["cluster", "--help"], ["stories", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_cluster_writes_stories_and_stories_command_renders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    stories = [json.loads(x) for x in (out / "stories.jsonl").open()]
    assert len(stories) == 1 and sorted(stories[0]["members"]) == list(SEED_IDS)
    toll = [d for d in stories[0]["differences"] if d["kind"] == "number"
            and {"143", "144"} <= set(d["variants"])]
    assert toll and toll[0]["variants"]["143"] == [SEED_IDS[0]]
    md = run("stories", str(out))
    assert md.exit_code == 0 and "143" in md.output and "144" in md.output
    html = run("stories", str(out), "--format", "html", "-o", str(tmp_path / "s.html"))
    assert html.exit_code == 0
    assert (tmp_path / "s.html").read_text(encoding="utf-8").lstrip().startswith("<!DOCTYPE")
    only = run("stories", str(out), "--format", "json", "--cluster", stories[0]["cluster_id"])
    assert json.loads(only.output)["cluster_id"] == stories[0]["cluster_id"]
    missing = run("stories", str(out), "--cluster", "cnope")
    assert missing.exit_code == 2 and "no cluster cnope" in missing.stderr


def test_no_stories_skips_merge_and_removes_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    assert (out / "stories.jsonl").exists()
    assert run("cluster", str(SEEDS), "-o", str(out), "--no-stories").exit_code == 0
    assert not (out / "stories.jsonl").exists()
    result = run("stories", str(out))
    assert result.exit_code == 2 and "no stories here" in result.stderr


def test_unwritable_output_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("cluster", str(SEEDS), "-o", str(blocker / "out"))
    assert result.exit_code == 2, result.output
    assert "cannot write the outputs" in result.stderr and "Traceback" not in result.output
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    result = run("stories", str(out), "-o", str(blocker / "s.md"))
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_a_column_no_row_has_stops_the_run_even_when_skipping_bad_rows(tmp_path: Path) -> None:
    # A wrong mapping is not 2,000 bad rows: one line naming the file and its columns.
    src = tmp_path / "in.csv"
    src.write_bytes(b"doc_id,body\na,Quake hits Lima\nb,Storm\n")
    result = run("cluster", str(src), "-o", str(tmp_path / "out"), "--skip-bad-rows")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {src}: no column 'id' (columns: doc_id, body): map it "
                             "with --id-col\n")
    result = run("cluster", str(src), "-o", str(tmp_path / "out"), "--id-col", "doc_id",
                 "--text-col", "body")
    assert result.exit_code == 0, result.output


def test_an_empty_input_runs_and_says_so(tmp_path: Path) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"\n\n")
    result = run("cluster", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert f"note: no articles in {src}: is that the right input?" in result.stderr
