"""The HTML report as a reader sees it: headless Chromium opens the page and looks.

Why: ``test_render`` parses the markup; only a browser shows whether the facts table is on
top, every difference is on screen (not hidden by CSS), disputed values are highlighted,
nothing is fetched, nothing runs, and hostile article text shows as text.

Needs playwright (the ``test`` extra) and a Chromium binary (Debian's ``chromium``, or the
one ``DEDUP_CHROMIUM`` names); playwright's own browser download is not used. Without them
the tests are skipped with the reason, unless ``DEDUP_REQUIRE_BROWSER=1`` (CI sets it), in
which case they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dedup.merge import merge
from dedup.records import Article, Difference, Story, StorySentence
from dedup.render import render_html
from tests.conftest import read_seeds

REQUIRED = os.environ.get("DEDUP_REQUIRE_BROWSER") == "1"


def chromium_path() -> str | None:
    """The Chromium binary to drive: ``DEDUP_CHROMIUM``, else the first on PATH."""
    named = os.environ.get("DEDUP_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    message = f"{reason}: the browser tests need it"
    message += " (apt-get install chromium; pip install playwright)"
    if REQUIRED:
        pytest.fail(f"{message}; DEDUP_REQUIRE_BROWSER=1 makes that an error", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (a launch takes about a second)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    executable = chromium_path()
    if executable is None:
        _unavailable("no chromium binary found (set DEDUP_CHROMIUM to one)")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


HOSTILE_SENTENCES = [
    "<script>window.pwned = 'script'</script> was in the article text.",
    '<img src="x" onerror="window.pwned = \'onerror\'"> came next.',
    '<a href="javascript:window.pwned=\'link\'">click here</a> ended it.',
]


def _hostile_story() -> Story:
    """A story whose every field carries markup: it must show as text and run nothing."""
    members = ("evil<b>1", 'evil"2')
    sentences = tuple(
        StorySentence(text, members if i else members[:1])
        for i, text in enumerate(HOSTILE_SENTENCES)
    )
    return Story(
        cluster_id='c"><script>window.pwned="id"</script>',
        members=members,
        base=members[0],
        title="</title><script>window.pwned='title'</script>",
        text="\n".join(HOSTILE_SENTENCES),
        sentences=sentences,
        differences=(
            Difference("name", "javascript:alert(1)", {"<script>x</script>": (members[0],),
                                                       "onerror=alert(1)": ("not-a-member<i>",)}),
            Difference("sentence", "not in " + members[1], {HOSTILE_SENTENCES[0]: members[:1]}),
        ),
    )


@pytest.fixture(scope="module")
def seed_story() -> Story:
    return merge([Article(a["id"], a["text"], a["title"]) for a in read_seeds()])


class Report:
    """A loaded report page and what it did: requests, console errors, dialogs."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture(scope="module")
def report(browser: Any, seed_story: Story, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The seeds' story and the hostile story as one report, opened from disk."""
    path = tmp_path_factory.mktemp("report") / "stories.html"
    path.write_text(render_html([seed_story, _hostile_story()]), encoding="utf-8")
    url = path.as_uri()
    context = browser.new_context()
    page = context.new_page()
    result = Report(page, url)

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:  # anything else would leave the page: record it, never fetch it
            result.requests.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: result.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.errors.append(str(e)))
    def on_dialog(dialog: Any) -> None:
        result.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url, wait_until="load")
    return result


_VISIBLE = """els => els.map(e => e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
    && e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0)"""


def _all_visible(locator: Any) -> bool:
    flags = locator.evaluate_all(_VISIBLE)
    return bool(flags) and all(flags)


def _article(report: Report, story: Story) -> Any:
    return report.page.locator("article.story").nth(
        0 if story.cluster_id.startswith("c") and '"' not in story.cluster_id else 1
    )


def test_facts_table_is_on_top(report: Report, seed_story: Story) -> None:
    article = _article(report, seed_story)
    facts = article.locator("section.facts")
    text = article.locator("div.text")
    assert facts.bounding_box()["y"] < text.bounding_box()["y"]
    rows = article.locator("tr.difference")
    kinds = rows.evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert kinds == ["number", "name"]
    first = rows.nth(0).inner_text()
    assert "143" in first and "144" in first and "people were killed" in first
    second = rows.nth(1).inner_text()
    assert "IV-K" in second and "Islamic State" in second and "claimed responsibility" in second
    summary = article.locator("li.sentence-group")
    assert summary.nth(0).bounding_box()["y"] > rows.nth(1).bounding_box()["y"]


def test_every_difference_is_on_screen(report: Report, seed_story: Story) -> None:
    article = _article(report, seed_story)
    facts = [d for d in seed_story.differences if d.kind != "sentence"]
    rows = article.locator("tr.difference")
    assert rows.count() == len(facts) and _all_visible(rows)
    values = article.locator("tr.difference mark.value")
    assert values.all_inner_texts() == [v for d in facts for v in d.variants]
    assert _all_visible(values)
    # Sentences only some versions carry: counted per member, and each one in the text.
    groups = article.locator("li.sentence-group")
    assert _all_visible(groups)
    counted = sum(int(n) for n in groups.evaluate_all("ls => ls.map(l => l.dataset.count)"))
    only_some = [v for d in seed_story.differences if d.kind == "sentence" for v in d.variants]
    assert counted == len(only_some)
    partial = article.locator("p.sentence.partial")
    assert _all_visible(partial)
    shown = partial.evaluate_all("ps => ps.map(p => p.firstChild ? p.innerText : '')")
    for text in only_some:
        assert any(s.startswith(text) for s in shown), text


def test_disputed_values_are_highlighted(report: Report, seed_story: Story) -> None:
    article = _article(report, seed_story)
    page_bg = report.page.evaluate("getComputedStyle(document.body).backgroundColor")
    for locator in (article.locator("mark.value"), article.locator("div.text mark")):
        backgrounds = locator.evaluate_all(
            "ms => ms.map(m => getComputedStyle(m).backgroundColor)"
        )
        assert backgrounds and all(
            bg not in (page_bg, "rgba(0, 0, 0, 0)", "transparent") for bg in backgrounds
        )
    # Wherever the text states a disputed value, it is marked (143 is only in the facts:
    # the story's text is the base's, which says 144).
    values = [v for d in seed_story.differences if d.kind != "sentence" for v in d.variants]
    sentences = article.locator("p.sentence")
    marks = sentences.evaluate_all(
        "ps => ps.map(p => Array.from(p.querySelectorAll('mark'), m => m.innerText))"
    )
    texts = [s.text for s in seed_story.sentences]
    stated = 0
    for text, marked in zip(texts, marks, strict=True):
        for value in values:
            if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text):
                assert value in marked, (value, text)
                stated += 1
    assert stated >= 3  # 144, IV-K, Islamic State


def test_nothing_leaves_the_page_and_nothing_fails(report: Report) -> None:
    assert report.requests == []
    assert report.errors == []
    assert report.dialogs == []


def test_hostile_text_shows_as_text_and_runs_nothing(report: Report) -> None:
    page = report.page
    assert page.evaluate("window.pwned") is None
    assert page.locator("script, img, iframe, object, embed").count() == 0
    assert page.locator('a[href^="javascript:"], [onerror]').count() == 0
    hostile = page.locator("article.story").nth(1)
    hostile.scroll_into_view_if_needed()  # stories off screen are not rendered until then
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    body = hostile.inner_text()
    for text in HOSTILE_SENTENCES:
        assert text in body
    assert "<script>x</script>" in body and "onerror=alert(1)" in body
    assert "not-a-member<i>" in body
    assert page.title() == "2 stories"


def test_index_links_to_each_story(report: Report, seed_story: Story) -> None:
    page = report.page
    links = page.locator("nav.index a")
    assert links.count() == 2
    assert page.locator("nav.index").bounding_box()["y"] < page.locator(
        "article.story"
    ).first.bounding_box()["y"]
    for i in (1, 0):
        links.nth(i).click()
        target = page.evaluate("decodeURIComponent(location.hash.slice(1))")
        story = page.locator("article.story").nth(i)
        assert story.get_attribute("id") == target
        top = story.evaluate("a => a.getBoundingClientRect().top")
        height = page.evaluate("window.innerHeight")
        assert -2 < top < height  # scrolled to it: on screen
        if i == 0:
            assert abs(top) < 2  # the first story has room to reach the top
    counts = page.locator("nav.index td.facts").all_inner_texts()
    assert counts[0] == str(len([d for d in seed_story.differences if d.kind != "sentence"]))
