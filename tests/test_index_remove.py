"""``StoryIndex.remove`` and ``dedup index remove``: a corrected article replaces the old."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dedup.cli import index as index_group
from dedup.index import StoryIndex
from dedup.pipeline import DedupInputError
from tests.test_index import STRIKE, VOLCANO, snapshot


def test_remove_retires_emptied_clusters_and_counts_as_if_never_added(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(VOLCANO + STRIKE)
        volcano, strike = index.cluster_of("a1"), index.cluster_of("b1")
        assert index.remove(["b1", "b2", "b1"]) == 2  # a repeated id counts once
        assert len(index) == 2 and index.existing(["a1", "a2", "b1", "b2"]) == {"a1", "a2"}
        [gone] = index.retired()
        assert (gone.cluster_id, gone.reason, gone.live) == (strike, "removed", None)
        with pytest.raises(KeyError, match="removed by id"):
            index.story(strike or "")
        assert index.remove([]) == 0
    with StoryIndex.open(tmp_path / "fresh.db") as fresh:
        fresh.add(VOLCANO)
        expected = fresh._current_state().df.copy()
    with StoryIndex.open(db) as index:  # DF as counted again at load
        assert np.array_equal(index._current_state().df, expected)
        # The corrected article goes back under its id, into its old story.
        assert index.remove(["a1"]) == 1
        fixed = dict(VOLCANO[0], text=VOLCANO[0]["text"].replace("40 homes", "41 homes"))
        [placed] = index.add([fixed])
        assert placed.cluster_id == volcano
        assert "41 homes" in index.story(volcano or "").text


def test_removing_an_unknown_id_removes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(VOLCANO)
    before = snapshot(db)
    with StoryIndex.open(db) as index:
        with pytest.raises(DedupInputError, match=r"id 'zz' is not in the index .*\(nor are 1 "
                                                  "more\\); nothing was removed"):
            index.remove(["a1", "zz", "yy"])
        with pytest.raises(DedupInputError, match="id 5 is int, not a string"):
            index.remove(["a1", 5])  # type: ignore[list-item]
        with pytest.raises(TypeError, match=r"as remove\(\['a1'\]\)"):
            index.remove("a1")  # a review: its characters were taken for ids
    assert snapshot(db) == before


def test_cli_remove(tmp_path: Path) -> None:
    db = str(tmp_path / "i.db")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"id": "{a["id"]}", "text": "{a["text"]}"}}\n'
                           for a in VOLCANO + STRIKE))
    runner = CliRunner()
    assert runner.invoke(index_group, ["add", db, str(src)]).exit_code == 0
    done = runner.invoke(index_group, ["remove", db, "b1", "b2"])
    assert done.exit_code == 0, done.output
    assert "articles removed          2" in done.stderr
    assert "index articles            2" in done.stderr
    missing = runner.invoke(index_group, ["remove", db, "b1"])
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines() == [
        f"Error: id 'b1' is not in the index {db}; nothing was removed: check the ids"]
