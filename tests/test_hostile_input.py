"""Hostile input (issue #22): every reader gives exit 0 or one line with exit 2, never a
traceback, and with --skip-bad-rows every row is clustered or rejected."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from benchmarks import fuzz
from dedup import io
from dedup.cli import main

STORM = '"text": "Storm hits the city; 12 dead."'


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def _assignments(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "assignments.parquet")


def _rejected(out: Path) -> list[dict[str, object]]:
    path = out / "rejected.jsonl"
    return [json.loads(x) for x in path.open()] if path.exists() else []


# (file name, bytes, rows it holds, what the summary or the error says)
CASES = [
    ("mixed-list.jsonl", b'{"id": "a", %s, "coords": [12, 45.3]}\n' % STORM.encode(), 1,
     "'coords' kept as JSON text"),
    ("int-then-list.jsonl", b'{"id": "a", %s, "tags": 1}\n{"id": "b", %s, "tags": [1]}\n'
     % (STORM.encode(), STORM.encode()), 2, "'tags' kept as JSON text"),
    ("shapes.jsonl", b'{"id": "a", %s, "n": {"a": 1}}\n{"id": "b", %s, "n": {"b": "x"}}\n'
     % (STORM.encode(), STORM.encode()), 2, "'n' kept as JSON text"),
    ("deep.jsonl", b'{"id": "a", %s, "deep": %s%s}\n' % (STORM.encode(), b"[" * 100_000,
                                                         b"]" * 100_000), 1,
     "'deep' kept as JSON text"),
    ("reserved.jsonl", b'{"id": "a", %s, "cluster_id": "x", "similarity": 2}\n'
     % STORM.encode(), 1, "carried as 'input_cluster_id'"),
    ("surrogate.jsonl", b'{"id": "a", "text": "Storm \\ud800 hits"}\n', 1, "U+FFFD"),
    ("bom.jsonl", b'\xef\xbb\xbf{"id": "a", %s}\n' % STORM.encode(), 1, "clustered"),
    ("bom.csv", b"\xef\xbb\xbfid,text\na,Storm\n", 1, "clustered"),
]


@pytest.mark.parametrize(("name", "content", "rows", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_rows_are_carried(tmp_path: Path, name: str, content: bytes, rows: int,
                                  expected: str) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    out = tmp_path / "out"
    result = run("cluster", str(src), "-o", str(out), "-j", "1")
    assert result.exit_code == 0, result.output
    assert expected in result.stderr
    assert _assignments(out).height == rows
    added = run("index", "add", str(tmp_path / "i.db"), str(src))
    assert added.exit_code == 0, added.output


def test_carried_values_keep_their_data(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(CASES[1][1] + b'{"id": "c", %s, "cluster_id": "mine"}\n' % STORM.encode())
    out = tmp_path / "out"
    assert run("cluster", str(src), "-o", str(out), "-j", "1").exit_code == 0
    frame = _assignments(out)
    assert frame["tags"].to_list() == ["1", "[1]", None]  # JSON text, nothing dropped
    assert frame["input_cluster_id"].to_list() == [None, None, "mine"]
    assert frame["cluster_id"].null_count() == 0


def test_csv_errors_name_the_physical_line(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_bytes(b'id,text\na,"Storm\n\nhits"\nb,"x\ny"\n,"missing\nid"\nc,ok\n')
    result = run("cluster", str(src), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "q.csv:7:" in result.stderr
    out = tmp_path / "s"
    assert run("cluster", str(src), "-o", str(out), "--skip-bad-rows").exit_code == 0
    assert [r["line"] for r in _rejected(out)] == [7]
    assert _assignments(out)["id"].to_list() == ["a", "b", "c"]  # c on line 9


def test_ids_must_be_strings(tmp_path: Path) -> None:
    src = tmp_path / "i.jsonl"
    src.write_bytes(b'{"id": 12, %s}\n{"id": "12", %s}\n' % (STORM.encode(), STORM.encode()))
    result = run("cluster", str(src), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "i.jsonl:1: id 12 in column 'id' is a number, not a string" in result.stderr
    out = tmp_path / "s"
    assert run("cluster", str(src), "-o", str(out), "--skip-bad-rows").exit_code == 0
    assert _assignments(out)["id"].to_list() == ["12"]  # the string one, not a merge
    coerced = run("cluster", str(src), "-o", str(tmp_path / "c"), "--coerce-ids")
    assert coerced.exit_code == 2 and "i.jsonl:2 (id '12'): duplicate id" in coerced.stderr


@pytest.mark.parametrize("command", ["cluster", "index"])
def test_unreadable_things_are_one_line(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "d.jsonl"
    folder.mkdir()
    args = (["cluster", str(folder), "-o", str(tmp_path / "o")] if command == "cluster"
            else ["index", "add", str(tmp_path / "i.db"), str(folder)])
    result = run(*args, "--format", "jsonl")
    assert result.exit_code == 2 and "d.jsonl: is a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_stories_file_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "a", %s}\n' % STORM.encode())
    assert run("cluster", str(src), "-o", str(out), "-j", "1").exit_code == 0
    stories = out / os.readlink(out / ".current") / "stories.jsonl"
    stories.write_bytes(b"\xff\xfe not UTF-8\n")
    result = run("stories", str(out))
    assert result.exit_code == 2 and "stories.jsonl:1: bytes that are not UTF-8" in result.stderr


def test_read_result_notes_name_each_change(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(CASES[1][1] + CASES[4][1].replace(b'"a"', b'"z"'))
    read = io.read_articles([str(src)])
    assert read.frame.height == 3
    assert any("'tags'" in n for n in read.notes)
    assert any("'cluster_id'" in n for n in read.notes)


@pytest.mark.parametrize("kind", fuzz.READERS)
def test_fuzzed_inputs_never_crash_and_lose_nothing(kind: str) -> None:
    """Generated hostile inputs per reader (``python -m benchmarks.fuzz`` runs 2,000);
    each example runs one of cluster/index add, with or without --skip-bad-rows."""
    outcomes: list[fuzz.Outcome] = []
    examples = int(os.environ.get("DEDUP_FUZZ_EXAMPLES", "10"))
    fuzz.fuzz(kind, examples, outcomes.append, thorough=False)
    problems = [o.problem for o in outcomes if o.problem]
    assert len(outcomes) >= examples // 2 and not problems, problems[:3]
