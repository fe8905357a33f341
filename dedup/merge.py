"""Merge one cluster into a canonical story that records provenance and disagreements.

Why this shape: readers want one story per event, but the versions of that story disagree
(143 vs 144 dead, Smith vs Smyth, one outlet has a fact the others lack). The story keeps
the most central, most complete member as its backbone, adds every sentence only other
versions carry where it fits, and lists every disagreement once with who says what.

Everything is regular expressions and bag-of-words cosine: no model downloads.

Example:
    >>> from dedup.records import Article
    >>> a = Article("a", "At least 143 people were killed in the attack.", title="Attack")
    >>> b = Article("b", "At least 144 people were killed in the attack.", title="Attack")
    >>> story = merge([a, b])
    >>> [(d.kind, d.variants) for d in story.differences]
    [('number', {'143': ('a',), '144': ('b',)})]
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from typing import Any

from dedup.config import Config, MergeConfig
from dedup.normalize import (
    STOPWORDS,
    clean_text,
    content_tokens,
    split_sentences,
    strip_boilerplate,
    tokens,
)
from dedup.records import Article, Difference, DifferenceKind, Story, StorySentence

__all__ = ["cluster_id_for", "member_sentences", "merge", "story_from_dict", "story_to_dict"]


def cluster_id_for(member_ids: Iterable[str]) -> str:
    """Stable cluster id: 'c' + first 12 hex of sha1 of the sorted member ids joined by newline.

    The clustering stage uses the same formula, so a story and its cluster share an id.
    """
    joined = "\n".join(sorted(member_ids))
    return "c" + hashlib.sha1(joined.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------- text per member

_TERMINAL = re.compile(r"[.!?][\"')\]]*$")
# A page-navigation line glued to the article's first line ("NEXT ... are decreasingThe U.S.
# provided ..."): the navigation part ends at a lower->upper case join with no space.
_GLUED_NAV = re.compile(r"^(?i:prev|previous|next)\s+(?:\S+\s+){2,}?\S*?[a-z0-9](?=[A-Z][a-z])")


# Re-joined tokenised sources (ecbplus-dev) write "5. 9", "120, 000", "12: 52 p. m.": one
# number each. Only forms prose does not use are rejoined (a small number before ". ",
# exactly ", 000", an hour before ": "). normalize.clean_text is the better home for this.
_SPLIT_NUMBER = [
    (re.compile(r"(?<![\d.,])(\d{1,2})\. (\d)(?!\d*\. [A-Z])"), r"\1.\2"),
    (re.compile(r"(?<![\d.,])(\d{1,3}), (000)\b"), r"\1,\2"),
    (re.compile(r"(?<![\d.,:])([01]?\d|2[0-3]): ([0-5]\d)\b"), r"\1:\2"),
    (re.compile(r"\b([ap])\. m\.", re.IGNORECASE), r"\1.m."),
]


def _rejoin_numbers(text: str) -> str:
    for pattern, repl in _SPLIT_NUMBER:
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


def _content_lines(text: str) -> tuple[list[str], float]:
    """Cleaned content lines and the share of characters that were boilerplate."""
    cleaned = clean_text(_rejoin_numbers(text))
    raw = [ln.strip() for ln in cleaned.split("\n") if ln.strip()]
    fixed = [_unglue(ln) for ln in raw]
    kept = strip_boilerplate("\n".join(fixed))
    total = sum(len(ln) for ln in raw)
    share = 1.0 - sum(len(ln) for ln in kept) / total if total else 0.0
    return kept, max(0.0, share)


def member_sentences(article: Article, config: MergeConfig | None = None) -> tuple[str, list[str]]:
    """The title and body sentences a member contributes, with boilerplate removed.

    ``clean_text`` -> ``strip_boilerplate`` -> ``split_sentences``. A title that is page
    furniture is dropped; a "title" that is really a paragraph (several sentences or more than
    ``max_title_words`` words, as when a plain-text file's first line is the lead) is moved
    back into the body. Without a usable title the first content sentence is the title. A
    headline (no closing punctuation) repeated as a body line is not a sentence of the body.
    """
    cfg = config or MergeConfig()
    lines, _ = _content_lines(article.text)
    title = ""
    if article.title.strip():
        title_lines, _ = _content_lines(article.title)
        title = " ".join(title_lines)
        if title and (
            len(split_sentences([title])) > 1 or len(title.split()) > cfg.max_title_words
        ):
            if not lines or lines[0].casefold() != title.casefold():
                lines = [title, *lines]
            title = ""
    sentences = split_sentences(lines)
    if not title and sentences:
        title = sentences[0]
    if title and not _TERMINAL.search(title):
        key = title.casefold()
        sentences = [s for s in sentences if s.casefold() != key]
    return title, sentences


# --------------------------------------------------------------------------- similarity


def _stem(token: str) -> str:
    """A light suffix stripper so 'deaths'/'death' and 'warned'/'warning' meet."""
    if token.endswith("'s"):
        token = token[:-2]
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: len(token) - len(suffix)] + repl
    return token


def _stems(text: str) -> list[str]:
    """Content stems of a text, numbers left out (they are compared, not matched on)."""
    return [
        _stem(t) for t in tokens(text) if t not in STOPWORDS and not any(c.isdigit() for c in t)
    ]


def _vector(text: str) -> dict[str, float]:
    """Unit-length term-frequency vector of content stems; every number counts as '#'.

    Numbers are what versions disagree on, so their values must not keep two statements of
    one claim apart; their presence still helps align short lines ("She was 85.").
    """
    counts = Counter(
        "#" if any(c.isdigit() for c in t) else _stem(t) for t in tokens(text) if t not in STOPWORDS
    )
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return {k: v / norm for k, v in counts.items()} if norm else {}


_EPS = 1e-9  # cosine of {a, b} and {a, c} is 0.5 up to rounding: count it as 0.5


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def _containment(small: frozenset[str], big: frozenset[str]) -> float:
    """Share of ``small``'s content stems that ``big`` also has (a split or joined sentence)."""
    return len(small & big) / len(small) if small else 0.0


# --------------------------------------------------------------------------- members and base


@dataclass(slots=True)
class _Member:
    article: Article
    title: str
    sentences: list[str]
    vectors: list[dict[str, float]]
    stemsets: list[frozenset[str]]
    boilerplate: float
    doc: dict[str, float]

    @property
    def id(self) -> str:
        return self.article.id


def _prepare(article: Article, config: MergeConfig) -> _Member:
    title, sentences = member_sentences(article, config)
    _, share = _content_lines(article.text)
    return _Member(
        article=article,
        title=title,
        sentences=sentences,
        vectors=[_vector(s) for s in sentences],
        stemsets=[frozenset(_stems(s)) for s in sentences],
        boilerplate=share,
        doc=_vector(" ".join(sentences)),
    )


def _published_key(value: datetime | None) -> tuple[bool, float]:
    if value is None:
        return (True, 0.0)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (False, value.timestamp())


def _base_scores(members: Sequence[_Member], config: MergeConfig) -> list[float]:
    """centrality + completeness - boilerplate share, per member (see ``merge``)."""
    n = len(members)
    scores = []
    for i, m in enumerate(members):
        others = [o for j, o in enumerate(members) if j != i]
        if not others:
            scores.append(1.0 - m.boilerplate)
            continue
        centrality = sum(_cosine(m.doc, o.doc) for o in others) / (n - 1)
        claims = carried = 0
        for o in others:
            for vec in o.vectors:
                claims += 1
                if any(_cosine(vec, mv) >= config.align_threshold - _EPS for mv in m.vectors):
                    carried += 1
        completeness = carried / claims if claims else 1.0
        scores.append(centrality + completeness - m.boilerplate)
    return scores


def _order_members(members: list[_Member], config: MergeConfig) -> list[_Member]:
    """Base first, then the rest by the same score; ties by earliest published, then id."""
    scores = _base_scores(members, config)
    ranked = sorted(
        zip(scores, members, strict=True),
        key=lambda sm: (-round(sm[0], 9), _published_key(sm[1].article.published), sm[1].id),
    )
    return [m for _, m in ranked]


# --------------------------------------------------------------------------- alignment


@dataclass(slots=True)
class _Node:
    """One story sentence: the member sentences (member id -> indices) that state it."""

    carriers: dict[str, list[int]] = field(default_factory=dict)
    reps: list[tuple[str, int]] = field(default_factory=list)


def _align(ordered: Sequence[_Member], config: MergeConfig) -> list[_Node]:
    """Build the story: the base's sentences, then each member aligned against it.

    Greedy best-match one-to-one (cosine >= ``align_threshold``) against the story built so
    far; a sentence contained in a story sentence (a split sentence of a near-copy) is attached
    to it as well; the rest are inserted after the story sentence their predecessor landed in.
    """
    by_id = {m.id: m for m in ordered}
    base = ordered[0]
    story = [_Node({base.id: [i]}, [(base.id, i)]) for i in range(len(base.sentences))]
    for member in ordered[1:]:
        if not member.sentences:
            continue
        pairs: list[tuple[float, int, int]] = []
        for si, vec in enumerate(member.vectors):
            for ni, node in enumerate(story):
                sim = max(_cosine(vec, by_id[mid].vectors[k]) for mid, k in node.reps)
                if sim >= config.align_threshold - _EPS:
                    pairs.append((sim, si, ni))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        placed: dict[int, int] = {}
        used: set[int] = set()
        for _, si, ni in pairs:
            if si in placed or ni in used:
                continue
            placed[si] = ni
            used.add(ni)
        for si, stems in enumerate(member.stemsets):
            if si in placed or len(stems) < 3:
                continue
            best, best_ni = 0.0, -1
            for ni, node in enumerate(story):
                c = max(_containment(stems, by_id[mid].stemsets[k]) for mid, k in node.reps)
                if c > best:
                    best, best_ni = c, ni
            if best >= config.containment_threshold:
                placed[si] = best_ni
        node_of = {si: story[ni] for si, ni in placed.items()}
        for si in range(len(member.sentences)):
            if si in node_of:
                continue
            new = _Node({}, [(member.id, si)])
            prev = next((node_of[p] for p in range(si - 1, -1, -1) if p in node_of), None)
            if prev is not None:
                at = story.index(prev) + 1
            else:
                nxt = next(
                    (node_of[p] for p in range(si + 1, len(member.sentences)) if p in node_of),
                    None,
                )
                at = story.index(nxt) if nxt is not None else len(story)
            story.insert(at, new)
            node_of[si] = new
        for si in range(len(member.sentences)):
            node = node_of[si]
            node.carriers.setdefault(member.id, []).append(si)
            if len(node.reps) < config.max_node_representatives and (member.id, si) not in (
                node.reps
            ):
                node.reps.append((member.id, si))
    # A member whose long sentence states a story sentence it was not aligned to still
    # carries that claim (a joined sentence): add it to the sources, not to the text.
    for node in story:
        mid, k = node.reps[0]
        stems = by_id[mid].stemsets[k]
        if len(stems) < 3:
            continue
        for member in ordered:
            if member.id not in node.carriers and any(
                _containment(stems, other) >= config.containment_threshold
                for other in member.stemsets
            ):
                node.carriers[member.id] = []
    return story


# --------------------------------------------------------------------------- mentions

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_RE = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_DAY_RE = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR_RE = r"(?:1[89]\d\d|20\d\d)"
_DATE = re.compile(
    rf"""\b(?:
        (?P<iso>\d{{4}}-\d{{2}}-\d{{2}})
      | (?P<md>{_MONTH_RE}\s+{_DAY_RE})(?:,?\s+(?P<mdy>{_YEAR_RE}))?(?!\d)
      | (?P<dm>{_DAY_RE}\s+{_MONTH_RE})(?:,?\s+(?P<dmy>{_YEAR_RE}))?
      | (?P<my>{_MONTH_RE}),?\s+(?P<myy>{_YEAR_RE})
      | (?P<wd>Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)
      | (?P<time>(?:[01]?\d|2[0-3]):[0-5]\d)(?:\s*(?P<ampm>[ap])\.?m\b\.?)?
      | (?P<year>{_YEAR_RE})
    )\b""",
    re.VERBOSE,
)
# Only these words before a bare four-digit number make it a year ("since 2004"); otherwise
# "2000 people" is a count.
_YEAR_CUES = frozenset(
    """in since of by until from before after during year early late mid end spring summer
    autumn fall winter between and through""".split()
)
_NUMBER = re.compile(
    r"(?<![\w.])(?P<cur>[$€£])?(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?"
    r"(?:\s*(?P<scale>million|billion|trillion|thousand|hundred|bn|m)\b)?(?P<pct>\s*%)?"
)
_NAME_WORD = r"(?:[A-Z][a-z]+(?:[-'][A-Za-z]+)*|[A-Z][A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z0-9]+)*"
_NAME_WORD += r"|[A-Z]\.(?:[A-Z]\.)*)"
_NAME = re.compile(
    rf"(?<![\w'-]){_NAME_WORD}(?:\s+(?:(?:of|de|van|von|der|al|bin|la|du)\s+)?{_NAME_WORD})*"
)
_NOT_NAMES = frozenset(
    "i mr mrs ms dr a an the it he she we they this that these those there here".split()
)
# Words whose presence near a number names its role, so rewrites ("143 people were killed",
# "the deaths of 144 people") still compare the same count. Prefixes of stems.
_ROLES = {
    "killed": ("kill", "dead", "death", "die", "fatal", "slain", "toll", "live", "life"),
    "injured": ("injur", "wound", "hurt", "hospital"),
    "arrested": ("arrest", "detain", "detention", "custody", "suspect"),
    "missing": ("missing", "unaccounted"),
    "evacuated": ("evacuat", "displac", "homeless"),
}
_UNIT_SKIP = frozenset("more than least about around nearly almost some".split())


@dataclass(slots=True)
class _Mention:
    kind: DifferenceKind
    value: str  # as written
    key: Any  # normalised value: equal keys agree
    member: str
    left: list[str]  # tokens before, nearest last
    right: list[str]  # tokens after
    unit: str = ""
    context: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    sole: bool = False  # the only mention of its kind in its sentence


def _roles(stems: Iterable[str]) -> frozenset[str]:
    return frozenset(
        role for s in stems for role, prefixes in _ROLES.items() if s.startswith(prefixes)
    )


def _date_key(m: re.Match[str]) -> dict[str, int]:
    """Components of a date mention; two mentions agree when no shared component differs."""
    g = m.groupdict()
    if g["iso"]:
        y, mo, d = g["iso"].split("-")
        return {"year": int(y), "month": int(mo), "day": int(d)}
    key: dict[str, int] = {}
    md = g["md"] or g["dm"]
    if md:
        parts = md.replace(".", " ").split()
        month = next(p for p in parts if not p[0].isdigit())
        day = next(p for p in parts if p[0].isdigit())
        key["month"] = _MONTHS[month.casefold()]
        key["day"] = int(re.sub(r"\D", "", day))
        year = g["mdy"] or g["dmy"]
        if year:
            key["year"] = int(year)
    elif g["my"]:
        key["month"] = _MONTHS[g["my"].rstrip(".").casefold()]
        key["year"] = int(g["myy"])
    elif g["time"]:
        hour, minute = (int(x) for x in g["time"].split(":"))
        if g["ampm"] and g["ampm"].lower() == "p" and hour < 12:
            hour += 12
        key["time"] = hour * 60 + minute
    elif g["wd"]:
        key["weekday"] = _WEEKDAYS.index(g["wd"].casefold())
    elif g["year"]:
        key["year"] = int(g["year"])
    return key


# Words of a dateline ("Updated 10:20 am EDT, Monday, May 3, 2013"): a line made only of
# these, numbers and dates is publication metadata, not a claim about the event.
_DATELINE_WORDS = frozenset(
    """am pm a.m p.m edt est pdt pst cdt cst mdt mst gmt bst cet cest ist utc et pt updated
    update posted published last modified created date time""".split()
)


def _is_metadata(sentence: str) -> bool:
    """True for dateline and timestamp lines, whose differences are no disagreement."""
    words = [
        t
        for t in tokens(sentence)
        if t not in STOPWORDS
        and t not in _DATELINE_WORDS
        and t not in _MONTHS
        and t not in _WEEKDAYS
        and not any(c.isdigit() for c in t)
    ]
    return not words


def _sides(sentence: str, start: int, end: int) -> tuple[list[str], list[str]]:
    return tokens(sentence[:start]), tokens(sentence[end:])


def _mentions(sentence: str, member: str, known_names: frozenset[str]) -> list[_Mention]:
    """Numbers, dates and names in one sentence, each with the words around it."""
    found: list[_Mention] = []
    if _is_metadata(sentence):
        return found
    taken: list[tuple[int, int]] = []
    for m in _DATE.finditer(sentence):
        left, right = _sides(sentence, m.start(), m.end())
        if m.group("year") and not (left and left[-1] in _YEAR_CUES):
            continue
        key = _date_key(m)
        found.append(_Mention("date", m.group(0), key, member, left, right, unit=next(iter(key))))
        taken.append(m.span())
    for m in _NUMBER.finditer(sentence):
        if any(s <= m.start() < e for s, e in taken):
            continue
        left, right = _sides(sentence, m.start(), m.end())
        num = m.group("num").replace(",", "")
        value = float(num + (m.group("dec") or ""))
        scale = (m.group("scale") or "").lower()
        mult = {"thousand": 1e3, "hundred": 1e2, "million": 1e6, "m": 1e6, "bn": 1e9}
        value *= mult.get(scale, {"billion": 1e9, "trillion": 1e12}.get(scale, 1.0))
        if m.group("pct"):
            unit = "percent"
        else:
            rest = [t for t in right if t not in _UNIT_SKIP]
            unit = _stem(rest[0]) if rest and not rest[0][0].isdigit() else ""
            if unit == "per" and len(rest) > 1:
                unit = "percent" if rest[1] == "cent" else unit
            if unit == "percent" or unit == "pct":
                unit = "percent"
        if m.group("cur"):
            unit = m.group("cur") + unit
        window = [t for t in left[-5:] + right[:5] if t not in STOPWORDS]
        context = frozenset(_stem(t) for t in window if not t[0].isdigit()) - {unit}
        found.append(
            _Mention(
                "number",
                m.group(0).strip(),
                round(value, 6),
                member,
                left,
                right,
                unit=unit,
                context=context,
                roles=_roles(context),
            )
        )
        taken.append(m.span())
    for m in _NAME.finditer(sentence):
        if any(s < m.end() and m.start() < e for s, e in taken):
            continue
        words = m.group(0).split()
        at = m.start()
        # Sentence-initial capitals are names only if the cluster also writes them
        # capitalised mid-sentence ("Putin also ..." yes, "Citing ..." / "However ..." no).
        if not sentence[:at].strip(" \"'([") and words[0].strip(".") not in known_names:
            at += len(words[0])
            words = words[1:]
            while words and words[0] in ("of", "de", "van", "von", "der", "al", "la", "du"):
                at += len(words[0]) + 1
                words = words[1:]
        while words and (words[-1].casefold() in _MONTHS or words[-1].casefold() in _WEEKDAYS):
            words.pop()
        while words and (
            words[0].casefold() in _NOT_NAMES
            or words[0].casefold() in _MONTHS
            or words[0].casefold() in _WEEKDAYS
        ):
            at = sentence.index(words[0], at) + len(words[0])
            words = words[1:]
        if not words:
            continue
        text = " ".join(words).removesuffix("'s")
        if text.casefold() in STOPWORDS or len(text) < 2 or text.casefold() in _DATELINE_WORDS:
            continue
        start = sentence.index(words[0], max(0, at - len(words[0]) - 1))
        left, right = _sides(sentence, start, start + len(text))
        found.append(_Mention("name", text, text.casefold(), member, left, right))
    kinds = Counter(m.kind for m in found)
    for mention in found:
        mention.sole = kinds[mention.kind] == 1
    return found


def _known_names(members: Iterable[_Member]) -> frozenset[str]:
    """Capitalised words the cluster writes mid-sentence: evidence they are names."""
    known: set[str] = set()
    for m in members:
        for s in m.sentences:
            for w in re.finditer(r"(?<=[\w,;:] )([A-Z][\w'.-]*)", s):
                known.add(w.group(1).strip("."))
    return frozenset(known)


# --------------------------------------------------------------------------- comparing


def _name_tokens(m: _Mention) -> set[str]:
    """Words of a name, plural 's' dropped so 'Yemeni' and 'Yemenis' agree."""
    words = re.sub(r"'s\b|\.", "", str(m.key)).replace("-", " ").split()
    return {w[:-1] if w.endswith("s") and len(w) > 2 else w for w in words}


def _agree(a: _Mention, b: _Mention) -> bool:
    """Same value: equal numbers, compatible date parts, or one name inside the other."""
    if a.kind == "date":
        ka, kb = a.key, b.key
        shared = set(ka) & set(kb)
        return bool(shared) and all(ka[k] == kb[k] for k in shared)
    if a.kind == "name":
        ta, tb = _name_tokens(a), _name_tokens(b)
        return ta <= tb or tb <= ta
    return bool(a.key == b.key)


def _role_score(a: _Mention, b: _Mention, aligned: bool, max_ratio: float = 2.0) -> float | None:
    """How surely ``a`` and ``b`` fill the same slot; None when they cannot."""
    if a.kind != b.kind:
        return None
    near = (
        (a.left[-1:] == b.left[-1:] and bool(a.left))
        + (a.right[:1] == b.right[:1] and bool(a.right))
        + (a.left[-2:] == b.left[-2:] and len(a.left) >= 2)
        + (a.right[:2] == b.right[:2] and len(a.right) >= 2)
    )
    if a.kind == "date":
        if not set(a.key) & set(b.key):
            return None
        if _agree(a, b):
            return 2.0 + near
        return 1.0 + near if near or (a.sole and b.sole) else None
    if a.kind == "name":
        if _agree(a, b):
            return 10.0 + near
        # A respelling (Smith / Smyth) pairs on its own; another name needs the same words
        # around it.
        spelling = SequenceMatcher(None, str(a.key), str(b.key)).ratio()
        if spelling >= 0.75:
            return 2.0 + spelling + near
        return float(near) if near >= 2 else None
    # numbers
    if a.unit != b.unit:
        return None
    if a.roles and b.roles and not (a.roles & b.roles):
        return None
    overlap = len(a.context & b.context)
    if not aligned:
        if not a.unit or not ((a.roles & b.roles) or overlap >= 2):
            return None
        low, high = sorted((abs(a.key), abs(b.key)))
        if high > max_ratio * low:
            return None  # 23 vs 1,500 in unaligned sentences: two counts, not one disputed
    elif not a.unit and not overlap and not near and not (a.sole and b.sole):
        return None
    union = len(a.context | b.context) or 1
    return 1.0 + overlap / union + near + (2.0 if a.key == b.key else 0.0)


def _slots(
    groups: Sequence[Sequence[_Mention]], aligned: bool, max_ratio: float = 2.0
) -> list[list[_Mention]]:
    """Group mentions of several members (one group each, in order) into same-role slots."""
    slots: list[list[_Mention]] = []
    for group in groups:
        opts: list[tuple[float, int, int]] = []
        for gi, mention in enumerate(group):
            for si, slot in enumerate(slots):
                if any(x.member == mention.member for x in slot):
                    continue
                score = _role_score(slot[0], mention, aligned, max_ratio)
                if score is not None:
                    opts.append((score, gi, si))
        opts.sort(key=lambda o: (-o[0], o[1], o[2]))
        done_g: set[int] = set()
        done_s: set[int] = set()
        for _, gi, si in opts:
            if gi in done_g or si in done_s:
                continue
            slots[si].append(group[gi])
            done_g.add(gi)
            done_s.add(si)
        slots.extend([mention] for gi, mention in enumerate(group) if gi not in done_g)
    return slots


def _variants(slot: Sequence[_Mention], rank: dict[str, int]) -> dict[str, tuple[str, ...]]:
    """value -> members; values that agree (143 / 143, Putin / Vladimir Putin) share one entry."""
    merged: list[tuple[_Mention, set[str]]] = []
    for mention in slot:
        for rep, members in merged:
            if _agree(rep, mention):
                members.add(mention.member)
                break
        else:
            merged.append((mention, {mention.member}))
    out = {rep.value: tuple(sorted(members, key=rank.__getitem__)) for rep, members in merged}
    return _sorted_variants(out, rank)


def _sorted_variants(
    variants: dict[str, tuple[str, ...]], rank: dict[str, int]
) -> dict[str, tuple[str, ...]]:
    """Values ordered by their first member (members are sorted by id), then by value."""
    return dict(sorted(variants.items(), key=lambda kv: (rank[kv[1][0]], kv[0])))


def _context(slot: Sequence[_Mention]) -> str:
    """The words around the first version's mention: after it for numbers, else around it."""
    first = slot[0]
    if first.kind == "number":
        # Prefer a version that names the role right after the number ("people were killed").
        best = next((m for m in slot if _roles(_stem(t) for t in m.right[:3])), first)
        words = best.right[:3] or best.left[-3:]
    elif first.kind == "date":
        words = first.left[-3:]
    else:
        words = [*first.left[-2:], "…", *first.right[:2]]
    return " ".join(words).strip(" …")


def _differences(
    story: Sequence[_Node], ordered: Sequence[_Member], config: MergeConfig
) -> list[Difference]:
    """Number, date and name disagreements within aligned sentences, numbers also across."""
    by_id = {m.id: m for m in ordered}
    rank = {m: i for i, m in enumerate(sorted(by_id))}
    known = _known_names(ordered)
    found: list[tuple[int, Difference]] = []
    pool: list[tuple[int, _Mention]] = []  # numbers left without a partner in their sentence
    for pos, node in enumerate(story):
        groups: list[list[_Mention]] = []
        for member in ordered:
            idxs = node.carriers.get(member.id)
            if not idxs:
                continue
            groups.append(
                [
                    mention
                    for k in idxs
                    for mention in _mentions(member.sentences[k], member.id, known)
                ]
            )
        for kind in ("number", "date", "name"):
            kind_groups = [[x for x in g if x.kind == kind] for g in groups]
            for slot in _slots([g for g in kind_groups if g], aligned=True):
                if len(slot) == 1 and kind == "number":
                    pool.append((pos, slot[0]))
                    continue
                variants = _variants(slot, rank)
                if len(variants) > 1:
                    found.append((pos, Difference(kind, _context(slot), variants)))
    # Rewrites state the same count in sentences too different to align ("At least 143
    # people were killed" / "resulting in the deaths of 144 people"): compare numbers that
    # play the same role (same unit, same role words) across the whole cluster.
    says = {(m.member, m.unit, m.key) for _, m in pool}
    by_member: dict[str, list[tuple[int, _Mention]]] = {}
    for pos, mention in pool:
        by_member.setdefault(mention.member, []).append((pos, mention))
    groups_x = [[m for _, m in by_member[mid]] for mid in by_id if mid in by_member]
    first_pos = {id(m): pos for pos, m in pool}
    for slot in _slots(groups_x, aligned=False, max_ratio=config.cross_number_max_ratio):
        if len(slot) < 2:
            continue
        values = {m.key for m in slot}
        # A member that also states the other value in that role elsewhere does not disagree.
        slot = [m for m in slot if not any((m.member, m.unit, v) in says for v in values - {m.key})]
        variants = _variants(slot, rank)
        if len(variants) > 1:
            pos = min(first_pos[id(m)] for m in slot)
            found.append((pos, Difference("number", _context(slot), variants)))
    # Sentences only some versions carry.
    members = [m.id for m in ordered]
    for pos, node in enumerate(story):
        missing = [mid for mid in sorted(members) if mid not in node.carriers]
        if not missing:
            continue
        mid, k = node.reps[0]
        text = by_id[mid].sentences[k]
        if len(content_tokens(text)) < config.min_sentence_words or _is_metadata(text):
            continue
        carriers = tuple(sorted(node.carriers, key=rank.__getitem__))
        context = "not in " + ", ".join(missing)
        found.append((pos, Difference("sentence", context, {text: carriers})))
    found.sort(key=lambda pd: pd[0])
    # The same disagreement repeated in several sentences (Smith / Smyth wherever the name
    # occurs) is one disagreement: same kind and same values, members united.
    merged: list[tuple[tuple[str, frozenset[str]], dict[str, set[str]], Difference]] = []
    for _, diff in found:
        names = frozenset(diff.variants)
        if diff.kind != "sentence":
            names = frozenset(v.casefold() for v in diff.variants)
        dkey = (str(diff.kind), names)
        for gkey, united, _first in merged:
            if gkey != dkey:
                continue
            fold = {v.casefold(): v for v in united}
            trial = {v: set(ids) for v, ids in united.items()}
            for value, ids in diff.variants.items():
                trial[fold.get(value.casefold(), value)].update(ids)
            everyone = [i for ids in trial.values() for i in ids]
            if len(everyone) == len(set(everyone)):  # nobody ends up saying both values
                united.clear()
                united.update(trial)
                break
        else:
            merged.append((dkey, {v: set(ids) for v, ids in diff.variants.items()}, diff))
    out = []
    for _, united, first in merged:
        variants = {v: tuple(sorted(ids, key=rank.__getitem__)) for v, ids in united.items()}
        out.append(Difference(first.kind, first.context, _sorted_variants(variants, rank)))
    return out


# --------------------------------------------------------------------------- public API


def merge(
    articles: Sequence[Article], cluster_id: str | None = None, config: Config | None = None
) -> Story:
    """Merge one cluster into its canonical story, with provenance and differences.

    Base rule: each member scores ``centrality + completeness - boilerplate``, where
    centrality is its mean content-word cosine to the other members, completeness the share
    of the other members' sentences it has an aligned sentence for (cosine >=
    ``align_threshold``), and boilerplate the share of its characters ``normalize`` strips.
    The highest score is the base; ties go to the earliest ``published``, then the smallest id.

    The story is the base's sentences plus, where they fit, the sentences only other versions
    carry; each story sentence lists every member that states it. Every sentence of every
    member is either in the story or aligned to a story sentence. Differences: numbers in the
    same role (unit and nearby words), dates and names that disagree between aligned
    sentences, numbers in the same role across the cluster, and story sentences that not all
    members carry; each disagreement once. The result does not depend on input order.

    Example:
        >>> from dedup.records import Article
        >>> story = merge([Article("x", "One sentence."), Article("y", "One sentence.")])
        >>> story.base, story.differences
        ('x', ())
    """
    cfg = (config or Config()).merge
    unique = {a.id: a for a in sorted(articles, key=lambda a: a.id)}
    members_sorted = tuple(sorted(unique))
    cid = cluster_id if cluster_id is not None else cluster_id_for(members_sorted)
    if not unique:
        return Story(cid, (), "", "", "", (), ())
    prepared = [_prepare(unique[i], cfg) for i in members_sorted]
    ordered = _order_members(prepared, cfg) if len(prepared) > 1 else prepared
    base = ordered[0]
    by_id = {m.id: m for m in ordered}
    rank = {m: i for i, m in enumerate(members_sorted)}
    story = _align(ordered, cfg) if base.sentences or len(ordered) > 1 else []
    sentences = tuple(
        StorySentence(
            by_id[node.reps[0][0]].sentences[node.reps[0][1]],
            tuple(sorted(node.carriers, key=rank.__getitem__)),
        )
        for node in story
    )
    differences = tuple(_differences(story, ordered, cfg)) if len(ordered) > 1 else ()
    title = base.title or next((m.title for m in ordered if m.title), "")
    return Story(
        cluster_id=cid,
        members=members_sorted,
        base=base.id,
        title=title,
        text="\n".join(s.text for s in sentences),
        sentences=sentences,
        differences=differences,
    )


def story_to_dict(story: Story) -> dict[str, Any]:
    """The JSON shape of a story (one line of ``stories.jsonl``)."""
    return {
        "cluster_id": story.cluster_id,
        "members": list(story.members),
        "base": story.base,
        "title": story.title,
        "text": story.text,
        "sentences": [{"text": s.text, "sources": list(s.sources)} for s in story.sentences],
        "differences": [
            {
                "kind": d.kind,
                "context": d.context,
                "variants": {value: list(ids) for value, ids in d.variants.items()},
            }
            for d in story.differences
        ],
    }


def story_from_dict(data: dict[str, Any]) -> Story:
    """Inverse of ``story_to_dict``: read a story back from ``stories.jsonl``."""
    return Story(
        cluster_id=str(data["cluster_id"]),
        members=tuple(data["members"]),
        base=str(data["base"]),
        title=str(data.get("title", "")),
        text=str(data.get("text", "")),
        sentences=tuple(
            StorySentence(str(s["text"]), tuple(s["sources"])) for s in data.get("sentences", [])
        ),
        differences=tuple(
            Difference(
                d["kind"],
                str(d.get("context", "")),
                {str(v): tuple(ids) for v, ids in d["variants"].items()},
            )
            for d in data.get("differences", [])
        ),
    )
