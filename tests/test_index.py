"""StoryIndex: placement, persistence, crash safety, concurrency, expiry, errors and CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from dedup import cluster, score
from dedup.cli import index as index_group
from dedup.config import CandidateConfig, Config, IndexConfig
from dedup.index import RetiredClusterError, StoryIndex, StoryIndexError
from dedup.pipeline import DedupInputError
from tests.conftest import ECBPLUS, ROOT, SEED_IDS, SEEDS, read_seeds

KILAUEA_1 = (
    "Lava from the Kilauea volcano destroyed 40 homes in Puna on Hawaii's Big Island on "
    "Monday, officials said. Governor David Ige declared an emergency as the Leilani Estates "
    "subdivision was evacuated. Geologists at the Hawaiian Volcano Observatory warned of more "
    "fissures."
)
KILAUEA_2 = (
    "The Kilauea eruption on Hawaii's Big Island has now destroyed 40 homes in the Leilani "
    "Estates area of Puna. Governor David Ige signed an emergency proclamation. The Hawaiian "
    "Volcano Observatory said new fissures could open near Leilani Estates."
)
ROTTERDAM_1 = (
    "Striking dock workers shut the port of Rotterdam on Thursday, halting container traffic, "
    "the union FNV said. Port authority chief Allard Castelein said 300 ships were waiting at "
    "anchor in the North Sea. Talks with the Maasvlakte terminal operators resumed in the "
    "evening."
)
ROTTERDAM_2 = (
    "Container traffic at Rotterdam stopped as FNV union dock workers walked out, with 300 "
    "ships waiting in the North Sea, port authority chief Allard Castelein said. Maasvlakte "
    "terminal operators agreed to resume talks with the union."
)
VOLCANO = [
    {"id": "a1", "title": "Kilauea lava destroys 40 homes", "text": KILAUEA_1},
    {"id": "a2", "title": "Kilauea eruption destroys homes in Puna", "text": KILAUEA_2},
]
STRIKE = [
    {"id": "b1", "title": "Dock strike shuts Rotterdam port", "text": ROTTERDAM_1},
    {"id": "b2", "title": "Rotterdam dock workers strike", "text": ROTTERDAM_2},
]
# Reports both events, the volcano more fully: it matches both clusters.
BRIDGE = {
    "id": "x",
    "title": "Kilauea lava and Rotterdam strike",
    "text": KILAUEA_1 + " " + KILAUEA_2.split(". ")[0] + ". " + ROTTERDAM_1,
}


def seed_articles() -> list[dict[str, Any]]:
    return read_seeds()


def ecb_articles(ecbplus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": r["doc_id"], "title": r["title"], "text": r["text"]} for r in ecbplus]


def snapshot(path: Path) -> dict[str, Any]:
    """Every table's rows, to prove a failed call changed nothing."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in tables}


# --------------------------------------------------------------------------- placement


def test_seeds_one_at_a_time_share_a_cluster(tmp_path: Path) -> None:
    db = tmp_path / "feeds.db"
    first, second = seed_articles()
    with StoryIndex.open(db) as index:
        [a] = index.add([first])
        [b] = index.add([second])
        assert a.is_new_cluster and not b.is_new_cluster
        assert b.cluster_id == a.cluster_id and b.matched == (first["id"],)
        story = index.story(a.cluster_id)
        assert story.members == SEED_IDS
        assert any(d.kind == "number" and set(d.variants) >= {"143", "144"}
                   for d in story.differences)


def test_reopen_gives_the_same_placement(tmp_path: Path) -> None:
    db = tmp_path / "feeds.db"
    first, second = seed_articles()
    with StoryIndex.open(db) as index:
        [a] = index.add([first])
    with StoryIndex.open(db) as index:  # signatures and DF come back from disk
        [b] = index.add([second])
        assert b.cluster_id == a.cluster_id
        assert [i.cluster_id for i in index.clusters()] == [a.cluster_id]
    with StoryIndex.open(db, create=False) as index:
        assert index.story(a.cluster_id).members == SEED_IDS
        assert len(index) == 2


def test_bridging_article_joins_the_best_cluster_only(tmp_path: Path) -> None:
    # Alone with the strike cluster, the bridge article would join it...
    with StoryIndex.open(tmp_path / "strike.db") as index:
        index.add(STRIKE)
        [alone] = index.add([BRIDGE])
        assert not alone.is_new_cluster
    # ...but beside the volcano cluster, which it matches better, it joins that one only,
    # and the two existing clusters keep their ids and members.
    with StoryIndex.open(tmp_path / "both.db") as index:
        volcano = index.add(VOLCANO)[0].cluster_id
        strike = index.add(STRIKE)[0].cluster_id
        [bridge] = index.add([BRIDGE])
        assert bridge.cluster_id == volcano and bridge.similarity > alone.similarity
        assert set(bridge.matched) == {"a1", "a2"}
        assert {i.cluster_id: i.size for i in index.clusters()} == {volcano: 3, strike: 2}
        assert index.story(strike).members == ("b1", "b2")


def test_cluster_ids_survive_growth(tmp_path: Path) -> None:
    with StoryIndex.open(tmp_path / "i.db") as index:
        first = index.add(VOLCANO[:1])[0].cluster_id
        assert index.add(VOLCANO[1:])[0].cluster_id == first
        assert first == index.cluster_of("a1") == index.cluster_of("a2")
        assert index.cluster_of("nope") is None


def _check_ids(index: StoryIndex, before: dict[str, str], handed: set[str]) -> dict[str, str]:
    """The id rules after one add: every id handed out is live or retired (never both),
    a live id keeps at least one member it had, a merged id's live story holds one."""
    now = index.assignments()
    live = {i.cluster_id for i in index.clusters()}
    retired = {r.cluster_id: r for r in index.retired()}
    assert set(now.values()) == live and not live & set(retired)
    assert handed <= live | set(retired)
    for cid in set(before.values()):
        kept = {a for a, c in before.items() if c == cid}
        target = cid if cid in live else retired[cid].live
        assert target in live and any(now[a] == target for a in kept), cid
    return now


@pytest.mark.parametrize(("size", "vs_batch", "vs_gold"), [(1, 0.97, 0.88), (10, 0.95, 0.87)])
def test_agreement_with_batch_on_ecbplus(
    tmp_path: Path, ecbplus: list[dict[str, Any]], size: int, vs_batch: float, vs_gold: float
) -> None:
    """Articles added ``size`` at a time in file order, with the re-linkage (issue #6).

    Measured vs batch / vs gold: 0.987 / 0.902 one at a time, 0.972 / 0.894 ten at a time
    (greedy placement alone: 0.810 / 0.789 and 0.810 / 0.765; batch vs gold 0.911).
    Every add also keeps the id rules (``_check_ids``).
    """
    articles = ecb_articles(ecbplus)
    batch = cluster(articles, with_stories=False).assignments
    batch_of = dict(zip(batch["id"].to_list(), batch["cluster_id"].to_list(), strict=True))
    handed: set[str] = set()
    new_ids: list[str] = []
    with StoryIndex.open(tmp_path / "ecb.db") as index:
        before: dict[str, str] = {}
        for start in range(0, len(articles), size):
            placed = index.add(articles[start : start + size])
            handed.update(p.cluster_id for p in placed)
            new_ids.extend({p.cluster_id for p in placed if p.is_new_cluster})
            before = _check_ids(index, before, handed)
        final = index.assignments()
        assert len(index.retired()) > 0  # the re-linkage did merge stories on this corpus
    assert len(new_ids) == len(set(new_ids))  # an id is handed out as new only once
    ids = [a["id"] for a in articles]
    assert score([batch_of[i] for i in ids], [final[i] for i in ids]).ari >= vs_batch
    assert score([r["cluster"] for r in ecbplus], [final[i] for i in ids]).ari >= vs_gold


def test_greedy_placement_without_relink(tmp_path: Path) -> None:
    with StoryIndex.open(tmp_path / "i.db", index_config=IndexConfig(relink=False)) as index:
        lava, ige, full = _bridged(index)
        assert full.cluster_id == lava and not full.merged
        assert index.cluster_of("ige") == ige and index.retired() == []


# Two halves of one event, too different to link, and the full report that bridges them.
LAVA = {"id": "lava", "title": "Lava destroys homes in Puna",
        "text": "Lava from the Kilauea volcano destroyed 40 homes in Puna on Hawaii's Big "
                "Island on Monday, officials said."}
IGE = {"id": "ige", "title": "Ige declares emergency", "text": KILAUEA_1.split(". ", 1)[1]}
FULL = {"id": "full", "title": "Kilauea lava destroys 40 homes, Ige declares emergency",
        "text": KILAUEA_1}


def _bridged(index: StoryIndex) -> tuple[str, str, Any]:
    index.add(STRIKE)
    [lava] = index.add([LAVA])
    [ige] = index.add([IGE])
    assert lava.is_new_cluster and ige.is_new_cluster and lava.cluster_id != ige.cluster_id
    [full] = index.add([FULL])
    return lava.cluster_id, ige.cluster_id, full


def test_bridge_merges_two_stories_older_id_continues(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        time.sleep(0.01)
        mark = datetime.utcnow()
        time.sleep(0.01)
        lava, ige, full = _bridged(index)
        # The linkage joins both halves through the full report: the older id (lava's)
        # continues the story, ige's id is retired into it, and the add says so.
        assert full.cluster_id == lava and not full.is_new_cluster
        assert full.merged == (ige,) and set(full.matched) == {"lava", "ige"}
        assert index.cluster_of("ige") == lava
        assert index.story(lava).members == ("full", "ige", "lava")
        assert lava in {i.cluster_id for i in index.clusters(updated_since=mark)}
        assert ige not in {i.cluster_id for i in index.clusters()}
    with StoryIndex.open(db) as index:  # the retirement is on disk
        [gone] = index.retired(updated_since=mark)
        assert (gone.cluster_id, gone.merged_into, gone.live, gone.reason) == (
            ige, lava, lava, "merged")
        assert index.resolve(ige) == lava and index.resolve(lava) == lava
        assert index.resolve("c000000000000") is None
        with pytest.raises(RetiredClusterError, match=f"'{ige}'.*merged into '{lava}'") as err:
            index.story(ige)
        assert isinstance(err.value, KeyError) and err.value.live == lava
        assert index.story(ige, follow=True).cluster_id == lava
        # The strike story was never touched.
        assert index.story(index.cluster_of("b1") or "").members == ("b1", "b2")


def test_retired_ids_are_never_handed_out_again(tmp_path: Path) -> None:
    now = datetime(2024, 5, 10)
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        [b1, _] = index.add([dict(a, published=now - timedelta(days=10)) for a in STRIKE])
        index.add([dict(VOLCANO[0], published=now)])
        assert index.expire(older_than=timedelta(days=7), now=now) == 2
        [gone] = index.retired()
        assert (gone.cluster_id, gone.reason, gone.live) == (b1.cluster_id, "expired", None)
        with pytest.raises(KeyError, match="expired"):
            index.story(b1.cluster_id)
    with StoryIndex.open(db) as index:
        # The same article id again: its singleton id would be the expired one's.
        [again] = index.add([dict(STRIKE[0], published=now)])
        assert again.is_new_cluster and again.cluster_id != b1.cluster_id


def test_index_written_before_relink_still_opens(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(VOLCANO)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE retired")
        conn.execute("DROP TABLE edges")
    with StoryIndex.open(db) as index:
        assert index.retired() == []
        assert index.add(STRIKE)[0].is_new_cluster and len(index.clusters()) == 2
        assert index.add([FULL])[0].cluster_id == index.cluster_of("a1")


# --------------------------------------------------------------------------- stories


def test_stories_updated_since_and_eager_refresh(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db, index_config=IndexConfig(story_refresh="add")) as index:
        index.add(VOLCANO)
        assert index.stats()["stories_to_merge"] == 0  # merged inside the add
        time.sleep(0.01)
        mark = datetime.utcnow()
        time.sleep(0.01)
        strike = index.add(STRIKE)[0].cluster_id
        assert [s.cluster_id for s in index.stories(updated_since=mark)] == [strike]
        assert len(index.stories()) == 2
    with StoryIndex.open(db) as index:  # lazy: merged on first read, then cached
        index.add([{"id": "a3", "title": "Kilauea", "text": KILAUEA_2 + " More lava flowed."}])
        assert index.stats()["stories_to_merge"] == 1
        assert "a3" in index.story(index.cluster_of("a3") or "").members
        assert index.stats()["stories_to_merge"] == 0
        with pytest.raises(KeyError):
            index.story("c000000000000")


def test_expire_removes_old_articles_and_keeps_the_rest_correct(tmp_path: Path) -> None:
    now = datetime(2024, 5, 10)
    old = [dict(a, published=now - timedelta(days=10)) for a in VOLCANO[:1] + STRIKE]
    new = [dict(VOLCANO[1], published=now - timedelta(days=1))]
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(old + new)
        volcano = index.cluster_of("a2")
        assert index.expire(older_than=timedelta(days=7), now=now) == 3
        assert len(index) == 1 and index.existing(["a1", "b1", "b2", "a2"]) == {"a2"}
        assert [i.cluster_id for i in index.clusters()] == [volcano]  # empty strike cluster gone
        story = index.story(volcano or "")
        assert story.members == ("a2",) and "Leilani" in story.text
        # A new version of the volcano story still finds its cluster by the same id.
        again = index.add([dict(VOLCANO[0], id="a1-again", published=now)])
        assert again[0].cluster_id == volcano
        assert index.expire(older_than=timedelta(days=7), now=now) == 0
        assert index.expire(older_than=7, now=now) == 0  # a number is days
        assert index.expire(older_than=0.5, now=now) == 1  # a2, a day old
        with pytest.raises(TypeError, match="older_than='7d': pass a timedelta or a number"):
            index.expire(older_than="7d")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="must be zero or more"):
            index.expire(older_than=-1)
        index.add([dict(VOLCANO[1], published=now - timedelta(days=1))])
    # DF counts (in memory, and as counted again at load) equal those of an index built
    # from the survivors only.
    with StoryIndex.open(tmp_path / "fresh.db") as fresh:
        fresh.add([*new, dict(VOLCANO[0], id="a1-again", published=now)])
        expected = fresh._current_state().df.copy()
        assert fresh.stats()["terms"] == np.count_nonzero(expected) > 0
    with StoryIndex.open(db) as index:
        assert index.stats()["terms"] == np.count_nonzero(expected)
        assert np.array_equal(index._current_state().df, expected)


# --------------------------------------------------------------------------- errors


def test_bad_articles_raise_and_leave_the_index_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(VOLCANO)
        before = snapshot(db)
        bad_batches: list[tuple[list[dict[str, Any]], str]] = [
            ([*STRIKE, dict(STRIKE[0])], "duplicate id 'b1'"),
            ([*STRIKE, VOLCANO[0]], "already in the index"),
            ([{"id": "", "text": "x"}], "empty id"),
            ([{"text": "no id"}], "no 'id' column"),
            ([{"id": "t"}], "no 'text' column"),
        ]
        for batch, message in bad_batches:
            with pytest.raises(DedupInputError, match=message):
                index.add(batch)
            assert snapshot(db) == before
        assert index.add(STRIKE)[0].is_new_cluster  # still usable


def test_not_an_index(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("just some text, not a database\n" * 100)
    with pytest.raises(StoryIndexError, match="not a dedup story index"):
        StoryIndex.open(text)
    assert text.read_text().startswith("just some text")  # untouched
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoryIndexError, match="not a dedup story index"):
        StoryIndex.open(other)
    with pytest.raises(StoryIndexError, match="no such story index"):
        StoryIndex.open(tmp_path / "missing.db", create=False)


def test_version_mismatch(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    StoryIndex.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    with pytest.raises(StoryIndexError, match=r"format version 999.*reads version 2"):
        StoryIndex.open(db)


def test_version_1_file_is_upgraded_and_scores_the_same(tmp_path: Path) -> None:
    """Version 1 stored DF rows in a ``terms`` table; version 2 counts DF from the stored
    term ids. Opening a version 1 file drops the table, keeps its count, and places the
    next article as the same index never written to disk would."""
    db, fresh = tmp_path / "v1.db", tmp_path / "fresh.db"
    for path in (db, fresh):
        with StoryIndex.open(path) as index:
            index.add(STRIKE + VOLCANO[:1])
            terms = index.stats()["terms"]
            df = index._current_state().df
    with sqlite3.connect(db) as conn:  # as version 1 wrote it
        conn.execute("CREATE TABLE terms (id INTEGER PRIMARY KEY, df INTEGER NOT NULL)")
        ids = np.flatnonzero(df)
        conn.executemany("INSERT INTO terms VALUES (?, ?)",
                         zip(ids.tolist(), df[ids].tolist(), strict=True))
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
        conn.execute("DELETE FROM meta WHERE key = 'terms'")
    with StoryIndex.open(db) as index, StoryIndex.open(fresh) as other:
        assert index.stats()["terms"] == terms and index.stats()["format_version"] == 2
        assert index.add(VOLCANO[1:]) == other.add(VOLCANO[1:])
    tables = snapshot(db)
    assert "terms" not in tables
    assert ("'format_version'", "'2'") in {tuple(r.strip("()").split(", ")[:2])
                                           for r in tables["meta"]}


def test_closed_index_fails_clearly(tmp_path: Path) -> None:
    index = StoryIndex.open(tmp_path / "i.db")
    index.close()
    index.close()
    with pytest.raises(StoryIndexError, match="closed"):
        index.add(VOLCANO)


# --------------------------------------------------------------------------- processes

_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from dedup.index import StoryIndex
    db, data, first, batch, kill_at = sys.argv[1:6]
    rows = [json.loads(line) for line in open(data, encoding="utf-8")]
    arts = [{"id": r["doc_id"], "title": r["title"], "text": r["text"]} for r in rows]
    first, batch, kill_at = int(first), int(batch), int(kill_at)
    def progress(stage, done, total):
        if done == kill_at:
            print("inside", flush=True)
            time.sleep(60)
    with StoryIndex.open(db) as index:
        index.add(arts[:first])
        print("committed", flush=True)
        for start in range(first, len(arts), batch):
            index.add(arts[start:start + batch], progress=progress)
    print("done", flush=True)
    """
)


def _writer(db: Path, first: int, batch: int, kill_at: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), str(ECBPLUS), str(first), str(batch),
         str(kill_at)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


def test_killed_writer_leaves_the_last_commit(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    proc = _writer(db, first=30, batch=400, kill_at=200)  # 200 rows written, uncommitted
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "committed"
    assert proc.stdout.readline().strip() == "inside"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with StoryIndex.open(db) as index:
        assert len(index) == 30
        assert index.stats()["articles"] == 30
        assert sum(i.size for i in index.clusters()) == 30
        index.add(VOLCANO)  # the index is healthy and writable
        assert len(index) == 32


def test_reader_and_writer_processes(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    StoryIndex.open(db).close()
    proc = _writer(db, first=10, batch=10, kill_at=-1)
    reads = 0
    seen = 0
    with StoryIndex.open(db, create=False) as reader:
        while proc.poll() is None:
            infos = reader.clusters()
            stats = reader.stats()
            assert stats["articles"] >= seen  # committed batches only ever grow
            seen = stats["articles"]
            if infos:
                story = reader.story(infos[-1].cluster_id, follow=True)  # may be merged since
                assert story.members
            reads += 1
    assert proc.returncode == 0
    assert reads > 3
    with StoryIndex.open(db) as index:
        assert len(index) == 509


# --------------------------------------------------------------------------- CLI


def _run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(index_group, list(args), input=stdin)


def test_cli_add_stories_stats(tmp_path: Path) -> None:
    db = str(tmp_path / "feeds.db")
    result = _run("add", db, str(SEEDS))
    assert result.exit_code == 0, result.output
    assert "articles added" in result.stderr
    data = "".join(json.dumps(a) + "\n" for a in VOLCANO)
    result = _run("add", db, "-", stdin=data)
    assert result.exit_code == 0, result.output
    result = _run("stories", db, "--format", "json")
    assert result.exit_code == 0, result.output
    stories = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(tuple(s["members"]) for s in stories) == sorted([("a1", "a2"), SEED_IDS])
    assert all("updated_at" in s and "differences" in s for s in stories)
    future = (datetime.utcnow() + timedelta(hours=1)).isoformat()
    result = _run("stories", db, "--since", future, "--format", "json")
    assert result.exit_code == 0 and result.stdout == ""
    # --since reads dates as the inputs' are read: RFC 2822 too.
    rss = (datetime.utcnow() + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert _run("stories", db, "--since", rss, "--format", "json").stdout == ""
    assert _run("stories", db, "--since", "Mon, 01 Jan 2024 00:00:00 GMT", "--format",
                "json").stdout.count("updated_at") == 2
    result = _run("stories", db)
    assert result.exit_code == 0 and "Kilauea" in result.stdout
    result = _run("stats", db)
    assert result.exit_code == 0, result.output
    assert "articles" in result.stdout and " 4" in result.stdout


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "feeds.db")
    assert _run("add", db, str(SEEDS)).exit_code == 0
    cases = [
        ("add", db, str(SEEDS)),  # ids already in the index
        ("add", db, str(tmp_path / "missing.jsonl")),
        ("stories", str(tmp_path / "nope.db")),
        ("stories", db, "--since", "yesterday"),
    ]
    notes = tmp_path / "notes.txt"
    notes.write_text("not an index")
    cases.append(("stats", str(notes)))
    for args in cases:
        result = _run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # Known ids: the error names the input and counts the others (a trial read "1 of this
    # batch are", without the file).
    known = _run("add", db, str(SEEDS)).stderr
    assert known.startswith(f"Error: {SEEDS}: duplicate id ")
    assert "(as is 1 more of this batch)" in known
    skipped = _run("add", db, str(SEEDS), "--skip-bad-rows")
    assert skipped.exit_code == 0 and "rejected               2" in skipped.stderr


def test_cli_retired(tmp_path: Path) -> None:
    db = tmp_path / "feeds.db"
    with StoryIndex.open(db) as index:
        lava, ige, _ = _bridged(index)
    result = _run("retired", str(db))
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["cluster_id"], record["merged_into"], record["live"]) == (ige, lava, lava)
    future = (datetime.utcnow() + timedelta(hours=1)).isoformat()
    assert _run("retired", str(db), "--since", future).stdout == ""


def test_cli_expire(tmp_path: Path) -> None:
    db = str(tmp_path / "feeds.db")
    old = [dict(a, published="2001-01-01") for a in VOLCANO]
    _run("add", db, "-", stdin="".join(json.dumps(a) + "\n" for a in old + STRIKE))
    result = _run("expire", db, "--older-than", "7d")
    assert result.exit_code == 0, result.output
    huge = _run("expire", db, "--older-than", "99999999999d")
    assert huge.exit_code == 2 and "longer than any date" in huge.stderr, huge.output
    with StoryIndex.open(db) as index:
        assert index.existing(["a1", "a2", "b1", "b2"]) == {"b1", "b2"}


def test_index_refuses_a_split_depth_its_band_storage_cannot_hold(tmp_path: Path) -> None:
    """Crowded buckets are split as the batch splits them, two levels at most (#19): a
    deeper ``events_split_depth`` is one line naming the setting, at open."""
    config = Config(candidates=CandidateConfig(events_split_depth=3))
    with pytest.raises(StoryIndexError, match="events_split_depth to at most 2"):
        StoryIndex.open(tmp_path / "i.db", config)


def test_reads_take_an_iso_string_for_updated_since(tmp_path: Path) -> None:
    index = StoryIndex(tmp_path / "ix.db")
    index.add(read_seeds())
    assert len(index.stories(updated_since="2020-01-01")) == 1
    assert index.stories(updated_since="2999-01-01T00:00:00Z") == []
    with pytest.raises(ValueError, match="updated_since 'soon': use a datetime or ISO 8601"):
        index.clusters(updated_since="soon")


def test_index_add_writes_the_rows_it_left_out(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "Storm hits the city"}\n{"id": 5, "text": "x"}\n')
    db, left = tmp_path / "i.db", tmp_path / "left.jsonl"
    args = ["index", "add", str(db), str(src), "--skip-bad-rows", "--rejected", str(left)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert [(r["line"], r["id"]) for r in map(json.loads, left.open())] == [(2, None)]
    assert CliRunner().invoke(main, args).exit_code == 0  # again: "a" is known now
    assert [(r["line"], r["id"], r["reason"]) for r in map(json.loads, left.open())][1] == (
        None, "a", f"already in {db}")


def test_index_stories_writes_html_to_a_file_and_nothing_when_none_changed(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup.cli import main

    db, page = str(tmp_path / "i.db"), tmp_path / "page.html"
    assert CliRunner().invoke(main, ["index", "add", db, str(SEEDS)]).exit_code == 0
    result = CliRunner().invoke(main, ["index", "stories", db, "--format", "html", "-o",
                                       str(page)])
    assert result.exit_code == 0 and result.stdout == ""
    assert page.read_text().startswith("<!DOCTYPE html>") and "143" in page.read_text()
    later = CliRunner().invoke(main, ["index", "stories", db, "--since", "2999-01-01"])
    assert later.exit_code == 0 and later.stdout == ""


def test_an_unwritable_rejected_file_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup.cli import main

    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "left.jsonl"  # its folder is a file
    db = tmp_path / "i.db"
    result = CliRunner().invoke(main, ["index", "add", str(db), str(SEEDS),
                                       "--skip-bad-rows", "--rejected", str(target)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {target}: cannot write there (")
    assert not db.exists()  # refused before the add: no articles added without their record
    fresh = tmp_path / "new" / "dir" / "left.jsonl"  # a missing folder is made, as -o's is
    result = CliRunner().invoke(main, ["index", "add", str(db), str(SEEDS),
                                       "--skip-bad-rows", "--rejected", str(fresh)])
    assert result.exit_code == 0, result.output
    assert fresh.read_text() == ""


def test_the_rejected_file_may_not_be_an_input_or_the_index(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dedup.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "Storm hits the city"}\n{"id": "a", "text": "x"}\n')
    db = tmp_path / "i.db"
    for target, says in ((src, "is an input"), (db, "is the DB file")):
        result = CliRunner().invoke(main, ["index", "add", str(db), str(src),
                                           "--skip-bad-rows", "--rejected", str(target)])
        assert result.exit_code == 2 and says in result.stderr, result.output
    assert src.read_text().count("Storm") == 1 and not db.exists()


def test_an_index_it_may_not_write_is_not_called_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "i.db"
    with StoryIndex.open(db) as index:
        index.add(VOLCANO)

    class ReadOnly:  # what SQLite says in a read-only folder (WAL needs its -shm file)
        def execute(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("unable to open database file")

        def close(self) -> None:
            pass

    monkeypatch.setattr("dedup.index.store.sqlite3.connect", lambda *a, **k: ReadOnly())
    with pytest.raises(StoryIndexError, match=r"i\.db: cannot open it for writing .* an index "
                       "needs write access to its file and its folder"):
        StoryIndex.open(db)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all")
    with pytest.raises(StoryIndexError, match="not a dedup story index, or a damaged one"):
        StoryIndex.open(tmp_path / "junk.db")


def _ecb_feeds(ecbplus: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """ecbplus-dev rows 0-54, then 55-114: the second add's re-linkage retires five stored
    ids, four of them into stories none of its articles joins (found by a new-user trial)."""
    articles = ecb_articles(ecbplus)
    return articles[:55], articles[55:115]


def test_add_reports_every_id_it_retires(tmp_path: Path, ecbplus: list[dict[str, Any]]) -> None:
    first, second = _ecb_feeds(ecbplus)
    with StoryIndex.open(tmp_path / "i.db") as index:
        before = index.add(first)
        assert before.retired == () and index.retired() == []
        live = {i.cluster_id for i in index.clusters()}
        time.sleep(0.01)
        mark = datetime.utcnow()
        added = index.add(second)
        assert isinstance(added, list) and len(added) == len(second)  # still a list
        # Exactly what the index records for this add, each id once, in its order.
        assert list(added.retired) == index.retired(updated_since=mark)
        gone = [r.cluster_id for r in added.retired]
        assert gone == sorted(set(gone)) and len(gone) == 5 and set(gone) <= live
        assert all(r.reason == "merged" and r.live == r.merged_into for r in added.retired)
        # Some merged into stories no new article joined: no placement can say so.
        on_placements = {m for p in added for m in p.merged}
        assert on_placements < set(gone)


def test_cli_add_counts_every_id_it_retires(tmp_path: Path,
                                            ecbplus: list[dict[str, Any]]) -> None:
    first, second = _ecb_feeds(ecbplus)
    db = str(tmp_path / "feeds.db")
    counts = []
    for n, feed in enumerate((first, second)):
        path = tmp_path / f"feed{n}.jsonl"
        path.write_text("".join(json.dumps(a) + "\n" for a in feed))
        result = _run("add", db, str(path))
        assert result.exit_code == 0, result.output
        counts.append(int(next(line.split()[-1] for line in result.stderr.splitlines()
                                if line.strip().startswith("merged ids"))))
    retired = _run("retired", db).stdout.splitlines()
    assert counts == [0, len(retired)] and len(retired) == 5
