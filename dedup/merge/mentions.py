"""Mentions: the numbers, dates and names a sentence states, each with the words around it.

Why: versions disagree on facts (143 vs 144 dead, Smith vs Smyth, Tuesday vs Wednesday),
and a fact is compared by what surrounds it. Everything is regular expressions: no model.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dedup.merge.similarity import Member, stem_word
from dedup.normalize import STOPWORDS, TOKEN, tokens
from dedup.records import DifferenceKind

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
# Both patterns open with a look-ahead for the characters a match can start with: the
# regex engine then skips to those instead of trying the whole pattern at every position
# (2.5x faster over sentences with digits). A date starts with a digit or the capital of a
# month or weekday; a number with a digit or a currency sign.
DATE = re.compile(
    rf"""(?=[\dJFMASONDTW])\b(?:
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
# Cardinal numbers written as words, as news style writes small counts ("killing ten
# people", "twenty-five", "a dozen", "two million"): the same counts as digits, so "ten" and
# "10" agree and "ten" and "twelve" differ. Values of the words; "a" counts only before a
# scale word ("a hundred", "a dozen"), "one" only where a digit could stand (``_counts_one``).
_UNIT_WORDS = "one two three four five six seven eight nine".split()
_TEEN_WORDS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
WORD_VALUES = {
    "zero": 0,
    **{w: i + 1 for i, w in enumerate(_UNIT_WORDS)},
    **{w: i + 10 for i, w in enumerate(_TEEN_WORDS.split())},
    **{w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS)},
}
_UNITS_RE = "|".join(_UNIT_WORDS)
_BIG_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
# Longer words first ("seventeen" before "seven", "sixty" before "six"). A compound is one
# number, hyphenated or not ("twenty-five", "twenty five", but not "twenty one-year-olds");
# an ordinal compound ("twenty-fifth") is none.
_SMALL_RE = (
    rf"(?:(?:{'|'.join(_TENS_WORDS)})(?:-(?:{_UNITS_RE})\b|\s+(?:{_UNITS_RE})\b(?!-))?"
    rf"|{_TEEN_WORDS.replace(' ', '|')}|{_UNITS_RE}|zero)\b"
    r"(?!-(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)\b)"
)
# Below a thousand ("five", "a hundred and fifty"), then falling scale words (``_scaled``),
# each with its own group ("two thousand five hundred", "one hundred thousand"). "a" alone
# is matched too: it counts only before a scale word ("a million", "a dozen").
_GROUP_RE = rf"(?:(?:{_SMALL_RE}|a)\s+hundred\b(?:\s+(?:and\s+)?{_SMALL_RE})?|{_SMALL_RE})"


def _scaled(scales: list[str]) -> str:
    """A scale word and what may follow it, given the scale words from the biggest still
    free: a group and a smaller scale word ("two thousand five hundred", "two million three
    thousand"), or a last group with nothing bigger after it ("a thousand and two"). Scale
    words fall strictly, so "one thousand and two thousand" is two numbers and "two thousand
    million" a scaled one."""
    bigs = "|".join(_BIG_WORDS)
    # Atomic: a last group followed by a scale word may not shrink to one that is not ("one
    # thousand and two hundred thousand" is not 1,000 and 2 hundred-fold).
    last = rf"(?>(?:and\s+)?{_GROUP_RE})(?!\s+(?:and\s+)?(?:{bigs})\b)"
    alternatives = []
    for i, word in enumerate(scales):
        smaller = _scaled(scales[i + 1 :])
        after = rf"(?:and\s+)?{_GROUP_RE}\s+(?:{smaller})|{last}" if smaller else last
        alternatives.append(rf"{word}\b(?:\s+(?:{after}))?")
    return "|".join(alternatives)


_FALLING = sorted(_BIG_WORDS, key=_BIG_WORDS.__getitem__, reverse=True)
_WORDS_RE = rf"(?:{_GROUP_RE}|a\b)(?:\s+(?:{_scaled(_FALLING)}))?"
# A number starts with a digit, a currency sign or the first letter of a number word.
NUMBER = re.compile(
    r"(?=[$€£\dzotfsenaZOTFSENA])(?<![\w.])(?P<cur>[$€£])?"
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+|\d+|(?i:(?P<words>{_WORDS_RE})))(?P<dec>\.\d+)?"
    r"(?:\s*(?P<scale>(?i:million|billion|trillion|thousand|hundred|dozen)|bn|m)\b)?"
    r"(?P<pct>\s*%)?"
)
_DIGIT = re.compile(r"\d")
_NAME_WORD = r"(?:[A-Z][a-z]+(?:[-'][A-Za-z]+)*|[A-Z][A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z0-9]+)*"
_NAME_WORD += r"|[A-Z]\.(?:[A-Z]\.)*)"
# The first word's capital comes first and the look-behind after it (``(?<![\w'-])`` before
# it, as "not such a character and then the capital"): a pattern that opens with a class is
# only tried where that class matches, one that opens with a look-behind at every position.
NAME = re.compile(
    r"[A-Z](?<![\w'-].)(?:[a-z]+(?:[-'][A-Za-z]+)*|[A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z0-9]+)*"
    rf"|\.(?:[A-Z]\.)*)(?:\s+(?:(?:of|de|van|von|der|al|bin|la|du)\s+)?{_NAME_WORD})*"
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
# Words that hedge a number ("nearly 300", "at least 12"): they say how sure, not what of.
_HEDGES = _UNIT_SKIP | frozenset(
    "roughly approximately approx estimated over under up just only exactly another most"
    .split())


@dataclass(slots=True)
class Mention:
    """A number, date or name one member states, with the tokens around it."""

    kind: DifferenceKind
    value: str  # as written
    key: Any  # normalised value: equal keys agree
    member: str
    left: list[str]  # tokens before, nearest last
    right: list[str]  # tokens after
    unit: str = ""
    # A number's label: the stem of the content word right before it ("magnitude" in
    # "magnitude 7.4", "injur" in "injuring 40"), which a rewrite may keep as the unit
    # ("a 7.2-magnitude quake") or keep while the word after changes ("injured 41, ...").
    label: str = ""
    bare: bool = False  # no unit: punctuation or a function word follows (``_bare``)
    context: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    sole: bool = False  # the only mention of its kind in its sentence
    # Set by ``find_mentions`` once the mention is complete (see ``_finish``): the nearest one
    # and two tokens on each side (None where missing), a name's words, and the id of the
    # mention ``find_mentions`` made (copies for other members keep it): scores are memoised by it.
    ends: tuple[Any, ...] = ()
    words: frozenset[str] = frozenset()
    origin: int = 0


def _finish(mention: Mention, sole: bool) -> None:
    """Fill the fields ``role_score`` reads on every comparison, once per mention."""
    left, right = mention.left, mention.right
    mention.sole = sole
    mention.ends = (
        left[-1] if left else None,
        right[0] if right else None,
        (left[-2], left[-1]) if len(left) >= 2 else None,
        (right[0], right[1]) if len(right) >= 2 else None,
    )
    if mention.kind == "name":
        mention.words = name_words(str(mention.key))
    mention.origin = id(mention)


def roles_of(stems: Iterable[str]) -> frozenset[str]:
    """The roles (killed, injured, arrested, ...) that the stems around a number name."""
    roles: list[str] = []
    for stem in stems:
        roles += _stem_roles(stem)
    return frozenset(roles)


@lru_cache(maxsize=1 << 14)
def _stem_roles(stem: str) -> tuple[str, ...]:
    """The roles one stem names (cached: the same words surround numbers again and again)."""
    return tuple(role for role, prefixes in _ROLES.items() if stem.startswith(prefixes))


_NOT_DIGITS = re.compile(r"\D")


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
        key["day"] = int(_NOT_DIGITS.sub("", day))
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


@lru_cache(maxsize=1 << 12)
def is_metadata(sentence: str) -> bool:
    """True for dateline and timestamp lines, whose differences are no disagreement.

    Tokens are scanned lazily: in a sentence of prose the first content word ends the scan,
    where listing every token cost four times as much. Cached: a story sentence is asked
    once for its mentions and again for its difference.
    """
    for match in TOKEN.finditer(sentence.casefold()):
        t = match.group()
        if (
            t not in STOPWORDS
            and t not in _DATELINE_WORDS
            and t not in _MONTHS
            and t not in _WEEKDAYS
            and not any(c.isdigit() for c in t)
        ):
            return False
    return True


# Tokens kept on each side of a mention: as many as ``find_mentions``, ``_finish`` and
# ``slot_context`` ever read.
SIDE_TOKENS = 5
# Characters scanned on each side first: enough for ``SIDE_TOKENS`` + 1 tokens of prose.
_SIDE_CHARS = 64


def sides(
    sentence: str, start: int, end: int, low: str | None = None
) -> tuple[list[str], list[str]]:
    """The last ``SIDE_TOKENS`` ``tokens`` of the text before ``start`` and the first of the
    text after ``end``.

    ``low``: the sentence lower-cased, when it is ASCII (then ``casefold`` is ``lower`` and
    keeps positions). Then only ``_SIDE_CHARS`` on each side are scanned: the token pattern
    has no anchors and no look-arounds, and a scan that starts inside a token resumes the
    whole-text tokens at that token's end, so all but the window's first token are the
    whole text's. The full scan runs only when the window holds too few tokens.
    """
    if low is None:
        return tokens(sentence[:start])[-SIDE_TOKENS:], tokens(sentence[end:])[:SIDE_TOKENS]
    if start > _SIDE_CHARS:
        left = TOKEN.findall(low, start - _SIDE_CHARS, start)
        if len(left) <= SIDE_TOKENS:
            left = TOKEN.findall(low, 0, start)
    else:
        left = TOKEN.findall(low, 0, start)
    right = TOKEN.findall(low, end, end + _SIDE_CHARS)
    if len(right) <= SIDE_TOKENS and end + _SIDE_CHARS < len(low):
        right = TOKEN.findall(low, end)
    return left[-SIDE_TOKENS:], right[:SIDE_TOKENS]


_SCALES = {
    "thousand": 1e3,
    "hundred": 1e2,
    "million": 1e6,
    "m": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "trillion": 1e12,
    "dozen": 12.0,
}
_PARTICLES = ("of", "de", "van", "von", "der", "al", "la", "du")
_DAY_WORDS = frozenset([*_MONTHS, *_WEEKDAYS])  # no name ends with one
_NOT_NAME_START = _NOT_NAMES | _DAY_WORDS  # and none starts with one


def find_mentions(
    sentence: str, member: str, known_names: frozenset[str], names: bool = True
) -> list[Mention]:
    """Numbers, dates and names in one sentence, each with the words around it.

    Dates are found first, numbers outside them next, names outside both last; each kind
    skips the spans the earlier ones ``taken``. ``names=False`` leaves names out (they are
    found last, so nothing else changes).
    """
    found: list[Mention] = []
    if is_metadata(sentence):
        return found
    low = sentence.lower() if sentence.isascii() else None
    taken: list[tuple[int, int]] = []
    # Every date has a digit, except a weekday ("...day"): most sentences have neither, and
    # the date pattern is tried at every word boundary. Numbers may be words ("ten").
    digits = _DIGIT.search(sentence) is not None
    if digits or "day" in sentence:
        _find_dates(sentence, member, low, taken, found)
    _find_numbers(sentence, member, low, taken, found)
    if names:
        _find_names(sentence, member, known_names, low, taken, found)
    kinds: dict[str, int] = {}
    for mention in found:
        kinds[mention.kind] = kinds.get(mention.kind, 0) + 1
    for mention in found:
        _finish(mention, kinds[mention.kind] == 1)
    return found


def _find_dates(
    sentence: str, member: str, low: str | None, taken: list[tuple[int, int]],
    found: list[Mention],
) -> None:
    """``find_mentions``' dates: a bare year only after a year cue ("since 2004")."""
    for m in DATE.finditer(sentence):
        left, right = sides(sentence, m.start(), m.end(), low)
        if m.group("year") and not (left and left[-1] in _YEAR_CUES):
            continue
        key = _date_key(m)
        found.append(Mention("date", m.group(0), key, member, left, right, unit=next(iter(key))))
        taken.append(m.span())


def _find_numbers(
    sentence: str, member: str, low: str | None, taken: list[tuple[int, int]],
    found: list[Mention],
) -> None:
    """``find_mentions``' numbers outside dates, with their unit, context stems and roles."""
    dates = sorted(taken)  # disjoint; a match never starts inside an earlier number
    for m in NUMBER.finditer(sentence):
        at, end = m.span()
        if _overlaps(dates, at, at + 1):
            continue
        num, dec, scale, words = m.group("num", "dec", "scale", "words")
        if scale is None and (words == "a" or words == "A"):
            continue  # "a" counts only before a scale word: most matches, so decided first
        left, right = sides(sentence, at, end, low)
        if num[0].isdigit():
            value = float(num.replace(",", "") + (dec or ""))
        elif words is None or not _counts_word(sentence, at, words, scale, left, right):
            continue
        else:
            value = _words_value(words)
        value *= _SCALES.get((scale or "").lower(), 1.0)
        unit = "percent" if m.group("pct") else _unit(right)
        if m.group("cur"):
            unit = m.group("cur") + unit
        window = [t for t in left[-5:] + right[:5] if t not in STOPWORDS]
        context = frozenset([stem_word(t) for t in window if not t[0].isdigit()]) - {unit}
        found.append(
            Mention(
                "number",
                m.group(0).strip(),
                round(value, 6),
                member,
                left,
                right,
                unit=unit,
                label=_label(left),
                bare=_bare(sentence, end, right),
                context=context,
                roles=roles_of(context),
            )
        )
        taken.append((at, end))


# Words before "one" that make it a pronoun ("no one", "the one who", "each one").
_ONE_PRONOUN_AFTER = frozenset("no the this that any every each which another".split())
# Where a capitalised number word is a sentence's first word: after these characters.
_OPENERS = frozenset("\"'“‘([:;—-")
_WORD_SCALES = frozenset(["hundred", "thousand", "million", "billion", "trillion", "dozen"])


def _counts_word(
    sentence: str, at: int, words: str, scale: str | None, left: list[str], right: list[str]
) -> bool:
    """Whether a number word counts something where a digit could stand.

    Not a count: "a" without a scale word ("a day"), a digit's scale "m"/"bn" after a word,
    "half a million" (a fraction), a capitalised number word inside a sentence (a name:
    "Channel Four", "Ocean's Eleven"), and "one" as a pronoun (``_counts_one``).
    """
    first = words[0]
    if first.isupper() and sentence[:at].rstrip() and sentence[:at].rstrip()[-1] not in _OPENERS:
        return False
    if scale is not None and scale.lower() not in _WORD_SCALES:
        return False
    folded = words.casefold()
    if folded.startswith("a") and left and left[-1] == "half":
        return False  # "half a million": a fraction
    if folded == "a":
        return scale is not None
    if folded == "one" and scale is None:
        # "a one-year-old", "the one-year-old": a compound counts whatever comes before
        return sentence.startswith("-", at + len(words)) or _counts_one(left, right)
    return True


def _counts_one(left: list[str], right: list[str]) -> bool:
    """"one" counts where a noun follows, as after a digit ("one person", "one-year-old"),
    not as a pronoun ("one of the victims", "no one", "the one who", "one another")."""
    if not right or right[0] in STOPWORDS or right[0] in ("another", "others"):
        return False
    return not (left and left[-1] in _ONE_PRONOUN_AFTER)


def _words_value(words: str) -> float:
    """The value of a number in words: "twenty-five" 25, "two hundred and fifty" 250,
    "two thousand five hundred" 2,500, "a million" 1,000,000."""
    total, group = 0.0, 0.0
    for part in words.casefold().replace("-", " ").replace(",", " ").split():
        if part == "hundred":
            group = (group or 1) * 100
        elif part in _BIG_WORDS:
            total += (group or 1) * _BIG_WORDS[part]
            group = 0
        elif part != "and":
            group += WORD_VALUES.get(part, 1)  # "a" (hundred, million, dozen)
    return total + group


# Words after a number that start another phrase: the number counts nothing named
# ("minus 20 as firefighters", "killed 12 in Gaza"), unlike "12 more survivors".
_NO_UNIT_AFTER = frozenset(
    "as in on at to for from and or but after before when while since by with into during"
    .split())


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans merged where they overlap, sorted: what ``_overlaps`` searches."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) meets one of ``spans`` (sorted, disjoint), by binary search: a
    scan of every span for every match was quadratic in a long sentence's numbers."""
    i = bisect_left(spans, (end,))  # the first span starting at or after ``end``
    return i > 0 and spans[i - 1][1] > start


_NEXT_CHAR = re.compile(r"\s*(.)")


def _bare(sentence: str, end: int, right: list[str]) -> bool:
    """Whether a number has no unit: punctuation follows ("injuring 40, the agency", but
    not a hyphen: "12-hour delays"), or a word in ``_NO_UNIT_AFTER``."""
    if sentence.startswith("-", end):
        return False
    after = _NEXT_CHAR.match(sentence, end)  # at the position: no copy of the rest
    if after is None or not after.group(1).isalnum():
        return True
    return bool(right) and right[0] in _NO_UNIT_AFTER


def _label(left: list[str]) -> str:
    """A number's label (``Mention.label``): the stem of the word before it and its hedges
    ("killed" in "killed nearly 300", "killed at least 300"), "" where that is a stop word
    or a number."""
    words = left[-4:]
    while words and words[-1] in _HEDGES:
        words = words[:-1]
        if words and words[-1] == "at":
            words = words[:-1]  # "at least", "at most"
    word = words[-1] if words else ""
    if not word or word in STOPWORDS or word[0].isdigit():
        return ""
    return stem_word(word)


def _unit(right: list[str]) -> str:
    """The unit a number counts, from the tokens after it: the first one's stem ("people"
    -> "people", "per cent" -> "percent"), "" when a number or nothing follows."""
    rest = [t for t in right if t not in _UNIT_SKIP]
    unit = stem_word(rest[0]) if rest and not rest[0][0].isdigit() else ""
    if unit == "per" and len(rest) > 1:
        unit = "percent" if rest[1] == "cent" else unit
    if unit == "percent" or unit == "pct":
        unit = "percent"
    return unit


def _find_names(
    sentence: str, member: str, known_names: frozenset[str], low: str | None,
    taken: list[tuple[int, int]], found: list[Mention],
) -> None:
    """``find_mentions``' names outside numbers and dates, trimmed of sentence-initial
    capitals, day words and words no name starts with."""
    lead = len(sentence) - len(sentence.lstrip(" \"'(["))  # opening quotes and brackets
    spans = _union(taken)
    for m in NAME.finditer(sentence):
        if spans and _overlaps(spans, m.start(), m.end()):
            continue
        words = m.group(0).split()
        at = m.start()
        # Sentence-initial capitals are names only if the cluster also writes them
        # capitalised mid-sentence ("Putin also ..." yes, "Citing ..." / "However ..." no).
        if at <= lead and words[0].strip(".") not in known_names:
            at += len(words[0])
            words = words[1:]
            while words and words[0] in _PARTICLES:
                at += len(words[0]) + 1
                words = words[1:]
        while words and words[-1].casefold() in _DAY_WORDS:
            words.pop()
        while words and words[0].casefold() in _NOT_NAME_START:
            at = sentence.index(words[0], at) + len(words[0])
            words = words[1:]
        if not words:
            continue
        text = " ".join(words).removesuffix("'s")
        folded = text.casefold()
        if folded in STOPWORDS or len(text) < 2 or folded in _DATELINE_WORDS:
            continue
        start = sentence.index(words[0], max(0, at - len(words[0]) - 1))
        left, right = sides(sentence, start, start + len(text), low)
        found.append(Mention("name", text, folded, member, left, right))

def mentions_once(
    sentence: str,
    member: str,
    known_names: frozenset[str],
    seen: dict[tuple[str, bool], list[Mention]],
    names: bool = True,
) -> list[Mention]:
    """``find_mentions``, computed once per distinct sentence of a cluster (copies repeat them):
    later members get fresh copies that name them."""
    found = seen.get((sentence, names))
    if found is None:
        found = seen[sentence, names] = find_mentions(sentence, member, known_names, names)
        return found
    return [
        Mention(
            x.kind,
            x.value,
            x.key,
            member,
            x.left,
            x.right,
            x.unit,
            x.label,
            x.bare,
            x.context,
            x.roles,
            x.sole,
            x.ends,
            x.words,
            x.origin,
        )
        for x in found
    ]


# A capital after a word character (or , ; :) and a space. The capital comes first and the
# look-behind after it: a pattern that opens with a look-behind is tried at every position.
MID_SENTENCE_CAPITAL = re.compile(r"[A-Z](?<=[\w,;:] [A-Z])[\w'.-]*")


def mid_sentence_names(members: Iterable[Member]) -> frozenset[str]:
    """Capitalised words the cluster writes mid-sentence: evidence they are names.

    One search over all sentences joined by newlines finds what one search per sentence
    finds: no match reaches over a newline, and the look-behind needs a space before.
    """
    distinct = dict.fromkeys(s for m in members for s in m.sentences)  # copies add nothing
    words = set(MID_SENTENCE_CAPITAL.findall("\n".join(distinct)))
    return frozenset(w.strip(".") for w in words)


_POSSESSIVE_OR_DOT = re.compile(r"'s\b|\.")


@lru_cache(maxsize=1 << 14)
def name_words(key: str) -> frozenset[str]:
    """Words of a name, plural 's' dropped so 'Yemeni' and 'Yemenis' agree (``Mention.words``;
    cached: news repeats its names)."""
    words = _POSSESSIVE_OR_DOT.sub("", key).replace("-", " ").split()
    return frozenset(w[:-1] if w.endswith("s") and len(w) > 2 else w for w in words)
