"""Rendering: every sentence and every difference reaches the page, and text stays text."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from dedup.merge import merge, story_from_dict
from dedup.records import Article, Difference, Story, StorySentence
from dedup.render import render, render_html, render_markdown

BASE = [
    "At least 12 people were killed in the fire at the Riverside plant on Tuesday.",
    "Plant manager John Smith said the blaze started in a storage tank.",
    "Firefighters fought the flames for six hours.",
]


class _Page(HTMLParser):
    """Collects sentence texts, difference tables and every start tag of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sentences: list[str] = []
        self.values: list[str] = []
        self.kinds: list[str] = []
        self._in: str | None = None
        self._sup = 0
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "p" and "sentence" in classes:
            self._in, self._buf = "sentence", []
        elif tag == "td" and "value" in classes:
            self._in, self._buf = "value", []
        elif tag == "div" and "difference" in classes:
            self.kinds.append(a.get("data-kind") or "")
        elif tag == "sup":
            self._sup += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "sup":
            self._sup -= 1
        elif (tag == "p" and self._in == "sentence") or (tag == "td" and self._in == "value"):
            target = self.sentences if self._in == "sentence" else self.values
            target.append("".join(self._buf))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and not self._sup:
            self._buf.append(data)


def _story() -> Story:
    b = [BASE[0].replace("12", "14"), BASE[1].replace("Smith", "Smyth"), BASE[2]]
    c = [*BASE[:2], BASE[2], "Residents were told to keep <windows> & doors closed."]
    versions = {"a": BASE, "b": b, "c": c}
    return merge([Article(id_, "\n".join(lines)) for id_, lines in versions.items()])


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_html_shows_every_sentence_and_difference() -> None:
    story = _story()
    assert {d.kind for d in story.differences} == {"number", "name", "sentence"}
    page = _parse(render_html([story]))
    assert page.sentences == [s.text for s in story.sentences]
    assert page.kinds == [d.kind for d in story.differences]
    assert page.values == [v for d in story.differences for v in d.variants]
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags


def test_html_marks_sources_and_disputed_values() -> None:
    page = render_html([_story()])
    assert '<p class="sentence" data-sources="a b c">' in page
    assert 'data-sources="c"' in page
    assert "<mark>12</mark>" in page and "<mark>John Smith</mark>" in page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "http" not in page


def test_html_escapes_script_in_text() -> None:
    evil = "<script>alert('x')</script> & \"quotes\""
    story = Story(
        "c1",
        ("a", "b"),
        "a",
        "Title <script>",
        evil,
        (StorySentence(evil, ("a",)),),
        (Difference("name", "<b>ctx</b>", {"<script>": ("a",), "ok": ("b",)}),),
    )
    html = render_html([story])
    page = _parse(html)
    assert "script" not in page.tags and "b" not in page.tags
    assert page.sentences == [evil]
    assert page.values == ["<script>", "ok"]
    assert "&lt;script&gt;" in html
    md = render_markdown([story])
    assert "<script>" not in md and "\\<script\\>" in md


def test_markdown_lists_sentences_sources_and_tables() -> None:
    story = _story()
    md = render_markdown([story])
    assert md.startswith("# ")
    assert "| value | members |" in md
    assert "| 12 | [1] a, [3] c |" in md and "| 14 | [2] b |" in md
    assert "Firefighters fought the flames for six hours. [1,2,3]" in md
    assert f"## Differences ({len(story.differences)})" in md


def test_render_dispatch_and_json_round_trip() -> None:
    story = _story()
    lines = render([story], "json").splitlines()
    assert story_from_dict(json.loads(lines[0])) == story
    assert render([story], "md") == render_markdown([story])
    assert render([story], "html") == render_html([story])
    with pytest.raises(ValueError, match="unknown format"):
        render([story], "pdf")


def test_empty_inputs_render() -> None:
    assert "No stories." in render_html([])
    empty = merge([Article("a", "")])
    assert "The versions agree." in render_markdown([empty])
    assert _parse(render_html([empty])).sentences == []
