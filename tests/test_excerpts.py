"""Excerpts join their story, and a wire story's lines are not one site's furniture (#18)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dedup import excerpts, normalize, pipeline
from dedup.config import ClusterConfig, Config, NormalizeConfig
from tests.conftest import read_seeds

WORDS = [f"w{i}" for i in range(100)]


def _openings(token_lists: list[list[str]]) -> excerpts.Openings:
    return excerpts.Openings.of(token_lists, ClusterConfig())


def test_a_short_article_joins_the_group_most_of_its_openers_are_in() -> None:
    long_a, long_b = WORDS[:80], WORDS[:10] + WORDS[40:]  # both open with w0..w9
    short, other = WORDS[:20], WORDS[30:45]
    token_lists = [long_a, long_a, long_b, short, short, other, long_a]
    groups = [np.array([0, 1]), np.array([2]), np.array([3, 4]), np.array([5]), np.array([6])]
    days = np.full(7, np.nan)
    # Openers (long, opening w0..w9): rows 0, 1 in group 0, row 2 in 1, row 6 in 4.
    # Group 0 holds 2 of 4: not more than half, so the short rows 3 and 4 stay.
    assert (excerpts.targets(groups, _openings(token_lists), days, 2.0) == -1).all()
    groups_b = [np.array([0, 1, 6]), np.array([2]), np.array([3, 4]), np.array([5])]
    dest = excerpts.targets(groups_b, _openings(token_lists), days, 2.0)
    assert dest.tolist() == [-1, -1, -1, 0, 0, -1, -1]
    groups_tie = [np.array([0]), np.array([1]), np.array([2]), np.array([3, 4]),
                  np.array([5]), np.array([6])]
    dest = excerpts.targets(groups_tie, _openings(token_lists), days, 2.0)
    assert (dest == -1).all()  # no cluster holds more than half of the openers


def test_the_date_window_and_length_decide_who_moves() -> None:
    long_a, short = WORDS[:80], WORDS[:20]
    token_lists = [long_a, long_a, short, short, long_a[:61]]
    groups = [np.array([0, 1]), np.array([2]), np.array([3]), np.array([4])]
    days = np.array([100.0, 100.5, 101.0, 110.0, 100.0])
    dest = excerpts.targets(groups, _openings(token_lists), days, 2.0)
    # 2 is two days away at most: joins; 3 is ten days away: stays; 4 has 61 tokens: not
    # an excerpt (60 at most), though it opens the same way.
    assert dest.tolist() == [-1, -1, 0, -1, -1]
    mixed = [np.array([0, 1]), np.array([2, 4])]  # a group with a long member never moves
    assert (excerpts.targets(mixed, _openings(token_lists), days, 2.0) == -1).all()


def test_join_moves_rows_and_recomputes_their_closeness() -> None:
    linked = [(np.array([0, 2]), np.array([0.9, 0.9])), (np.array([1, 3]), np.array([0.5, 0.5]))]
    dest = np.array([-1, 0, -1, -1])

    def score(pairs: np.ndarray) -> np.ndarray:
        return (pairs[:, 0] + pairs[:, 1]) / 10.0

    out = excerpts.join(linked, dest, score)
    assert [rows.tolist() for rows, _ in out] == [[0, 1, 2], [3]]
    assert out[0][1].tolist() == [0.9, (0.1 + 0.3) / 2, 0.9]
    assert out[1][1].tolist() == [1.0]  # left alone: nobody to compare with


def _lede_corpus() -> list[dict[str, Any]]:
    """Both seeds, and a breaking-news teaser that is seed 000's headline alone, twice."""
    full, other = read_seeds()
    when = datetime(2024, 3, 23)
    return [
        {"id": "full", "title": full["title"], "text": full["text"], "published": when},
        {"id": "other", "title": other["title"], "text": other["text"], "published": when},
        {"id": "lede", "title": "", "text": full["title"], "published": when},
        {"id": "late-lede", "title": "", "text": full["title"],
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
    assert cluster_of["lede"] != cluster_of["full"]  # cosine alone leaves it out
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
