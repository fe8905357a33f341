"""StoryIndex work per verbatim copy (#18): a text repeated under other furniture is
normalized and counted once, and its scores are computed once per pair of texts, with the
same results as computing every copy."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dedup import normalize, pipeline
from dedup.config import Config
from dedup.index import StoryIndex
from dedup.index.terms import count_terms
from dedup.index.texts import Lines
from dedup.index.vectors import Scratch, Vectors
from tests.conftest import ECBPLUS

FURNITURE: tuple[list[str], ...] = (
    ["Exit mobile version"], ["Share.", "Tags: news, world"], ["PREV An older story"], [])


def _corpus() -> list[dict[str, Any]]:
    """24 ECB+ articles, dated days to months apart, and four copies of each of the first
    four under other furniture and other dates (so the date window tells copies apart)."""
    with ECBPLUS.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in list(handle)[:24]]
    start = datetime(2024, 1, 1, 6)
    out = [{"id": r["doc_id"], "title": r["title"], "text": r["text"],
            "published": start + timedelta(days=[0, 3, 40, 9][k % 4], hours=k)}
           for k, r in enumerate(rows)]
    for k, r in enumerate(rows[:4]):
        for c, lines in enumerate(FURNITURE):
            out.append({"id": f"{r['doc_id']}-copy{c}", "title": r["title"],
                        "text": "\n".join([*lines[:1], r["text"], *lines[1:]]),
                        "published": start + timedelta(days=[1, 60, 2, 90][c], hours=k)})
    return out


def test_furniture_is_boilerplate() -> None:
    """The corpus's copies differ only in lines the normalizer drops."""
    assert all(normalize.is_boilerplate(line) for lines in FURNITURE for line in lines)


def test_verbatim_copies_are_normalized_once(tmp_path: Path) -> None:
    """Each distinct text (after furniture) is prepared and counted once, across adds; its
    stored terms equal those of normalizing it alone. Another title is another text."""
    articles = _corpus()
    with StoryIndex.open(tmp_path / "i.db") as index:
        index.add(articles[:30])  # the 24 originals and 6 copies
        assert index._texts.misses == 24
        index.add(articles[30:])  # the other 10 copies: no text is new
        assert index._texts.misses == 24
        retitled = dict(articles[0], id="retitled", title="Another headline")
        index.add([retitled])
        assert index._texts.misses == 25
        state = index._current_state()
        row_of = {doc.id: row for row, doc in state.docs.items()}
        for article in (articles[0], articles[-1], retitled):
            prepared = pipeline.prepare(article["text"], article["title"], frozenset(),
                                        body=False)
            ids, tf, *_ = count_terms(index._vocabulary, [prepared], True)
            stored_ids, stored_tf, _ = state.store.gather(np.array([row_of[article["id"]]]))
            assert np.array_equal(stored_ids, ids) and np.array_equal(stored_tf, tf)
        content = state.store.content
        assert content[row_of[articles[0]["id"]]] == content[row_of[f"{articles[0]['id']}-copy3"]]
        assert content[row_of[articles[0]["id"]]] != content[row_of["retitled"]]


def test_verbatim_copies_are_scored_once(tmp_path: Path) -> None:
    """``pair_scores`` computes one dot product per pair of distinct texts, ``scores`` and
    ``dense`` one row per distinct text; every score equals computing each copy (the same
    bits for the first two), each pair's own date window and years applied."""
    config = Config()
    with StoryIndex.open(tmp_path / "i.db", config) as index:
        index.add(_corpus())
        state = index._current_state()
        rows = np.array(sorted(state.docs), dtype=np.int64)
        left, right = (a.ravel() for a in np.meshgrid(rows, rows, indexing="ij"))
        counted: list[int] = []
        vectors = Vectors(config.refine, state, state.distinct, Scratch())
        dots = vectors._dots

        def counting(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            counted.append(len(a))
            return dots(a, b)

        vectors._dots = counting  # type: ignore[method-assign,assignment]
        ours = vectors.pair_scores(left, right)
        one = vectors.scores(int(rows[0]), rows.tolist())
        dense = vectors.dense(rows.tolist())
        content = state.store.content.copy()
        state.store.content = np.arange(len(content), dtype=np.int64)  # every row its own
        every = Vectors(config.refine, state, state.distinct, Scratch())
        want = every.pair_scores(left, right)
        want_one = every.scores(int(rows[0]), rows.tolist())
        want_dense = every.dense(rows.tolist())
        state.store.content = content
    assert sum(counted) == 24 * 24 < len(left)  # 24 distinct texts, 40 articles
    assert np.array_equal(ours, want) and np.array_equal(one, want_one)
    assert np.allclose(dense, want_dense, rtol=1e-12, atol=1e-15)
    # The copies' own scores differ by date: one dot product, several final scores.
    first = state.docs[int(rows[0])].id
    copies = [k for k, r in enumerate(rows.tolist())
              if state.docs[r].id == first or state.docs[r].id.startswith(f"{first}-copy")]
    assert len(copies) == 5 and len({round(float(one[k]), 9) for k in copies}) > 1


@pytest.mark.parametrize("text", [
    "Title\nIt ' s a quake.\nShare.\nIt ' s a quake.",  # a tokenisation mark: cleaned whole
    "Title\r\nLine one.\rLine two.\n  Line one.  ",  # carriage returns: cleaned whole
    "Title\n\tLima  quake\u2019s toll\u00a0rises.\nPREV Another story\n"
    "lima QUAKE\u2019s toll rises.",
    "",
])
def test_lines_equal_cleaning_the_whole_text(text: str) -> None:
    lines = Lines()
    want = normalize.strip_boilerplate(normalize.clean_text(text), frozenset())
    assert lines(text) == want
    assert lines(text) == want  # from the cache
