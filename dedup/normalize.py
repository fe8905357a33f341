"""Text normalization: Unicode, boilerplate lines, sentences and tokens.

Everything downstream (signatures, TF-IDF, merging) sees only what this stage keeps, so
boilerplate stripped here never reaches a feature or a story.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from dedup.caches import BoundedCache
from dedup.config import NormalizeConfig

_QUOTES = (("“", '"'), ("”", '"'), ("„", '"'), ("‘", "'"), ("’", "'"))
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b]+")
_ODD_BLANK = re.compile(r"[\t\u00a0\u2000-\u200b]")  # with "  ": _SPACES would change text
# Tokenised sources (ECB+) write `` quote '' and "Lohan ' s": rejoin them (only texts
# that show a sign of tokenisation pay for the five passes).
_TOKENISED = ("``", "''", " ,", " .", " ;", " :", " !", " ?", " %", " )", " ]", " ' ", "( ",
              "[ ", "$ ", " - ")
# The marks opening with a space, as one search with a literal prefix (sixteen substring
# searches were a third of clean_text).
_SPACED_MARK = re.compile(r" (?:[,.;:!?%)\]]|' |- )")
_DETOKENIZE = [
    (re.compile(r"``\s*"), '"'),
    (re.compile(r"\s*''"), '"'),
    (re.compile(r"\s+([,.;:!?%)\]])"), r"\1"),
    (re.compile(r"([(\[$])\s+"), r"\1"),
    (re.compile(r"(\w) ' (s|t|re|ve|ll|d|m)\b"), r"\1'\2"),
    (re.compile(r"(\d) - (\w)"), r"\1-\2"),
]

# Lines that are page furniture, not article text. Anchored on the whole line so that a
# sentence merely containing "share" or "next" is never dropped. Bylines and wire credits
# name people: capitalised words, joined by lower-case particles ("de la", "and", "in"),
# the two disjoint so that a line has one reading (a failing match stays linear). A
# byline's tail, after a comma or "|", names outlets, titles, places and dates: capitalised
# words, numbers and a few lower-case words ("By Jane Doe, Reuters staff"); any other
# lower-case word makes the line a sentence ("By Monday, he was out.").
_PERSON = r"(?-i:(?:al-|el-)?[A-Z])[\w.'-]*"
_PARTICLES = "de|la|le|du|da|das|do|dos|di|del|van|von|der|den|ter|bin|ibn|y|and|in"
_JOIN = rf"\s+(?:(?-i:{_PARTICLES})\s+)*"
_TAIL_WORDS = (r"staff|reporters?|writers?|correspondents?|editors?|contributors?|columnist"
               r"|political|news|senior|chief|foreign|special|to|and|in|of|the|for|at|on"
               r"|updated|published|ago|mins?|minutes?|hours?|am|pm")
_TAIL_WORD = rf"(?:(?-i:[A-Z0-9])[\w.'&-]*|(?-i:{_TAIL_WORDS})\b|[ap]\.m\.|[-–—])"
# The tail opens with a comma, "|", "/", "(", a dash or "on"; the separators before its
# first word belong to the optional part, so a failing line is read once, not once per
# split of a run of separators between two loops.
_TAIL = (rf"(?:(?:\s*[,|/(]|\s+[-–—]|\s+(?-i:on))"
         rf"(?:[\s,|:;()/]*{_TAIL_WORD}(?:[\s,|:;()/]+{_TAIL_WORD}){{0,15}})?[\s,|:;()./]*)?")
_BYLINE = (rf"(?:by|written\s+by):?\s+(?:(?-i:the)\s+)?{_PERSON}(?:{_JOIN}{_PERSON}){{0,5}}"
           + _TAIL)
_CREDIT = (rf"\(?(?:(?:additional\s+)?(?:reporting|writing|editing)\s+by\s+{_PERSON}"
           rf"(?:(?:{_JOIN}|\s*,\s*){_PERSON})*\s*(?:[;,]\s*|\)?$)){{1,8}}")
_BOILERPLATE = re.compile(
    r"""^(?:
        (?-i:PREV|PREVIOUS|NEXT)\b.{0,200}
      | (?:prev|previous|next|older|newer)(?:\s+(?:post|article|story|page))?\s*[:»›>|-].{0,200}
      | (?:prev|previous|next|older|newer)\s+(?:post|article|story|page)s?\b.{0,200}
      | share(?:\s+(?:this(?:\s+(?:article|story|post|page|video))?|on\s+\w+))?[.!:]?
      | listen\s+to\s+(?:this\s+)?(?:article|story)
        [\W\d_]*(?:(?:min(?:ute)?|sec(?:ond)?)s?\b(?:\s+read)?[\W_]*)?
      | (?:tags?|topics?|categories|filed\s+under|related(?:\s+\w+)?|see\s+also)\s*:.*
      | exit\s+mobile\s+version
      | the\s+article\s+is\s+in\s+\w+
      | (?:read|see)\s+(?:more|also|next)\b.{0,120}
      | (?:advertisement|sponsored(?:\s+content)?|skip\s+to\s+(?:main\s+)?content)
      | (?:subscribe|sign\s+up|follow\s+us|click\s+here|log\s*in|sign\s+in)\b.{0,120}
      | (?:copyright|©|\(c\)|all\s+rights\s+reserved).{0,160}
      | (?:photo|image|video|credit)s?\s*:.{0,160}
      | """ + _BYLINE + r"""
      | """ + _CREDIT + r"""
      | (?:facebook|twitter|whatsapp|email|print|linkedin|reddit|telegram)(?:\W+\w+){0,6}
      | [\W_]*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# The rules above as patterns, for engines that apply them outside Python's ``re`` (the
# vectorised light normalization of ``dedupe``, #21): the same syntax in Rust's regex.
BOILERPLATE_PATTERN = "(?ix)" + _BOILERPLATE.pattern
# Any mark ``_is_tokenised`` looks for, as one pattern.
TOKENISED_PATTERN = r" [,.;:!?%)\]]| ' | - |``|''|\( |\[ |\$ "

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st gen gov sen rep col lt sgt capt cmdr adm rev inc ltd co
    corp vs etc no jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n e.g i.e
    calif""".split()
)
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9])")
_LAST_WORD = re.compile(r"([\w.]+)[.!?][\"')\]]*\s+$")
# A token of ``tokens`` (public: the merger scans slices of a text with it). Possessive:
# nothing follows the repetition, so giving back an iteration never helps a match, and
# not keeping the positions to try that is a tenth faster.
TOKEN = re.compile(r"\w+(?:[.'-]\w+)*+", re.UNICODE)

# Short English function words: they carry no event identity.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own said same says she should so
    some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)


def _is_tokenised(text: str) -> bool:
    """Whether ``text`` holds any of the ``_TOKENISED`` marks; single characters are
    searched first, as they are much cheaper to look for than pairs."""
    return bool(
        _SPACED_MARK.search(text)
        or ("`" in text and "``" in text)
        or ("'" in text and "''" in text)
        or ("(" in text and "( " in text)
        or ("[" in text and "[ " in text)
        or ("$" in text and "$ " in text)
    )


def clean_text(text: str) -> str:
    """NFKC-fold, straighten quotes, re-join tokenised punctuation, collapse spaces per line."""
    # ASCII text (a flag Python keeps on every string) is NFKC already and has no fancy
    # quotes or odd blanks but the tab: each of those scans is skipped for it.
    ascii_only = text.isascii()
    if not ascii_only:
        text = unicodedata.normalize("NFKC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not ascii_only:
        for fancy, plain in _QUOTES:
            if fancy in text:
                text = text.replace(fancy, plain)
    # Most texts have single spaces only.
    if "  " in text or ("\t" in text if ascii_only else _ODD_BLANK.search(text)):
        text = _SPACES.sub(" ", text)
    # One rule can expose another's pattern ("' '" -> "''"), so repeat to a fixed point:
    # normalizing twice must change nothing.
    while _is_tokenised(text):
        before = text
        for pattern, repl in _DETOKENIZE:
            text = pattern.sub(repl, text)
        if text == before:
            break
    return "\n".join(line.strip() for line in text.split("\n"))


def clean_line(line: str) -> str | None:
    """``clean_text`` of one line, stripped; None where the whole text must be cleaned at
    once: a carriage return (it starts new lines) or a tokenisation mark (re-joining
    reaches across lines).

    When every line of a text gives a string, ``clean_text`` of the text is those strings
    joined by newlines: no other step sees past a newline. So a line that many texts
    share (syndicated paragraphs, page furniture) can be cleaned once.
    """
    if "\r" in line:
        return None
    if line.isascii():
        if "  " in line or "\t" in line:
            line = _SPACES.sub(" ", line)
    else:
        line = unicodedata.normalize("NFKC", line)
        for fancy, plain in _QUOTES:
            if fancy in line:
                line = line.replace(fancy, plain)
        if "  " in line or _ODD_BLANK.search(line):
            line = _SPACES.sub(" ", line)
    return None if _is_tokenised(line) else line.strip()


def is_boilerplate(line: str) -> bool:
    """True for page furniture such as 'PREV ...', 'Share.', 'Tags: ...'."""
    stripped = line.strip()
    if not stripped:
        return True
    return bool(_BOILERPLATE.match(stripped))


def strip_boilerplate(text: str, extra_lines: frozenset[str] = frozenset()) -> list[str]:
    """Content lines of a cleaned text: furniture and repeated lines dropped, order kept."""
    kept: list[str] = []
    seen: set[str] = set()
    for line in text.split("\n"):
        key = line.strip().casefold()
        if not key or key in seen or key in extra_lines or is_boilerplate(line):
            continue
        seen.add(key)
        kept.append(line.strip())
    return kept


def repeated_lines(
    texts_by_source: Iterable[tuple[str | None, str]], config: NormalizeConfig
) -> frozenset[str]:
    """Short lines that one source repeats across many of its articles: its templates.

    A syndicated copy repeats whole articles across *different* sources, so only lines that
    recur within one source (footers, promos) are treated as furniture.
    """
    return templates_of(template_line_counts(texts_by_source, config), config)


def template_line_counts(
    texts_by_source: Iterable[tuple[str | None, str]], config: NormalizeConfig
) -> Counter[tuple[str, str]]:
    """Articles per (source, short line): what ``repeated_lines`` counts. Counts of parts
    of a corpus add up (the Dask engine sums them across partitions)."""
    most = config.template_max_words
    counts: Counter[tuple[str, str]] = Counter()
    for source, text in texts_by_source:
        if not source:
            continue
        # At most ``most`` words: splitting stops after ``most`` (paragraphs are long).
        lines = {
            s.casefold()
            for ln in text.split("\n")
            if (s := ln.strip()) and len(s.split(None, most)) <= most
        }
        counts.update(zip(itertools.repeat(source), lines))
    return counts


def templates_of(counts: Mapping[tuple[str, str], int], config: NormalizeConfig
                 ) -> frozenset[str]:
    """The lines of ``template_line_counts`` that a source repeats often enough.

    A line that several sources carry is shared content, not one site's furniture: when a
    wire story is the story of the day, one outlet runs it again and again, and its title
    and short sentences would otherwise be stripped from every version (#18).
    """
    sources = Counter(line for _, line in counts)
    return frozenset(
        line for (_, line), n in counts.items()
        if n >= config.template_min_articles and sources[line] < config.template_max_sources
    )


def split_sentences(lines: Sequence[str]) -> list[str]:
    """Sentences of content lines; a line break always ends a sentence."""
    sentences: list[str] = []
    for line in lines:
        start = 0
        for match in _BOUNDARY.finditer(line):
            # The word ends at this boundary and holds no space: search from the last one.
            word = _LAST_WORD.search(line, line.rfind(" ", 0, match.start()) + 1, match.end())
            last = word.group(1).casefold() if word else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue  # "Mr. Putin", "J. Smith": not the end of a sentence
            sentences.append(line[start : match.end()].strip())
            start = match.end()
        if line[start:].strip():
            sentences.append(line[start:].strip())
    return sentences


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, keeping internal dots, hyphens and apostrophes (U.S., IS-K)."""
    return TOKEN.findall(text.casefold())


def content_tokens(text: str) -> list[str]:
    """Tokens without function words: the vocabulary of what happened."""
    return without_stopwords(tokens(text))


def without_stopwords(words: Iterable[str]) -> list[str]:
    """The words that are not ``STOPWORDS``, in order (``filterfalse`` loops in C: a third
    faster than a comprehension over an article's tokens)."""
    return list(itertools.filterfalse(STOPWORDS.__contains__, words))


# Each pattern opens with a character class, not \b, so the regex engine skips ahead to
# candidate characters instead of trying every position; the word boundary before that
# first character is checked just after it, as "the character before it is no \w".
_NAME = re.compile(
    r"[A-Z](?<!\w.)[\w'.-]*(?:[ \t]+(?:of|de|del|la|van|von|bin|al)?[ \t]*[A-Z][\w'.-]*)*"
)
_YEAR = re.compile(r"(?:1(?<!\w.)9[5-9]|2(?<!\w.)0[0-9])\d(?!\w)")
_NUMBER = re.compile(r"\d(?<!\w.)(?:[\d,.]*\d)?\b")


def names(sentences: Sequence[str]) -> list[str]:
    """Capitalised name phrases (and their words), lower-cased: who and where.

    A capitalised word opening a sentence is kept only when it is not a function word,
    so "The" and "But" are not names while "Moscow ..." is. Phrases never cross a
    sentence (the pattern does not span line breaks).
    """
    out: list[str] = []
    cache = NAME_TERMS
    for phrase in _NAME.findall("\n".join(sentences)):
        terms = cache.get(phrase)
        if terms is None:
            terms = cache.put(phrase, _name_terms(phrase))
        out.extend(terms)
    return out


# Phrase -> its terms. Feeds repeat the same names across thousands of articles, and the
# per-phrase casefold/split/strip was a sixth of ``names``; bounded, so memory is too.
# ``NAME_TERMS.clear()`` empties it.
NAME_TERMS: BoundedCache[str, tuple[str, ...]] = BoundedCache(1 << 17)


def _name_terms(phrase: str) -> tuple[str, ...]:
    """The phrase joined by "_" (when it has several words), then each word."""
    if " " not in phrase and "\t" not in phrase:  # one word: most matches
        word = phrase.casefold().strip(".'-")
        return (word,) if word and word not in STOPWORDS else ()
    words = [w.strip(".'-") for w in phrase.casefold().split()]
    words = [w for w in words if w and w not in STOPWORDS]
    if len(words) > 1:
        return ("_".join(words), *words)
    return tuple(words)


def numbers(text: str) -> list[str]:
    """Numbers as written, without thousands separators: casualty counts, years, scores."""
    return [m.replace(",", "").rstrip(".") for m in _NUMBER.findall(text)]


def years(text: str) -> list[str]:
    """Four-digit years 1950-2099 mentioned: when the reported events happened."""
    return sorted(set(_YEAR.findall(text)))
