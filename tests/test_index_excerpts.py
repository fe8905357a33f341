"""StoryIndex runs the excerpt rule as the batch does (#19): ties on add, regroup on
re-linkage, through ``dedup.excerpts``'s own functions."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.excerpts_tail import corpus
from dedup import excerpts, pipeline
from dedup.config import Config, IndexConfig
from dedup.index import StoryIndex
from tests.test_excerpts import _lede_corpus


def _partition(cluster_of: dict[str, str]) -> list[list[str]]:
    """Clusters as sorted lists of ids (cluster ids differ between batch and index)."""
    groups: dict[str, list[str]] = {}
    for article_id, cid in cluster_of.items():
        groups.setdefault(cid, []).append(article_id)
    return sorted(sorted(g) for g in groups.values())


def _batch(articles: list[dict[str, Any]], config: Config | None = None) -> list[list[str]]:
    result = pipeline.cluster(articles, config, with_stories=False)
    return _partition(dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                               strict=True)))


def _indexed(path: Path, articles: Sequence[dict[str, Any]], size: int,
             config: Config | None = None) -> list[list[str]]:
    with StoryIndex.open(path, config) as index:
        for start in range(0, len(articles), size):
            index.add(articles[start : start + size])
        return _partition(index.assignments())


def _off() -> Config:
    return dataclasses.replace(Config(), clustering=dataclasses.replace(
        Config().clustering, excerpt_max_tokens=0))


@pytest.mark.parametrize("size", [1, 3])
def test_the_lede_corpus_clusters_as_in_the_batch(tmp_path: Path, size: int) -> None:
    articles = _lede_corpus()
    want = _batch(articles)
    assert ["full", "lede", "other"] in want  # the lede joins its story; the late one not
    assert _indexed(tmp_path / "on.db", articles, size) == want
    # Off in both: the lede stays alone, and the index stores no openings.
    assert _indexed(tmp_path / "off.db", articles, size, _off()) == _batch(articles, _off())
    assert ["lede"] in _batch(articles, _off())
    with sqlite3.connect(tmp_path / "off.db") as conn:
        assert conn.execute("SELECT count(*) FROM openings").fetchone()[0] == 0


@pytest.mark.parametrize("order", [("lede", "late-lede", "other", "full"),
                                   ("full", "other", "late-lede", "lede")])
def test_a_teaser_joins_its_story_arriving_before_or_after_it(
        tmp_path: Path, order: tuple[str, ...]) -> None:
    by_id = {a["id"]: a for a in _lede_corpus()}
    found = _indexed(tmp_path / "i.db", [by_id[i] for i in order], 1)
    assert found == [["full", "lede", "other"], ["late-lede"]]


def test_teasers_stored_before_their_story_are_tied_to_it(tmp_path: Path) -> None:
    # Thirty teasers first, then the story: only the story's look-up of the stored
    # excerpts with its opening ties them to it (the lede above also scores an edge).
    articles = corpus(30)
    articles = articles[2:] + articles[:2]
    assert _indexed(tmp_path / "i.db", articles, 10) == _batch(articles)
    assert len(_batch(articles)) == 1


def test_an_index_written_before_openings_were_stored_computes_them(tmp_path: Path) -> None:
    articles = {a["id"]: a for a in _lede_corpus()}
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    copy = dict(articles["other"], id="other-copy")  # not first of its copies: not looked up
    for path in (old, fresh):
        with StoryIndex.open(path) as index:
            index.add([articles["full"], articles["other"], copy])
    with sqlite3.connect(old) as conn:  # as a file written before #19
        conn.execute("DROP TABLE openings")
        conn.execute("DELETE FROM meta WHERE key = 'openings'")
    with StoryIndex.open(old) as index:
        placed = index.add([articles["lede"]])[0]
        assert placed.cluster_id == index.cluster_of("full")
    tables = []
    for path in (old, fresh):
        with sqlite3.connect(path) as conn:
            tables.append(conn.execute("SELECT * FROM openings WHERE row < 4").fetchall())
    assert tables[0] == tables[1] and [r[3] for r in tables[0]] == [1, 1, 0]
    # Other excerpt settings: computed again under them, once.
    shorter = dataclasses.replace(Config(), clustering=dataclasses.replace(
        Config().clustering, excerpt_opening_tokens=5))
    with StoryIndex.open(old, shorter) as index:
        index.add([articles["late-lede"]])
    with sqlite3.connect(old) as conn:
        keys = dict(conn.execute("SELECT row, key FROM openings").fetchall())
        assert conn.execute("SELECT value FROM meta WHERE key = 'openings'").fetchone() == (
            "60 5",)
    assert keys[1] != tables[0][0][1] and len(keys) == 5


def test_expired_rows_leave_the_openings(tmp_path: Path) -> None:
    now = datetime(2024, 4, 1)
    articles = [dict(a, published=now - timedelta(days=30 if a["id"] == "late-lede" else 1))
                for a in _lede_corpus()]
    with StoryIndex.open(tmp_path / "i.db") as index:
        index.add(articles)
        assert index.expire(timedelta(days=7), now=now) == 1
        rows = {r for (r,) in index.conn.execute("SELECT row FROM openings")}
        live = {r for (r,) in index.conn.execute("SELECT row FROM articles")}
    assert rows == live and len(rows) == 3


def test_hundreds_of_teasers_end_in_their_story_as_in_the_batch(tmp_path: Path) -> None:
    # ``benchmarks.index_tail``'s story at 200 teasers: one cluster in the batch; the index
    # kept the teasers apart before (#19).
    articles = corpus(200)
    want = _batch(articles)
    assert len(want) == 1
    assert _indexed(tmp_path / "i.db", articles, 100) == want


def test_a_stored_excerpt_takes_a_few_ties_in_all(tmp_path: Path) -> None:
    # A teaser, then six versions of its story one by one: only the first
    # ``EDGES_PER_EXCERPT`` tie it (scored edges kept out by the edge threshold).
    by_id = {a["id"]: a for a in _lede_corpus()}
    versions = [dict(by_id["full"], id=f"v{k}", text=by_id["full"]["text"] + " "
                     + " ".join(f"fact{k}x{i}" for i in range(80)))  # not copies
                for k in range(6)]
    strict = IndexConfig(relink_edge_threshold=0.13)
    for name, adds in (("one-by-one", [[v] for v in versions]),
                       ("then five at once", [versions[:1], versions[1:]])):
        with StoryIndex.open(tmp_path / f"{name}.db", index_config=strict) as index:
            for batch in [[by_id["lede"]], *adds]:
                index.add(batch)
            ties = index.conn.execute("SELECT a FROM edges WHERE b = 1 ORDER BY a").fetchall()
            assert [a for (a,) in ties] == [2, 3, 4, 5][:excerpts.EDGES_PER_EXCERPT], name
            assert len({index.cluster_of(a["id"]) for a in [by_id["lede"], *versions]}) == 1
