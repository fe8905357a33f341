"""Copy groups (#18): syndicated copies collapse to one node that carries its members."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dedup import copies, normalize, pipeline, refine, signatures
from dedup.config import Config, IndexConfig, StoryRefresh
from dedup.index import StoryIndex
from dedup.merge import story_from_dict, story_to_dict
from tests.conftest import read_seeds


def _inputs(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cfg = Config().signatures
    toks = [normalize.tokens(" ".join(normalize.strip_boilerplate(normalize.clean_text(t))))
            for t in texts]
    sets = signatures.copy_shingles(toks, cfg, signatures.TokenHasher())
    sigs = signatures.MinHasher(cfg.num_perm, cfg.seed).signatures(sets)
    present = np.array([len(s) > 0 for s in sets], dtype=bool)
    return copies.signature_keys(sigs), sigs, present


def copies_600() -> list[dict[str, Any]]:
    """300 verbatim copies of each seed: one event, as a wire story syndicated widely."""
    return [{"id": f"{s['id']}-{k:03d}", "title": s["title"], "text": s["text"]}
            for s in read_seeds() for k in range(300)]


def test_a_copy_wrapped_in_furniture_and_wire_credits_is_a_copy() -> None:
    # A new-user trial: the credit line made a syndicated copy its own copy group.
    seed_a = read_seeds()[0]["text"]
    wrapped = ("Share this article\n" + seed_a + "\nReporting by Marco Aquino in Lima; "
               "Editing by Jane Doe\nTags: World, Americas")
    keys, _, present = _inputs([seed_a, wrapped])
    assert copies.copy_groups(keys, present).group.tolist() == [0, 0]


def test_exact_and_near_copies_group_under_their_lowest_row() -> None:
    seed_a, seed_b = (s["text"] for s in read_seeds())
    words = seed_a.split()
    edited = " ".join([*words[:-3], "and", "then", "some"])  # a light edit at the end
    texts = [seed_b, seed_a, "", seed_a + "\nShare.\nExit mobile version", edited, "",
             seed_b.replace("\n", " \n ")]
    keys, sigs, present = _inputs(texts)
    exact = copies.copy_groups(keys, present)
    assert exact.group.tolist() == [0, 1, 2, 1, 4, 5, 0]  # empty texts are no one's copies
    near = copies.copy_groups(keys, present, sigs, threshold=0.8)
    assert near.group.tolist() == [0, 1, 2, 1, 1, 5, 0]
    assert near.representatives.tolist() == [0, 1, 2, 5]
    assert near.sizes[[0, 1, 2, 5]].tolist() == [2, 3, 1, 1] and near.collapsed == 3
    strict = copies.copy_groups(keys, present, sigs, threshold=0.97)
    assert strict.group.tolist() == exact.group.tolist()


def test_expand_gives_every_member_its_representatives_cluster() -> None:
    groups = copies.CopyGroups(np.array([0, 1, 0, 3, 1, 0]))
    linked = [(np.array([0, 3]), np.array([0.5, 0.7])), (np.array([1]), np.ones(1))]
    out = copies.expand(linked, groups)
    assert [rows.tolist() for rows, _ in out] == [[0, 2, 3, 5], [1, 4]]
    assert out[0][1].tolist() == [0.5, 0.5, 0.7, 0.5] and out[1][1].tolist() == [1.0, 1.0]


def test_600_copies_are_one_cluster_linked_over_representatives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batch: one cluster, and linkage never builds a block over the copies (bounded)."""
    asked: list[int] = []
    block = refine.block_similarity

    def recording(features: refine.Features, rows: np.ndarray) -> np.ndarray:
        asked.append(len(rows))
        return block(features, rows)

    monkeypatch.setattr(refine, "block_similarity", recording)
    articles = copies_600()
    result = pipeline.cluster(articles, with_stories=False)
    assert len(result.clusters) == 1 and result.clusters[0].size == 600
    assert result.assignments["id"].to_list() == [a["id"] for a in articles]
    assert result.stats["copies_collapsed"] == 598
    assert asked and max(asked) == 2  # the two seeds' representatives, not 600 rows


@pytest.mark.parametrize("per_add", [1, 100])
def test_600_copies_are_one_cluster_in_the_index(tmp_path: Path, per_add: int) -> None:
    """StoryIndex: one cluster at any batch size. One article per add re-links the growing
    cluster each time, so that case runs 2 x 40 copies under a copies bucket cap of 20
    (crowded buckets all the same) to stay fast."""
    articles, config = copies_600(), Config()
    if per_add == 1:
        articles = [a for a in articles if int(a["id"].rsplit("-", 1)[1]) < 40]
        config = dataclasses.replace(config, candidates=dataclasses.replace(
            config.candidates, copies_max_bucket_size=20))
    with StoryIndex.open(tmp_path / "i.db", config=config) as index:
        for start in range(0, len(articles), per_add):
            index.add(articles[start : start + per_add])
        assert len(set(index.assignments().values())) == 1
        assert len(index.assignments()) == len(articles)


def test_index_counts_exact_copies_once_in_df_across_expiry(tmp_path: Path) -> None:
    """DF counts one row per copies signature; expiring that row hands its count to the
    next copy, so the live state equals a reopened one (which counts from scratch)."""
    seed = read_seeds()[0]
    day = datetime(2024, 5, 1)
    articles = [{"id": f"c{k}", "title": seed["title"], "text": seed["text"],
                 "published": day + timedelta(days=k)} for k in range(3)]
    path = tmp_path / "i.db"
    with StoryIndex.open(path) as index:
        index.add(articles[:1])
        once = index._current_state().df.copy()
        index.add(articles[1:])
        assert np.array_equal(index._current_state().df, once)  # copies add nothing
        assert index.expire(older_than=timedelta(days=1), now=day + timedelta(days=2)) == 1
        live = index._current_state()
        assert np.array_equal(live.df, once) and live.distinct == 1
    with StoryIndex.open(path) as index:
        assert np.array_equal(index._current_state().df, once)


def test_story_merges_each_distinct_version_once_with_its_copies() -> None:
    """The 600 copies' story cites the two seeds' versions once each, with 299 copies each,
    and lists all 600 members; the JSON round trip keeps the copies."""
    result = pipeline.cluster(copies_600())
    (story,) = result.stories
    assert len(story.members) == 600
    seeds = sorted(f"{s['id']}-000" for s in read_seeds())
    assert sorted(story.copies) == seeds
    assert [len(ids) for ids in story.copies.values()] == [299, 299]
    assert sorted({i for s in story.sentences for i in s.sources}) == seeds
    assert story_from_dict(story_to_dict(story)) == story


@pytest.mark.parametrize("story_refresh", ["read", "add"])
def test_index_story_carries_copies_as_the_batch_story_does(tmp_path: Path,
                                                            story_refresh: StoryRefresh) -> None:
    """``StoryIndex.story`` merges each distinct version once and lists its copies, the
    same story (cluster id aside) as ``dedup.cluster`` writes for the same articles."""
    articles = [a for a in copies_600() if int(a["id"].rsplit("-", 1)[1]) < 50]
    articles.append({"id": "empty-1", "title": "", "text": ""})  # no signature: no copies
    articles.append({"id": "empty-2", "title": "", "text": ""})
    (batch,) = [s for s in pipeline.cluster(articles).stories if len(s.members) == 100]
    config = dataclasses.replace(Config(), index=IndexConfig(story_refresh=story_refresh))
    with StoryIndex.open(tmp_path / "i.db", config) as index:
        for start in range(0, len(articles), 40):
            index.add(articles[start : start + 40])
        ours = index.story(index.cluster_of(articles[0]["id"]) or "")
        empty = index.story(index.cluster_of("empty-2") or "")
    seeds = sorted(f"{s['id']}-000" for s in read_seeds())
    assert sorted(ours.copies) == seeds and [len(c) for c in ours.copies.values()] == [49, 49]
    assert len(ours.members) == 100 and not empty.copies
    assert dataclasses.replace(ours, cluster_id=batch.cluster_id) == batch


def dated_copies() -> tuple[list[dict[str, Any]], str]:
    """Each seed and five copies of it, each under its own outlet line (stripped, so the
    copies are exact), dated out of row order; and the id of seed 004's earliest copy."""
    out = []
    when = datetime(2024, 3, 20)
    for seed in read_seeds():
        out.append({**seed, "published": when + timedelta(days=5)})
        for k in range(5):
            out.append({**seed, "id": f"{seed['id']}-copy{k}", "text": seed["text"] + "\nShare.",
                        "published": when + timedelta(hours=(7 * k) % 5)})
    return out, f"{read_seeds()[1]['id']}-copy0"


def test_the_story_quotes_the_earliest_copy_in_any_input_order(tmp_path: Path) -> None:
    # Hour offsets 0, 2, 4, 1, 3: copy0 is the earliest of each seed's copies. The base and
    # every id the story cites must not depend on which copy comes first in the input.
    articles, earliest = dated_copies()
    stories = []
    for order in (articles, articles[::-1], articles[3:] + articles[:3]):
        story = pipeline.cluster(order).stories[0]
        stories.append(story_to_dict(story))
        assert earliest in story.copies or story.base == earliest
        assert {s for ids in story.copies.values() for s in ids} >= {
            f"{read_seeds()[1]['id']}-copy{k}" for k in range(1, 5)}
    assert stories[0] == stories[1] == stories[2]
    index = StoryIndex(tmp_path / "ix.db")
    index.add(articles[::-1])
    in_index = story_to_dict(index.stories()[0])
    assert {**in_index, "cluster_id": ""} == {**stories[0], "cluster_id": ""}  # ids: own rule


def test_copies_within_one_second_elect_the_same_version_in_batch_and_index(
        tmp_path: Path) -> None:
    # Days are whole seconds in every engine: a tie within the second goes to the smaller id.
    seed = read_seeds()[0]
    when = datetime(2024, 3, 22, 12, 0, 0)
    articles = [{**seed, "id": "a", "published": when + timedelta(microseconds=700_000)},
                {**seed, "id": "b", "title": seed["title"] + " (wire)",
                 "published": when + timedelta(microseconds=200_000)}]
    batch = pipeline.cluster(articles).stories[0]
    index = StoryIndex(tmp_path / "ix.db")
    index.add(articles)
    assert (index.stories()[0].base, index.stories()[0].copies) == (batch.base, batch.copies)
    assert batch.copies == {"a": ("b",)}
