"""A member's text as the merger reads it: cleaned lines, sentences, title, boilerplate share.

Why a module of its own: cleaning is the one step every member needs (singletons too),
the batch pipeline runs it ahead on a worker (``member_text``), and its line cache is the
merger's largest memo.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dedup.caches import BoundedCache
from dedup.config import MergeConfig
from dedup.normalize import (
    clean_line,
    clean_text,
    is_boilerplate,
    split_sentences,
    strip_boilerplate,
)
from dedup.records import Article

_TERMINAL = re.compile(r"[.!?][\"')\]]*$")
# A page-navigation line glued to the article's first line ("NEXT ... are decreasingThe U.S.
# provided ..."): the navigation part ends at a lower->upper case join with no space.
_GLUED_NAV = re.compile(r"^(?i:prev|previous|next)\s+(?:\S+\s+){2,}?\S*?[a-z0-9](?=[A-Z][a-z])")


# Re-joined tokenised sources (ecbplus-dev) write "5. 9", "120, 000", "12: 52 p. m.": one
# number each. Only forms prose does not use are rejoined (a small number before ". ",
# exactly ", 000", an hour before ": "). normalize.clean_text is the better home for this.
# Each comes with a cheap search for text every match contains: patterns that open with a
# look-behind are tried at every position of the text, which was a tenth of merge time. For
# the same reason the first digit comes before the look-behind ("(?<![\d.,])\d" written as
# "\d(?<![\d.,]\d)": no such character before the digit).
SPLIT_NUMBER = [
    (re.compile(r"(\d(?<![\d.,]\d)\d?)\. (\d)(?!\d*\. [A-Z])"), r"\1.\2", re.compile(r"\. \d")),
    (re.compile(r"(\d(?<![\d.,]\d)\d{0,2}), (000)\b"), r"\1,\2", re.compile(", 000")),
    (re.compile(r"(?<![\d.,:])([01]?\d|2[0-3]): ([0-5]\d)\b"), r"\1:\2", re.compile(r": \d")),
    (re.compile(r"\b([ap])\. m\.", re.IGNORECASE), r"\1.m.", re.compile(r"\. [mM]\.")),
]


def _rejoin_numbers(text: str) -> str:
    for pattern, repl, needed in SPLIT_NUMBER:
        if needed.search(text):
            text = pattern.sub(repl, text)
    return text


def _unglue(line: str) -> str:
    """The article sentence glued to a navigation line, when there is one (else the line)."""
    m = _GLUED_NAV.match(line)
    if m:
        tail = line[m.end() :]
        if len(tail.split()) >= 8 and _TERMINAL.search(tail):
            return tail
    return line


def read_content_whole(text: str) -> tuple[list[str], list[str], float]:
    """``read_content`` the long way: the text cleaned at once."""
    cleaned = clean_text(_rejoin_numbers(text))
    raw = [ln.strip() for ln in cleaned.split("\n") if ln.strip()]
    fixed = [_unglue(ln) for ln in raw]
    kept = strip_boilerplate("\n".join(fixed))
    total = sum(len(ln) for ln in raw)
    share = 1.0 - sum(len(ln) for ln in kept) / total if total else 0.0
    return kept, split_sentences(kept), max(0.0, share)


class _Line(NamedTuple):
    """One raw line as ``read_content`` reads it, worked out once per distinct line (a tuple:
    a frozen dataclass took longer to build than the line to clean)."""

    length: int  # of the cleaned line: counts toward the boilerplate share
    text: str  # what a member keeps of it (a glued navigation part cut off)
    key: str  # ``strip_boilerplate``'s: a line repeated within a member is kept once
    furniture: bool
    sentences: tuple[str, ...]


_WHOLE_TEXT = _Line(0, "", "", True, ())  # the line needs its text cleaned at once
_MISSING = _Line(-1, "", "", True, ())  # not in the cache yet


def _line(raw: str) -> _Line | None:
    """``read_content``'s view of one raw line (None: blank)."""
    cleaned = clean_line(_rejoin_numbers(raw))
    if cleaned is None:
        return _WHOLE_TEXT
    if not cleaned:
        return None
    text = _unglue(cleaned).strip()
    furniture = is_boilerplate(text)
    sentences = () if furniture else tuple(split_sentences([text]))
    return _Line(len(cleaned), text, text.casefold(), furniture, sentences)


# Raw line -> ``_line``. Copies in a cluster repeat their paragraphs and the corpus repeats
# its furniture: about two lines in five were seen before (synthetic 100k). Bounded: at
# ~2^15 lines (a few MB) it starts over. ``dedup.merge.clear_caches`` empties it.
LINES: BoundedCache[str, _Line | None] = BoundedCache(1 << 15)


def read_content(text: str) -> tuple[list[str], list[str], float]:
    """Cleaned content lines, their sentences, and the share of characters that were
    boilerplate.

    The same as ``clean_text`` -> ``_unglue`` -> ``strip_boilerplate`` ->
    ``split_sentences`` over the whole text: every step but the last two works line by
    line (``normalize.clean_line``), and those two only need each line's key and verdict
    in order. A text that must be cleaned at once takes ``read_content_whole``.
    """
    cache = LINES
    lines: list[str] = []
    sentences: list[str] = []
    seen: set[str] = set()
    total = kept = 0
    for raw in text.split("\n"):
        if not raw:
            continue
        entry = cache.get(raw, _MISSING)
        if entry is _MISSING:
            entry = cache.put(raw, _line(raw))
        if entry is None:
            continue
        if entry is _WHOLE_TEXT:
            return read_content_whole(text)
        length, line, key, furniture, line_sentences = entry
        total += length
        if furniture or key in seen:
            continue
        seen.add(key)
        lines.append(line)
        sentences.extend(line_sentences)
        kept += len(line)
    share = 1.0 - kept / total if total else 0.0
    return lines, sentences, max(0.0, share)


def member_sentences(article: Article, config: MergeConfig | None = None) -> tuple[str, list[str]]:
    """The title and body sentences a member contributes, with boilerplate removed.

    ``clean_text`` -> ``strip_boilerplate`` -> ``split_sentences``. A title that is page
    furniture is dropped; a "title" that is really a paragraph (several sentences or more than
    ``max_title_words`` words, as when a plain-text file's first line is the lead) is moved
    back into the body. Without a usable title the first content sentence is the title. A
    headline (no closing punctuation) repeated as a body line is not a sentence of the body.
    """
    title, sentences, _ = member_text(article.text, article.title, config or MergeConfig())
    return title, sentences


# A member's title, sentences and boilerplate share: what ``merge`` reads of its text.
MemberText = tuple[str, list[str], float]



def member_text(text: str, title: str, cfg: MergeConfig) -> MemberText:
    """``member_sentences`` plus the boilerplate share, cleaning the body text only once.

    The batch pipeline has a worker compute it ahead, while the single-process stages run,
    and hands it to ``merge`` as ``cleaned``.
    """
    lines, sentences, share = read_content(text)
    raw_title = title
    title = ""
    if raw_title.strip():
        title = " ".join(read_content(raw_title)[0])
        if title:
            parts = split_sentences([title])
            if len(parts) > 1 or len(title.split()) > cfg.max_title_words:
                if not lines or lines[0].casefold() != title.casefold():
                    sentences = parts + sentences  # the title line before the body's
                title = ""
    if not title and sentences:
        title = sentences[0]
    if title and not _TERMINAL.search(title):
        key = title.casefold()
        sentences = [s for s in sentences if s.casefold() != key]
    return title, sentences, share
