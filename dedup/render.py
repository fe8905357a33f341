"""Render canonical stories for people: Markdown, one self-contained HTML page, or JSON lines.

Why: a merged story is only trusted when a reader can see who says what. Every sentence
shows the members that carry it and every difference is a small table of value | members,
so a disagreement (143 vs 144 dead) is visible at a glance. HTML needs no network, no
scripts and no external assets: the file can be mailed or archived as is.

Example:
    >>> from dedup.records import Story, StorySentence
    >>> s = Story("c1", ("a",), "a", "Title", "Text.", (StorySentence("Text.", ("a",)),), ())
    >>> render_markdown([s]).splitlines()[0]
    '# Title'
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from dedup.merge import story_to_dict
from dedup.records import Difference, Story

__all__ = ["FORMATS", "render", "render_html", "render_json", "render_markdown"]

Format = Literal["md", "html", "json"]
FORMATS: tuple[str, ...] = ("md", "html", "json")


def render(stories: Iterable[Story], fmt: str = "md") -> str:
    """Render stories in ``fmt`` ('md' or 'markdown', 'html', 'json'): the CLI's one call."""
    stories = list(stories)
    if fmt in ("md", "markdown"):
        return render_markdown(stories)
    if fmt == "html":
        return render_html(stories)
    if fmt in ("json", "jsonl"):
        return render_json(stories)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def render_json(stories: Iterable[Story]) -> str:
    """One JSON object per line, the ``stories.jsonl`` shape (``merge.story_to_dict``)."""
    return "".join(json.dumps(story_to_dict(s), ensure_ascii=False) + "\n" for s in stories)


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def _md(text: str) -> str:
    """Escape Markdown syntax so article text never turns into markup (or raw HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _labels(story: Story) -> dict[str, str]:
    """Short labels 1..n for members, in the story's (sorted) member order."""
    return {member: str(i) for i, member in enumerate(story.members, 1)}


def _difference_title(diff: Difference) -> str:
    return f"{diff.kind}: {diff.context}" if diff.context else diff.kind


def render_markdown(stories: Sequence[Story]) -> str:
    """Stories as Markdown: title, members legend, sentences with [sources], difference tables."""
    parts: list[str] = []
    for story in stories:
        labels = _labels(story)
        parts.append(f"# {_md(story.title or story.cluster_id)}\n")
        parts.append(
            f"Cluster `{story.cluster_id}` · base {_md(story.base)} · "
            f"{len(story.members)} member(s)\n"
        )
        parts.append("Members: " + "; ".join(f"[{labels[m]}] {_md(m)}" for m in story.members))
        parts.append("")
        for sentence in story.sentences:
            sources = ",".join(labels.get(m, m) for m in sentence.sources)
            parts.append(f"{_md(sentence.text)} [{sources}]")
        parts.append("")
        parts.append(f"## Differences ({len(story.differences)})\n")
        if not story.differences:
            parts.append("The versions agree.\n")
        for diff in story.differences:
            parts.append(f"### {_md(_difference_title(diff))}\n")
            parts.append("| value | members |")
            parts.append("| --- | --- |")
            for value, members in diff.variants.items():
                who = ", ".join(f"[{labels.get(m, m)}] {_md(m)}" for m in members)
                parts.append(f"| {_md(value)} | {who} |")
            parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font: 16px/1.5 Georgia, serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       color: #1d1d1f; background: #fff; }
article.story { border-top: 3px solid #333; margin-bottom: 3rem; padding-top: .5rem; }
h1 { font-size: 1.6rem; margin: .3rem 0; }
.meta, .legend { font: 13px/1.4 system-ui, sans-serif; color: #555; }
.legend span { margin-right: .8rem; }
p.sentence { margin: .35rem 0; }
p.sentence.partial { border-left: 3px solid #e0a800; padding-left: .5rem; }
sup.sources { font: 11px system-ui, sans-serif; color: #fff; background: #5b6b7c;
              border-radius: 3px; padding: 0 .25rem; margin-left: .2rem; }
mark { background: #ffe58a; padding: 0 .1rem; }
section.differences h2 { font-size: 1.15rem; }
div.difference { margin: .8rem 0; }
div.difference h3 { font: 600 14px system-ui, sans-serif; margin: 0 0 .2rem; }
.kind { text-transform: uppercase; font-size: 11px; letter-spacing: .05em; color: #fff;
        border-radius: 3px; padding: 0 .3rem; margin-right: .4rem; }
.kind-number { background: #b03a2e; } .kind-date { background: #1f618d; }
.kind-name { background: #7d3c98; } .kind-sentence { background: #717d7e; }
table { border-collapse: collapse; font: 14px system-ui, sans-serif; }
th, td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _highlighter(diffs: Sequence[Difference]) -> re.Pattern[str] | None:
    """A pattern for the disputed values (escaped text), longest first, whole words only."""
    values = {v for d in diffs if d.kind != "sentence" for v in d.variants if v.strip()}
    if not values:
        return None
    alternatives = "|".join(re.escape(_e(v)) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<![\w&])(?:{alternatives})(?!\w)")


def _story_html(story: Story) -> str:
    labels = _labels(story)
    out = [f'<article class="story" id="{_e(story.cluster_id)}">']
    out.append(f"<h1>{_e(story.title or story.cluster_id)}</h1>")
    out.append(
        f'<p class="meta">cluster <code>{_e(story.cluster_id)}</code> · base '
        f"<code>{_e(story.base)}</code> · {len(story.members)} member(s)</p>"
    )
    legend = "".join(
        f'<span><sup class="sources">{labels[m]}</sup> {_e(m)}</span>' for m in story.members
    )
    out.append(f'<p class="legend">{legend}</p>')
    out.append('<div class="text">')
    marks = _highlighter(story.differences)
    everyone = set(story.members)
    for sentence in story.sentences:
        text = _e(sentence.text)
        if marks is not None:
            text = marks.sub(lambda m: f"<mark>{m.group(0)}</mark>", text)
        partial = " partial" if set(sentence.sources) != everyone else ""
        ids = " ".join(sentence.sources)
        badge = ",".join(labels.get(m, m) for m in sentence.sources)
        out.append(
            f'<p class="sentence{partial}" data-sources="{_e(ids)}">{text}'
            f'<sup class="sources" title="{_e(", ".join(sentence.sources))}">{_e(badge)}</sup></p>'
        )
    out.append("</div>")
    out.append(f'<section class="differences"><h2>Differences ({len(story.differences)})</h2>')
    if not story.differences:
        out.append("<p>The versions agree.</p>")
    for diff in story.differences:
        out.append(f'<div class="difference" data-kind="{_e(diff.kind)}">')
        out.append(
            f'<h3><span class="kind kind-{_e(diff.kind)}">{_e(diff.kind)}</span>'
            f"{_e(diff.context)}</h3>"
        )
        out.append("<table><tr><th>value</th><th>members</th></tr>")
        for value, members in diff.variants.items():
            who = ", ".join(
                f'<sup class="sources">{labels.get(m, m)}</sup> {_e(m)}' for m in members
            )
            out.append(f'<tr><td class="value">{_e(value)}</td><td>{who}</td></tr>')
        out.append("</table></div>")
    out.append("</section></article>")
    return "\n".join(out)


def render_html(stories: Sequence[Story]) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external assets)."""
    title = stories[0].title if len(stories) == 1 else f"{len(stories)} stories"
    body = "\n".join(_story_html(s) for s in stories) or "<p>No stories.</p>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
