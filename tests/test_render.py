"""Rendering: every sentence and every difference reaches the page, and text stays text."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.merge import merge, story_from_dict
from dedup.records import Article, Difference, Story, StorySentence
from dedup.render import render, render_html, render_markdown

BASE = [
    "At least 12 people were killed in the fire at the Riverside plant on Tuesday.",
    "Plant manager John Smith said the blaze started in a storage tank.",
    "Firefighters fought the flames for six hours.",
]


class _Page(HTMLParser):
    """Collects sentence texts, facts, sentence groups, text and start tags of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.sentences: list[str] = []
        self.values: list[str] = []
        self.kinds: list[str] = []
        self.groups: list[tuple[str, int]] = []
        self.text: list[str] = []
        self._in: str | None = None
        self._sup = 0
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((k, v or "") for k, v in attrs)
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "p" and "sentence" in classes:
            self._in, self._buf = "sentence", []
        elif tag == "mark" and "value" in classes:
            self._in, self._buf = "value", []
        elif tag == "tr" and "difference" in classes:
            self.kinds.append(a.get("data-kind") or "")
        elif tag == "li" and "sentence-group" in classes:
            self.groups.append((a.get("data-sources") or "", int(a.get("data-count") or 0)))
        elif tag == "sup":
            self._sup += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "sup":
            self._sup -= 1
        elif (tag == "p" and self._in == "sentence") or (tag == "mark" and self._in == "value"):
            target = self.sentences if self._in == "sentence" else self.values
            target.append("".join(self._buf))
            self._in = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
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


def _facts(story: Story) -> list[Difference]:
    return [d for d in story.differences if d.kind != "sentence"]


def test_html_shows_every_sentence_and_difference() -> None:
    story = _story()
    assert {d.kind for d in story.differences} == {"number", "name", "sentence"}
    page = _parse(render_html([story]))
    assert page.sentences == [s.text for s in story.sentences]
    assert page.kinds == [d.kind for d in _facts(story)] == ["number", "name"]
    assert page.values == [v for d in _facts(story) for v in d.variants]
    sentence_diffs = [d for d in story.differences if d.kind == "sentence"]
    assert page.groups == [("c", len(sentence_diffs))]
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags


def test_html_marks_sources_and_disputed_values() -> None:
    page = render_html([_story()])
    assert '<p class="sentence" data-sources="a b c">' in page
    assert 'data-sources="c"' in page
    assert "<mark>12</mark>" in page and "<mark>John Smith</mark>" in page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "http" not in page


def test_facts_come_before_the_sentence_summary_and_the_text() -> None:
    story = _story()
    md = render_markdown([story])
    marks = ("| 12 [1,3] · 14 [2] |", "John Smyth [2]", "1 sentence only in [3]")
    at = [md.index(x) for x in marks]
    assert at == sorted(at) and at[-1] < md.index("## Text") < md.index("Firefighters")
    page = render_html([story])
    at = [page.index(x) for x in ('class="facts"', ">John Smyth<", "1 sentence only in")]
    assert at == sorted(at) and at[-1] < page.index('<div class="text">')


def test_differences_of_an_older_file_are_shown_facts_first() -> None:
    story = _story()
    shuffled = dataclasses.replace(story, differences=tuple(reversed(story.differences)))
    assert render_html([shuffled]) == render_html([story])
    assert render_markdown([shuffled]) == render_markdown([story])


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


def test_a_member_missing_from_members_is_escaped() -> None:
    # A stories.jsonl from elsewhere: differences and sentences name ids the story does not
    # list; the renderer prints them as they are, escaped (it used to print them raw).
    bad = "<script>window.pwned=1</script>"
    story = Story(
        "c1",
        ("a", "b"),
        "a",
        "T",
        "x",
        (StorySentence("Text.", ("a", bad)),),
        (
            Difference("number", "dead", {"1": ("a",), "2": (bad,)}),
            Difference("sentence", "not in b", {"Text.": (bad,)}),
        ),
    )
    page = render_html([story])
    assert "<script" not in page and "window.pwned=1" in page
    assert page.count("window.pwned=1") == page.count("&lt;script&gt;window.pwned=1") == 8
    md = render_markdown([story])
    assert re.search(r"(?<!\\)<", md) is None and "\\<script\\>window.pwned=1" in md


def test_markdown_lists_facts_sentence_groups_and_text() -> None:
    story = _story()
    md = render_markdown([story])
    assert md.startswith("# ")
    assert "## Facts in dispute (2)" in md
    assert "| number | people were killed | 12 [1,3] · 14 [2] |" in md
    assert "Sentences not in every version: 1 sentence only in [3]." in md
    assert "Firefighters fought the flames for six hours. [1,2,3]" in md


def test_many_stories_open_with_an_index() -> None:
    story = _story()
    alone = merge([Article("z", "A quiet day in the village of Ambleside.")])
    md = render_markdown([story, alone])
    assert md.startswith("# Stories (2)")
    assert f"| 3 | 2 | 1 | {story.cluster_id} |" in md
    assert f"| 1 | 0 | 0 | {alone.cluster_id} |" in md
    page = render_html([story, alone])
    index = page.index('<nav class="index">')
    assert index < page.index('<article class="story"')
    assert f'<a href="#{story.cluster_id}">' in page and f'id="{alone.cluster_id}"' in page
    assert '<nav class="index">' not in render_html([story])


def test_render_dispatch_and_json_round_trip() -> None:
    story = _story()
    lines = render([story], "json").splitlines()
    assert story_from_dict(json.loads(lines[0])) == story
    assert render([story], "md") == render_markdown([story])
    assert render([story], "html") == render_html([story])
    with pytest.raises(ValueError, match="unknown format"):
        render([story], "pdf")  # type: ignore[arg-type]  # mypy refuses it too


def test_empty_inputs_render() -> None:
    assert "No stories." in render_html([])
    empty = merge([Article("a", "")])
    assert _parse(render_html([empty])).sentences == []
    # One version has nothing to agree with (a trial read "The versions agree.").
    text = "Storm hits the city. Rescuers searched the river overnight."
    for story in (empty, merge([Article("a", text)])):
        for out in (render_markdown([story]), render_html([story])):
            assert "One version: nothing to compare." in out and "agree" not in out
    two = merge([Article("a", text), Article("b", text + " Roads closed.")])
    assert "agree on every number" in render_markdown([two]) + render_html([two])


# --------------------------------------------------------------------------- hostile files

_HOSTILE = st.sampled_from(
    [
        "<script>window.pwned=1</script>",
        '"><img src=x onerror=alert(1)>',
        "javascript:alert(1)",
        "</style><style>body{display:none}",
        "<!--",
        "&amp;",
        "&#x27;",
        "x27",
        "'",
        "`",
        "|",
        "[a](javascript:alert(1))",
        "\n",
    ]
)
_TEXT = st.lists(st.one_of(_HOSTILE, st.text(alphabet="ab <>&\"'=:/#x27", max_size=6)),
                 max_size=4).map("".join)
_ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "nav", "h1", "h2", "table", "tr", "th",
    "td", "a", "article", "p", "span", "sup", "code", "section", "mark", "ul", "li", "div",
}  # fmt: skip


@st.composite
def _story_records(draw: st.DrawFn) -> dict[str, object]:
    """A ``stories.jsonl`` record from anywhere: hostile text in every field, differences and
    sentences that name members the record does not list."""
    members = draw(st.lists(_TEXT, min_size=1, max_size=3, unique=True))
    anyone = st.one_of(st.sampled_from(members), _TEXT)
    diffs = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "kind": st.one_of(st.sampled_from(["number", "date", "name", "sentence"]),
                                      _TEXT),
                    "context": _TEXT,
                    "variants": st.dictionaries(_TEXT, st.lists(anyone, max_size=2), max_size=3),
                }
            ),
            max_size=4,
        )
    )
    sentences = draw(
        st.lists(
            st.fixed_dictionaries({"text": _TEXT, "sources": st.lists(anyone, max_size=3)}),
            max_size=4,
        )
    )
    return {
        "cluster_id": draw(_TEXT),
        "members": members,
        "base": draw(anyone),
        "title": draw(_TEXT),
        "text": "",
        "sentences": sentences,
        "differences": diffs,
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(_story_records(), min_size=1, max_size=3))
def test_hostile_story_records_stay_text(records: list[dict[str, object]]) -> None:
    stories = [story_from_dict(r) for r in records]
    page = render_html(stories)
    parsed = _parse(page)
    assert set(parsed.tags) <= _ALLOWED_TAGS
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    assert all(value.startswith("#") for name, value in parsed.attrs if name == "href")
    shown = "".join(parsed.text)
    for story in stories:
        assert story.title in shown or not story.title
        for sentence in story.sentences:
            assert sentence.text in shown
        for diff in story.differences:
            if diff.kind != "sentence":
                assert all(value in shown for value in diff.variants)
    md = render_markdown(stories)
    assert re.search(r"(?<!\\)[<`]", md) is None  # no raw HTML, no code span
    assert re.search(r"(?<!\\)\]\(", md) is None  # no link


def test_seeds_report_leads_with_the_toll_and_the_claimant() -> None:
    from tests.conftest import read_seeds

    story = merge([Article(a["id"], a["text"], a["title"]) for a in read_seeds()])
    md = render_markdown([story])
    summary = md.index("sentences only in")
    assert md.index("| 143 [1] · 144 [2] |") < summary
    assert md.index("| IV-K [1] · Islamic State [2] |") < summary
    page = render_html([story])
    summary = page.index("sentences only in")
    assert page.index(">143<") < summary and page.index(">Islamic State<") < summary


def test_verbatim_copies_are_counted_with_their_version_not_as_voices() -> None:
    # Two versions, one copied verbatim twice: the reports label two versions, say how many
    # copies stand with each, and a sentence both versions carry is not "partial".
    story = merge([Article("a", "Storm hits the city. Twelve died."),
                   Article("b", "Storm hits the city. Thirteen died, officials said.")],
                  copies={"a": ["a2", "a3"]})
    assert story.members == ("a", "a2", "a3", "b")
    md = render_markdown([story])
    assert "4 members, 2 distinct version(s)" in md
    assert "Members: [1] a (+2 verbatim copies); [2] b\n" in md
    html = render_html([story, story])
    assert "a (+2 verbatim copies)</span>" in html
    assert html.count('class="sentence partial"') == 2 * (len(story.sentences) - 1)
    assert '<td class="n">2</td>' in html  # the index counts versions
