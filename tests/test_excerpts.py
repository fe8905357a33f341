"""Excerpts join their story, and a wire story's lines are not one site's furniture (#18)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from dedup import excerpts, normalize, pipeline
from dedup.config import ClusterConfig, Config, NormalizeConfig
from tests.conftest import read_seeds

WORDS = [f"w{i}" for i in range(100)]


def _openings(token_lists: list[list[str]], days: list[float] | None = None
              ) -> excerpts.Openings:
    found = excerpts.Openings.of(token_lists, ClusterConfig())
    return found if days is None else found.dated(np.array(days))


def test_a_short_article_joins_the_group_most_of_its_openers_are_in() -> None:
    long_a, long_b = WORDS[:80], WORDS[:10] + WORDS[40:]  # both open with w0..w9
    short, other = WORDS[:20], WORDS[30:45]
    openings = _openings([long_a, long_a, long_b, short, short, other, long_a])
    # Openers (long, opening w0..w9): rows 0, 1 in group 0, row 2 in 1, row 6 in 4.
    # Group 0 holds 2 of 4: not more than half, so the short rows 3 and 4 stay.
    groups = [np.array([0, 1]), np.array([2]), np.array([3, 4]), np.array([5]), np.array([6])]
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == _as_lists(groups)
    groups = [np.array([0, 1, 6]), np.array([2]), np.array([3, 4]), np.array([5])]
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == [[0, 1, 3, 4, 6], [2], [5]]
    alone = [np.array([0]), np.array([1]), np.array([2]), np.array([3, 4]), np.array([5]),
             np.array([6])]
    assert _as_lists(excerpts.regroup(alone, openings, 2.0)) == _as_lists(alone)


def _as_lists(groups: list[np.ndarray]) -> list[list[int]]:
    return [g.tolist() for g in groups]


def test_no_group_grows_past_the_limit() -> None:
    long_a, short = WORDS[:80], WORDS[:20]
    openings = _openings([long_a, short, short, short])
    groups = [np.array([0]), np.array([1, 2, 3])]
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == [[0, 1, 2, 3]]
    assert _as_lists(excerpts.regroup(groups, openings, 2.0, limit=3)) == [[0, 1, 2], [3]]


def test_the_date_window_and_length_decide_who_moves() -> None:
    long_a, short = WORDS[:80], WORDS[:20]
    openings = _openings([long_a, long_a, short, short, long_a[:61]],
                         [100.0, 100.5, 101.0, 110.0, 100.0])
    groups = [np.array([0, 1]), np.array([2]), np.array([3]), np.array([4])]
    # 2 is a day away: joins; 3 is ten days away: stays; 4 has 61 tokens: not an excerpt
    # (60 at most), though it opens the same way.
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == [[0, 1, 2], [3], [4]]
    mixed = [np.array([0, 1]), np.array([2, 4]), np.array([3])]  # 2 is with a long article
    assert _as_lists(excerpts.regroup(mixed, openings, 2.0)) == _as_lists(mixed)


def test_a_copy_group_spans_its_members_days() -> None:
    long_a, short = WORDS[:80], WORDS[:20]
    openings = _openings([long_a, short, short], [100.0, 130.0, 101.0])
    group = np.array([0, 1, 1])  # rows 1 and 2 are one text: row 1 stands for both
    spanned = openings.dated(np.array([100.0, 130.0, 101.0]), group)
    assert (spanned.first[1], spanned.last[1]) == (101.0, 130.0)
    groups = [np.array([0]), np.array([1])]
    assert _as_lists(excerpts.regroup(groups, spanned, 2.0)) == [[0, 1]]
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == [[0], [1]]  # row 1 alone
    assert excerpts.edges(spanned, np.array([True, True, False]), 2.0).tolist() == [[1, 0]]


def test_edges_tie_each_excerpt_to_a_few_openers_within_the_window() -> None:
    long_a, short = WORDS[:80], WORDS[:20]
    token_lists = [short] + [long_a] * 6 + [short, short]
    days = [100.0] + [100.0] * 5 + [120.0] + [float("nan"), 100.0]
    eligible = np.ones(9, dtype=bool)
    eligible[8] = False  # a copy, represented by another row
    found = excerpts.edges(_openings(token_lists, days), eligible, 2.0)
    by_excerpt = {e: sorted(found[found[:, 0] == e, 1].tolist()) for e in (0, 7, 8)}
    n = excerpts.EDGES_PER_EXCERPT
    assert by_excerpt[0] == [1, 2, 3, 4, 5][:n]  # row 6 is twenty days later
    assert by_excerpt[7] == [1, 2, 3, 4, 5, 6][:n]  # undated: any date is near
    assert by_excerpt[8] == []  # not eligible
    assert not ((found[:, 1] == 0) | (found[:, 1] == 7)).any()  # excerpts tie to long ones
    sizes = np.array([1, 1, 1, 1, 1, 9, 1, 1, 1])  # row 5 stands for nine copies
    found = excerpts.edges(_openings(token_lists, days), eligible, 2.0, sizes)
    assert found[found[:, 0] == 0, 1].tolist() == [5, 1, 2, 3][:n]  # the wire story first


def _lede_corpus() -> list[dict[str, Any]]:
    """Both seeds, and a breaking-news teaser: seed 000's headline and a promo line whose
    words no other article has, so nothing but its opening ties it to the story."""
    full, other = read_seeds()
    when = datetime(2024, 3, 23)
    teaser = full["title"] + ". " + " ".join(f"promo{i}" for i in range(40))
    return [
        {"id": "full", "title": full["title"], "text": full["text"], "published": when},
        {"id": "other", "title": other["title"], "text": other["text"], "published": when},
        {"id": "lede", "title": "", "text": teaser, "published": when},
        # Not a copy of the teaser (copies always stay together): same opening, a month on.
        {"id": "late-lede", "title": "", "text": teaser + " again",
         "published": when + timedelta(days=30)},
    ]


def test_a_lede_joins_its_story_in_the_batch_pipeline() -> None:
    articles = _lede_corpus()
    result = pipeline.cluster(articles, with_stories=False)
    cluster_of = dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                          strict=True))
    assert cluster_of["lede"] == cluster_of["full"]
    assert cluster_of["late-lede"] != cluster_of["full"]  # a month later: another story
    off = dataclasses.replace(Config().clustering, excerpt_max_tokens=0)
    result = pipeline.cluster(articles, dataclasses.replace(Config(), clustering=off),
                              with_stories=False)
    cluster_of = dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                          strict=True))
    assert cluster_of["lede"] != cluster_of["full"]  # no candidate pair even
    assert cluster_of["other"] == cluster_of["full"]


def test_lines_many_sources_carry_are_content_not_templates() -> None:
    wire = "Officials said the bridge would stay closed"
    footer = "Subscribe to the Daily Planet"
    texts = [("planet", f"{wire}\nStory {i}.\n{footer}") for i in range(3)]
    texts.append(("outlet1", f"{wire}\nMore."))
    found = normalize.repeated_lines(texts, NormalizeConfig())
    assert footer.casefold() in found
    assert wire.casefold() in found  # two sources: under ``template_max_sources`` (3)
    texts.append(("outlet2", wire))
    found = normalize.repeated_lines(texts, NormalizeConfig())
    assert footer.casefold() in found
    assert wire.casefold() not in found  # three sources carry it: a wire story's line


def test_the_tail_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import excerpts_tail

    excerpts_tail.main(["--teasers", "40"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[2].strip() for r in rows] == ["on", "off"]
    assert rows[0][5].strip() == "1" and rows[0][7].strip() == "1.000"  # one cluster, whole


def test_edges_find_near_openers_behind_hundreds_of_far_ones() -> None:
    # 300 big copy groups a year away sort first; the excerpt's ties are the 5 near ones.
    long_a, short = WORDS[:80], WORDS[:20]
    token_lists = [short] + [long_a] * 305
    days = [100.0] + [465.0] * 300 + [100.5] * 5
    sizes = np.array([1] + [50] * 300 + [1] * 5)
    found = excerpts.edges(_openings(token_lists, days), np.ones(306, dtype=bool), 2.0, sizes)
    assert found[:, 1].tolist() == list(range(301, 306))[:excerpts.EDGES_PER_EXCERPT]


def test_a_stub_too_short_for_an_opening_does_not_hold_an_excerpt_back() -> None:
    long_a, short, stub = WORDS[:80], WORDS[:20], WORDS[50:53]  # the stub has 3 tokens
    openings = _openings([long_a, long_a, short, stub])
    groups = [np.array([0, 1]), np.array([2, 3])]
    # The excerpt (2) joins its story; the stub has no opening, so it stays where it was.
    assert _as_lists(excerpts.regroup(groups, openings, 2.0)) == [[0, 1, 2], [3]]


def _reference_near(openings: excerpts.Openings, rows: np.ndarray, row: int,
                    max_days: float) -> np.ndarray:
    """Every opener of ``rows`` with ``row``'s key within the window, read one by one."""
    f, la = openings.first[row], openings.last[row]
    return np.array([r for r in rows.tolist() if openings.keys[r] == openings.keys[row]
                     and (np.isnan(f) or np.isnan(openings.first[r])
                          or (openings.first[r] <= la + max_days
                              and openings.last[r] >= f - max_days))], dtype=np.int64)


@pytest.mark.parametrize("seed", range(4))
def test_crowded_openings_read_by_days_give_what_reading_all_gives(seed: int) -> None:
    # Hundreds of openers per key (more than the direct-read bound), some undated, some copy
    # groups spanning days, points in time for one key: edges and regroup must pick what a
    # one-by-one reading of all openers picks.
    rng = np.random.default_rng(seed)
    n = 1600
    keys = rng.integers(1, 4, n).astype(np.uint64)  # 1: spans, 2: points, 3: some undated
    short = rng.random(n) < 0.3
    first = rng.uniform(0, 40, n).round(1)
    first[(rng.random(n) < 0.05) & (keys == 3)] = np.nan
    last = first + np.where((rng.random(n) < 0.2) & (keys == 1), rng.uniform(0, 4, n), 0.0)
    openings = excerpts.Openings(keys, short, first, last)
    sizes = rng.integers(1, 4, n)
    eligible = np.ones(n, dtype=bool)
    anchor = np.flatnonzero(~short)
    assert np.bincount(keys[anchor].astype(np.int64)).max() > 256
    order = anchor[np.lexsort((anchor, -sizes[anchor]))]
    expected = [[e, r] for e in np.flatnonzero(short).tolist()
                for r in _reference_near(openings, order, e, 2.0)[:excerpts.EDGES_PER_EXCERPT]]
    assert excerpts.edges(openings, eligible, 2.0, sizes).tolist() == expected
    # Stories by time, so most excerpts find a majority; excerpts in pairs of their own.
    label = np.where(np.isnan(first), rng.integers(0, 6, n), np.nan_to_num(first) // 8)
    label = label.astype(np.int64)
    label[short] = 6 + np.arange(short.sum()) // 2
    groups = [np.flatnonzero(label == g) for g in np.unique(label)]
    moved = label.copy()
    for e in np.flatnonzero(short).tolist():
        joined, count = np.unique(label[_reference_near(openings, anchor, e, 2.0)],
                                  return_counts=True)
        if len(count) and 2 * count.max() > count.sum():
            moved[e] = joined[np.argmax(count)]
    assert (moved != label).sum() > 50
    want = sorted(np.flatnonzero(moved == g).tolist() for g in np.unique(moved))
    assert sorted(_as_lists(excerpts.regroup(groups, openings, 2.0))) == want


def test_undated_ledes_join_their_story_in_every_worker_count() -> None:
    # Ledes without a date beside a dated story: the window cannot exclude them, so both
    # join; the worker processes' path gives the same clusters as one process.
    articles = [{k: v for k, v in a.items() if k != "published" or "lede" not in a["id"]}
                for a in _lede_corpus()]
    found = []
    for workers in (1, 2):
        result = pipeline.cluster(articles, with_stories=False, workers=workers)
        cluster_of = dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                              strict=True))
        assert cluster_of["lede"] == cluster_of["late-lede"] == cluster_of["full"]
        found.append(result.assignments)
    assert found[0].equals(found[1])


def spanned_lede_corpus() -> list[dict[str, Any]]:
    """The lede corpus with a verbatim copy of the full story three weeks on and the late
    lede a day after that copy: near the copy group's span only through the copy."""
    articles = _lede_corpus()
    full = articles[0]
    copy = {**full, "id": "full-copy", "published": full["published"] + timedelta(days=21)}
    late = {**articles[3], "published": full["published"] + timedelta(days=22)}
    return [*articles[:3], copy, late]


def test_a_copy_group_carries_its_members_days_end_to_end() -> None:
    result = pipeline.cluster(spanned_lede_corpus(), with_stories=False)
    cluster_of = dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                          strict=True))
    assert cluster_of["late-lede"] == cluster_of["full-copy"] == cluster_of["full"]


def test_an_excerpt_never_grows_a_cluster_past_the_component_bound() -> None:
    # The story is two articles; with a bound of two, the lede cannot join it.
    bounded = dataclasses.replace(Config().clustering, max_component_size=2)
    result = pipeline.cluster(_lede_corpus(), dataclasses.replace(Config(), clustering=bounded),
                              with_stories=False)
    cluster_of = dict(zip(result.assignments["id"], result.assignments["cluster_id"],
                          strict=True))
    assert cluster_of["other"] == cluster_of["full"] != cluster_of["lede"]
