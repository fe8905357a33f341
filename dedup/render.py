"""Render canonical stories for people: Markdown, one self-contained HTML page, or JSON lines.

Why: a merged story is only trusted when a reader can see who says what. Each story opens
with the facts in dispute (numbers, dates, names: value and the members that say it), so a
disagreement (143 vs 144 dead) is the first thing a reader sees; sentences only some versions
carry follow as one line per member ("4 sentences only in [1]"), and the text marks each
sentence with the members that carry it. Several stories open with an index. HTML needs no
network, no scripts and no external assets: the file can be mailed or archived as is.

Every value printed comes from a file that may be hostile (a ``stories.jsonl`` from
anywhere): each one is escaped for the format, ids and labels included.

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
import typing
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import quote

from dedup.records import Difference, Story, story_to_dict

__all__ = ["FORMATS", "render", "render_html", "render_json", "render_markdown"]

# The formats ``dedup stories --format`` offers; ``render`` also takes the spellings
# "markdown" and "jsonl".
Format = Literal["md", "html", "json"]
FORMATS: tuple[Format, ...] = typing.get_args(Format)


def render(stories: Iterable[Story], fmt: Format | Literal["markdown", "jsonl"] = "md") -> str:
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


# --------------------------------------------------------------------------- shared

# Facts first: numbers, dates, names (and any other kind a file names), then sentences.
_KIND_ORDER = {"number": 0, "date": 1, "name": 2}
_SENTENCE = "sentence"


def _versions(story: Story) -> list[str]:
    """The members that speak for themselves, in member order: all but verbatim copies,
    which the story counts with the version they copy (``Story.copies``)."""
    copied = {c for ids in story.copies.values() for c in ids}
    return [m for m in story.members if m not in copied]


def _labels(story: Story) -> dict[str, str]:
    """Short labels 1..n for the versions, in the story's (sorted) member order."""
    return {member: str(i) for i, member in enumerate(_versions(story), 1)}


def _copies_note(story: Story, member: str) -> str:
    """" (+3 verbatim copies)" after a version others copy, else ""."""
    n = len(story.copies.get(member, ()))
    return f" (+{n} verbatim {'copy' if n == 1 else 'copies'})" if n else ""


def _size_note(story: Story) -> str:
    """"3 member(s)", and how many versions they are when some are verbatim copies."""
    versions = len(_versions(story))
    if versions == len(story.members):
        return f"{len(story.members)} member(s)"
    return f"{len(story.members)} members, {versions} distinct version(s)"


def _agree_note(labels: dict[str, str], agree: str) -> str:
    """``agree`` where there are versions (``_labels``) to compare; one version says so."""
    return agree if len(labels) > 1 else "One version: nothing to compare."


def _facts(story: Story) -> list[Difference]:
    """The story's differences other than sentences, numbers first, then dates, then names.

    ``merge`` already orders them so; a file written by an older version may not.
    """
    facts = [d for d in story.differences if d.kind != _SENTENCE]
    return sorted(facts, key=lambda d: _KIND_ORDER.get(str(d.kind), len(_KIND_ORDER)))


def _sentence_groups(story: Story) -> list[tuple[tuple[str, ...], int]]:
    """Sentence differences counted per set of members that carry them, in label order.

    Why: a sentence only one version has is a difference ``stories.jsonl`` keeps one by
    one, but a reader needs the count per version; the text marks each such sentence.
    """
    counts: dict[tuple[str, ...], int] = {}
    for diff in story.differences:
        if diff.kind == _SENTENCE:
            for members in diff.variants.values():
                key = tuple(members)
                counts[key] = counts.get(key, 0) + 1
    rank = {m: i for i, m in enumerate(story.members)}
    far = len(rank)
    return sorted(
        counts.items(), key=lambda kv: ([rank.get(m, far) for m in kv[0]], list(kv[0]))
    )


def _sentences_word(n: int) -> str:
    return f"{n} sentence" if n == 1 else f"{n} sentences"


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def _md(text: object) -> str:
    """Escape Markdown syntax so article text never turns into markup (or raw HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


def _md_sources(labels: dict[str, str], members: Iterable[str]) -> str:
    """``[1,3]``: the members' labels (the escaped id of one the story does not list)."""
    return "[" + ",".join(labels[m] if m in labels else _md(m) for m in members) + "]"


def _difference_title(diff: Difference) -> str:
    return f"{diff.kind}: {diff.context}" if diff.context else str(diff.kind)


def _markdown_index(stories: Sequence[Story]) -> list[str]:
    """A table of the stories: title, versions, facts in dispute, one-version sentences."""
    rows = [
        f"# Stories ({len(stories)})\n",
        "| story | versions | facts in dispute | sentences not in every version | cluster |",
        "| --- | --- | --- | --- | --- |",
    ]
    for story in stories:
        title, versions, facts, partial = _index_entry(story)
        rows.append(f"| {_md(title)} | {versions} | {facts} | {partial} | "
                    f"{_md(story.cluster_id)} |")
    return [*rows, ""]


def _index_entry(story: Story) -> tuple[str, int, int, int]:
    """What both indexes show of a story: title, versions, facts in dispute, sentences not
    in every version (raw values: each renderer escapes them its own way)."""
    partial = sum(n for _, n in _sentence_groups(story))
    return story.title or story.cluster_id, len(_versions(story)), len(_facts(story)), partial


def render_markdown(stories: Sequence[Story]) -> str:
    """Stories as Markdown: title, members, the facts in dispute as a table, sentences only
    some versions carry counted per member, then the text with [sources] per sentence.
    More than one story opens with an index."""
    parts: list[str] = _markdown_index(stories) if len(stories) > 1 else []
    for story in stories:
        labels = _labels(story)
        parts.append(f"# {_md(story.title or story.cluster_id)}\n")
        parts.append(
            f"Cluster {_md(story.cluster_id)} · base {_md(story.base)} · {_size_note(story)}\n"
        )
        parts.append("Members: " + "; ".join(f"[{labels[m]}] {_md(m)}{_copies_note(story, m)}"
                                             for m in labels))
        parts.append("")
        facts = _facts(story)
        parts.append(f"## Facts in dispute ({len(facts)})\n")
        if facts:
            parts.append("| kind | about | what each version says |")
            parts.append("| --- | --- | --- |")
            for diff in facts:
                says = " · ".join(
                    f"{_md(value)} {_md_sources(labels, members)}"
                    for value, members in diff.variants.items()
                )
                parts.append(f"| {_md(diff.kind)} | {_md(diff.context)} | {says} |")
        else:
            parts.append(_agree_note(labels, "The versions agree on every number, date and name."))
        parts.append("")
        groups = _sentence_groups(story)
        if groups:
            parts.append(
                "Sentences not in every version: "
                + "; ".join(
                    f"{_sentences_word(n)} only in {_md_sources(labels, members)}"
                    for members, n in groups
                )
                + "."
            )
        elif not facts and len(labels) > 1:
            parts.append("The versions agree.")
        parts.append("")
        parts.append("## Text\n")
        for sentence in story.sentences:
            parts.append(f"{_md(sentence.text)} {_md_sources(labels, sentence.sources)}")
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font: 16px/1.5 Georgia, serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       color: #1d1d1f; background: #fff; }
article.story { border-top: 3px solid #333; margin-bottom: 3rem; padding-top: .5rem;
                content-visibility: auto; contain-intrinsic-size: auto 40rem; }
h1 { font-size: 1.6rem; margin: .3rem 0; }
.meta, .legend, .summary { font: 13px/1.4 system-ui, sans-serif; color: #555; }
.legend span { margin-right: .8rem; }
p.sentence { margin: .35rem 0; }
p.sentence.partial { border-left: 3px solid #e0a800; padding-left: .5rem; }
sup.sources { font: 11px system-ui, sans-serif; color: #fff; background: #5b6b7c;
              border-radius: 3px; padding: 0 .25rem; margin-left: .2rem; }
mark { background: #ffe58a; padding: 0 .1rem; }
section.facts h2, nav.index h2 { font-size: 1.15rem; margin: .8rem 0 .3rem; }
.kind { text-transform: uppercase; font-size: 11px; letter-spacing: .05em; color: #fff;
        border-radius: 3px; padding: 0 .3rem; background: #566573; }
.kind-number { background: #b03a2e; } .kind-date { background: #1f618d; }
.kind-name { background: #7d3c98; }
td.values .variant { margin-right: .9rem; white-space: nowrap; }
ul.summary { margin: .5rem 0; padding-left: 1.2rem; }
table { border-collapse: collapse; font: 14px system-ui, sans-serif; }
th, td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
nav.index { margin-bottom: 2rem; }
nav.index td.n { text-align: right; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(labels: dict[str, str], member: str) -> str:
    """A member's label badge (its escaped id when the story does not list it)."""
    return (
        f'<sup class="sources" title="{_e(member)}">{_e(labels.get(member, member))}</sup>'
    )


def _highlighter(diffs: Sequence[Difference]) -> re.Pattern[str] | None:
    """A pattern for the disputed values (raw text), longest first, whole words only."""
    values = {v for d in diffs if d.kind != _SENTENCE for v in d.variants if v.strip()}
    if not values:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _marked(text: str, marks: re.Pattern[str] | None) -> str:
    """``text`` escaped, with every disputed value in a ``<mark>``: the raw text is split
    first and each piece escaped, so a mark never lands inside an entity."""
    if marks is None:
        return _e(text)
    out: list[str] = []
    at = 0
    for m in marks.finditer(text):
        out.append(_e(text[at : m.start()]))
        out.append(f"<mark>{_e(m.group(0))}</mark>")
        at = m.end()
    out.append(_e(text[at:]))
    return "".join(out)


def _anchor(story: Story) -> str:
    """The ``href`` of a story's section (its id, percent-encoded: always a fragment)."""
    return "#" + quote(story.cluster_id, safe="")


def _facts_html(story: Story, labels: dict[str, str]) -> list[str]:
    facts = _facts(story)
    out = [f'<section class="facts"><h2>Facts in dispute ({len(facts)})</h2>']
    if facts:
        out.append(
            '<table class="facts"><tr><th>kind</th><th>about</th>'
            "<th>what each version says</th></tr>"
        )
        for diff in facts:
            variants = " ".join(
                f'<span class="variant"><mark class="value">{_e(value)}</mark>'
                + "".join(_badge(labels, m) for m in members)
                + "</span>"
                for value, members in diff.variants.items()
            )
            kind = _e(diff.kind)
            out.append(
                f'<tr class="difference" data-kind="{kind}">'
                f'<td><span class="kind kind-{kind}">{kind}</span></td>'
                f'<td class="context">{_e(diff.context)}</td>'
                f'<td class="values">{variants}</td></tr>'
            )
        out.append("</table>")
    else:
        note = _agree_note(labels, "The versions agree on every number, date and name.")
        out.append(f'<p class="summary">{_e(note)}</p>')
    groups = _sentence_groups(story)
    if groups:
        out.append('<ul class="summary sentences">')
        for members, n in groups:
            badges = "".join(_badge(labels, m) for m in members)
            out.append(
                f'<li class="sentence-group" data-sources="{_e(" ".join(members))}" '
                f'data-count="{n}">{_sentences_word(n)} only in {badges}</li>'
            )
        out.append("</ul>")
    elif not facts and len(labels) > 1:
        out.append('<p class="summary">The versions agree.</p>')
    out.append("</section>")
    return out


def _story_html(story: Story) -> str:
    labels = _labels(story)
    out = [f'<article class="story" id="{_e(story.cluster_id)}">']
    out.append(f"<h1>{_e(story.title or story.cluster_id)}</h1>")
    out.append(
        f'<p class="meta">cluster <code>{_e(story.cluster_id)}</code> · base '
        f"<code>{_e(story.base)}</code> · {_size_note(story)}</p>"
    )
    legend = "".join(f"<span>{_badge(labels, m)} {_e(m)}{_e(_copies_note(story, m))}</span>"
                     for m in labels)
    out.append(f'<p class="legend">{legend}</p>')
    out.extend(_facts_html(story, labels))
    out.append('<div class="text">')
    marks = _highlighter(story.differences)
    everyone = set(labels)
    for sentence in story.sentences:
        partial = " partial" if set(sentence.sources) != everyone else ""
        ids = " ".join(sentence.sources)
        badge = ",".join(labels.get(m, m) for m in sentence.sources)
        out.append(
            f'<p class="sentence{partial}" data-sources="{_e(ids)}">'
            f"{_marked(sentence.text, marks)}"
            f'<sup class="sources" title="{_e(", ".join(sentence.sources))}">{_e(badge)}</sup></p>'
        )
    out.append("</div></article>")
    return "\n".join(out)


def _table_row(*cells: tuple[object, str]) -> str:
    """A ``<tr>`` of (HTML content, CSS class) cells; content is not escaped here."""
    return "<tr>" + "".join(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>"
                            for content, css in cells) + "</tr>"


def _index_html(stories: Sequence[Story]) -> str:
    """The table of stories a page of several opens with, each title linking to its story."""
    rows = [
        f'<nav class="index"><h2>Stories ({len(stories)})</h2>',
        "<table><tr><th>story</th><th>versions</th><th>facts in dispute</th>"
        "<th>sentences not in every version</th></tr>",
    ]
    for story in stories:
        title, versions, facts, partial = _index_entry(story)
        link = f'<a href="{_e(_anchor(story))}">{_e(title)}</a>'
        rows.append(_table_row((link, ""), (versions, "n"), (facts, "n facts"), (partial, "n")))
    rows.append("</table></nav>")
    return "\n".join(rows)


def render_html(stories: Sequence[Story]) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external assets); more than
    one story opens with an index that links to each."""
    title = stories[0].title if len(stories) == 1 else f"{len(stories)} stories"
    body = "\n".join(_story_html(s) for s in stories) or "<p>No stories.</p>"
    if len(stories) > 1:
        body = _index_html(stories) + "\n" + body
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
