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

import dataclasses
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from dedup.config import Config, MergeConfig
from dedup.normalize import (
    _TOKEN,
    STOPWORDS,
    clean_line,
    clean_text,
    content_tokens,
    is_boilerplate,
    split_sentences,
    strip_boilerplate,
    tokens,
)
from dedup.records import Article, Difference, DifferenceKind, Story, StorySentence

__all__ = ["MemberText", "cluster_id_for", "member_sentences", "member_text", "merge",
           "story_from_dict", "story_to_dict"]


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
# Each comes with a cheap search for text every match contains: patterns that open with a
# look-behind are tried at every position of the text, which was a tenth of merge time. For
# the same reason the first digit comes before the look-behind ("(?<![\d.,])\d" written as
# "\d(?<![\d.,]\d)": no such character before the digit).
_SPLIT_NUMBER = [
    (re.compile(r"(\d(?<![\d.,]\d)\d?)\. (\d)(?!\d*\. [A-Z])"), r"\1.\2", re.compile(r"\. \d")),
    (re.compile(r"(\d(?<![\d.,]\d)\d{0,2}), (000)\b"), r"\1,\2", re.compile(", 000")),
    (re.compile(r"(?<![\d.,:])([01]?\d|2[0-3]): ([0-5]\d)\b"), r"\1:\2", re.compile(r": \d")),
    (re.compile(r"\b([ap])\. m\.", re.IGNORECASE), r"\1.m.", re.compile(r"\. [mM]\.")),
]


def _rejoin_numbers(text: str) -> str:
    for pattern, repl, needed in _SPLIT_NUMBER:
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


def _content_whole(text: str) -> tuple[list[str], list[str], float]:
    """``_content`` the long way: the text cleaned at once."""
    cleaned = clean_text(_rejoin_numbers(text))
    raw = [ln.strip() for ln in cleaned.split("\n") if ln.strip()]
    fixed = [_unglue(ln) for ln in raw]
    kept = strip_boilerplate("\n".join(fixed))
    total = sum(len(ln) for ln in raw)
    share = 1.0 - sum(len(ln) for ln in kept) / total if total else 0.0
    return kept, split_sentences(kept), max(0.0, share)


class _Line(NamedTuple):
    """One raw line as ``_content`` reads it, worked out once per distinct line (a tuple:
    a frozen dataclass took longer to build than the line to clean)."""

    length: int  # of the cleaned line: counts toward the boilerplate share
    text: str  # what a member keeps of it (a glued navigation part cut off)
    key: str  # ``strip_boilerplate``'s: a line repeated within a member is kept once
    furniture: bool
    sentences: tuple[str, ...]


_WHOLE_TEXT = _Line(0, "", "", True, ())  # the line needs its text cleaned at once
_MISSING = _Line(-1, "", "", True, ())  # not in the cache yet


def _line(raw: str) -> _Line | None:
    """``_content``'s view of one raw line (None: blank)."""
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
# ~2^15 lines (a few MB) it starts over.
_LINES: dict[str, _Line | None] = {}
_LINES_MAX = 1 << 15


def _content(text: str) -> tuple[list[str], list[str], float]:
    """Cleaned content lines, their sentences, and the share of characters that were
    boilerplate.

    The same as ``clean_text`` -> ``_unglue`` -> ``strip_boilerplate`` ->
    ``split_sentences`` over the whole text: every step but the last two works line by
    line (``normalize.clean_line``), and those two only need each line's key and verdict
    in order. A text that must be cleaned at once takes ``_content_whole``.
    """
    cache = _LINES
    lines: list[str] = []
    sentences: list[str] = []
    seen: set[str] = set()
    total = kept = 0
    for raw in text.split("\n"):
        if not raw:
            continue
        entry = cache.get(raw, _MISSING)
        if entry is _MISSING:
            entry = _line(raw)
            if len(cache) >= _LINES_MAX:
                cache.clear()
            cache[raw] = entry
        if entry is None:
            continue
        if entry is _WHOLE_TEXT:
            return _content_whole(text)
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
    title, sentences, _ = _member_text(article, config or MergeConfig())
    return title, sentences


# A member's title, sentences and boilerplate share: what ``merge`` reads of its text.
MemberText = tuple[str, list[str], float]


def _member_text(article: Article, cfg: MergeConfig) -> MemberText:
    return member_text(article.text, article.title, cfg)


def member_text(text: str, title: str, cfg: MergeConfig) -> MemberText:
    """``member_sentences`` plus the boilerplate share, cleaning the body text only once.

    The batch pipeline has a worker compute it ahead, while the single-process stages run,
    and hands it to ``merge`` as ``cleaned``.
    """
    lines, sentences, share = _content(text)
    raw_title = title
    title = ""
    if raw_title.strip():
        title = " ".join(_content(raw_title)[0])
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


# --------------------------------------------------------------------------- similarity


@lru_cache(maxsize=1 << 16)
def _stem(token: str) -> str:
    """A light suffix stripper so 'deaths'/'death' and 'warned'/'warning' meet (cached: the
    words around numbers are stemmed once per mention)."""
    if token.endswith("'s"):
        token = token[:-2]
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: len(token) - len(suffix)] + repl
    return token


def _term(token: str) -> str:
    """The vector term of a content token: '#' for any number, else its stem."""
    term = "#" if any(c.isdigit() for c in token) else _stem(token)
    if len(_TERMS) >= _TERMS_MAX:
        _TERMS.clear()
    _TERMS[token] = term
    return term


# Token -> its ``_term``. News repeats its words, and stemming was a tenth of merge time; a
# dict looked up inline costs less than an ``lru_cache`` call. Bounded: it starts over.
_TERMS: dict[str, str] = {}
_TERMS_MAX = 1 << 18


def _terms(text: str) -> list[str]:
    """Vector terms of a text's content tokens, in text order."""
    known = _TERMS.get
    return [known(t) or _term(t) for t in tokens(text) if t not in STOPWORDS]


def _stems(text: str) -> list[str]:
    """Content stems of a text, numbers left out (they are compared, not matched on)."""
    return [t for t in _terms(text) if t != "#"]


def _unit(counts: Counter[str]) -> dict[str, float]:
    """Counts scaled to unit length (keys in first-seen order, as the cosines sum them)."""
    norm = math.sqrt(sum([v * v for v in counts.values()]))  # whole numbers: exact
    return {k: v / norm for k, v in counts.items()} if norm else {}


def _vector(text: str) -> dict[str, float]:
    """Unit-length term-frequency vector of content stems; every number counts as '#'.

    Numbers are what versions disagree on, so their values must not keep two statements of
    one claim apart; their presence still helps align short lines ("She was 85.").
    """
    return _unit(Counter(_terms(text)))


_EPS = 1e-9  # cosine of {a, b} and {a, c} is 0.5 up to rounding: count it as 0.5


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def _containment(small: frozenset[str], big: frozenset[str]) -> float:
    """Share of ``small``'s content stems that ``big`` also has (a split or joined sentence)."""
    return len(small & big) / len(small) if small else 0.0


# --------------------------------------------------------------------------- members and base


@dataclass(frozen=True, slots=True)
class _Sentence:
    """A sentence's vector terms, vector and stem set: computed once per distinct sentence of
    a cluster, since versions of one story repeat most of their sentences word for word."""

    terms: list[str]
    vector: dict[str, float]
    stems: frozenset[str]


def _sentence(text: str) -> _Sentence:
    terms = _terms(text)
    return _Sentence(terms, _unit(Counter(terms)), frozenset(x for x in terms if x != "#"))


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


def _prepare(
    article: Article, config: MergeConfig, seen: dict[str, _Sentence] | None = None
) -> _Member:
    """Sentences, their vectors and stem sets, and the whole text's vector, tokenised once.

    ``seen`` shares sentences already prepared for other members of the cluster (their
    vectors are then the same objects, which ``_Similarity`` maps to columns once).
    """
    title, sentences, share = _member_text(article, config)
    return _vectorise(article, title, sentences, share, {} if seen is None else seen)


def _vectorise(
    article: Article, title: str, sentences: list[str], share: float, seen: dict[str, _Sentence]
) -> _Member:
    """``_prepare`` after cleaning: the sentences' vectors and stem sets, and the document's.

    Tokens never span the space that joins sentences, so the document's counts are the
    sentences' counts added up in order: the same vector as ``_vector(" ".join(sentences))``.
    """
    parts = []
    terms: list[str] = []
    for text in sentences:
        part = seen.get(text)
        if part is None:
            part = seen[text] = _sentence(text)
        parts.append(part)
        terms.extend(part.terms)
    doc = Counter(terms)  # counted in the same order: the same keys in the same order
    return _Member(
        article=article,
        title=title,
        sentences=sentences,
        vectors=[p.vector for p in parts],
        stemsets=[p.stems for p in parts],
        boilerplate=share,
        doc=_unit(doc),
    )


def _prepare_all(
    articles: Sequence[Article], config: MergeConfig, given: Mapping[str, MemberText] | None = None
) -> list[_Member]:
    """``_prepare`` each article; members with the same cleaned title and sentences share one
    preparation (each keeps its own boilerplate share), exact copies also one cleaning.

    Syndicated copies are common, and often differ only in page furniture.
    """
    cleaned: dict[tuple[str, str], tuple[str, list[str], float]] = {}
    done: dict[tuple[str, tuple[str, ...]], _Member] = {}
    seen: dict[str, _Sentence] = {}
    out = []
    for article in articles:
        text = given.get(article.id) if given else None
        if text is None:
            raw = (article.text, article.title)
            text = cleaned.get(raw)
            if text is None:
                text = cleaned[raw] = _member_text(article, config)
        title, sentences, share = text
        key = (title, tuple(sentences))
        first = done.get(key)
        if first is None:
            first = done[key] = _vectorise(article, title, sentences, share, seen)
            out.append(first)
        else:
            out.append(
                _Member(
                    article,
                    first.title,
                    first.sentences,
                    first.vectors,
                    first.stemsets,
                    share,
                    first.doc,
                )
            )
    return out


# Matrix cosines differ from ``_cosine`` only in summation order: by at most ~(terms shared)
# * 1.1e-16, far below this band. Only values inside the band around a threshold are
# recomputed with ``_cosine``; the band stays far from the common exact 0.5 (1e-9 away).
_BAND = 1e-11

# Sentence-pair matrices are computed whole, in one product each, up to this many sentences
# (32 MiB each); larger clusters get one block of rows per member.
_FULL_MATRIX_MAX_SENTENCES = 2048
# Up to this many multiply-adds (sentences^2 x terms) the matrices are dense: a small dense
# product costs a fraction of scipy's sparse bookkeeping, which dominated small clusters.
_DENSE_MAX_WORK = 1 << 18


class _Similarity:
    """Every sentence of a cluster as a row of two matrices over one vocabulary (content
    terms, and stems present).

    Why: alignment and the base score compare every sentence with every other, and one
    matrix product replaces thousands of dict cosines. Products only find candidates; a
    decision near a threshold and every score that is sorted on are computed with
    ``_cosine`` as before, so stories stay byte-identical. Stem overlaps are whole numbers,
    exact in any summation order. Column order is free for the same reasons.
    """

    def __init__(self, members: Sequence[_Member]) -> None:
        self.start: dict[str, int] = {}
        self.vocab: dict[str, int] = {}
        vocab = self.vocab
        # Versions repeat most sentences, and repeated sentences share their vector and stem
        # set objects (``_prepare``): the matrices hold each distinct sentence once, and
        # ``index`` maps every sentence (member by member, in order) to its row.
        distinct: dict[tuple[int, int], int] = {}
        index: list[int] = []
        v_cols: list[int] = []
        v_data: list[float] = []
        v_ptr = [0]
        s_cols: list[int] = []
        s_ptr = [0]
        for m in members:
            self.start[m.id] = len(index)
            for vec, stems in zip(m.vectors, m.stemsets, strict=True):
                key = (id(vec), id(stems))
                row = distinct.get(key)
                if row is None:
                    row = distinct[key] = len(distinct)
                    v_cols.extend([vocab.setdefault(k, len(vocab)) for k in vec])
                    v_data.extend(vec.values())
                    v_ptr.append(len(v_cols))
                    s_cols.extend([vocab.setdefault(k, len(vocab)) for k in stems])
                    s_ptr.append(len(s_cols))
                index.append(row)
        self.index = np.array(index, dtype=np.intp)
        shape = (len(distinct), max(len(vocab), 1))
        self._cos: np.ndarray | None = None  # every sentence pair, when that fits
        self._shared: np.ndarray | None = None
        # Keyed by object ids: the members (and so the vectors) outlive this object.
        self._exact: dict[tuple[int, int], float] = {}
        full = len(index) <= _FULL_MATRIX_MAX_SENTENCES
        if full and shape[0] * shape[0] * shape[1] <= _DENSE_MAX_WORK:
            vectors = np.zeros(shape)
            vectors[np.repeat(np.arange(shape[0]), np.diff(v_ptr)), v_cols] = v_data
            stems_m = np.zeros(shape)
            stems_m[np.repeat(np.arange(shape[0]), np.diff(s_ptr)), s_cols] = 1.0
            self._cos = self._expand(vectors @ vectors.T)
            self._shared = self._expand(stems_m @ stems_m.T)
            return
        self.vectors = sp.csr_matrix((np.array(v_data), v_cols, v_ptr), shape=shape)
        self.vectors_t = self.vectors.T.tocsr()
        self.stems = sp.csr_matrix((np.ones(len(s_cols)), s_cols, s_ptr), shape=shape)
        self.stems_t = self.stems.T.tocsr()
        if full:
            self._cos = self._expand(np.asarray((self.vectors @ self.vectors_t).toarray()))
            self._shared = self._expand(np.asarray((self.stems @ self.stems_t).toarray()))

    def _expand(self, distinct: np.ndarray) -> np.ndarray:
        """Every sentence x every sentence, from the matrix over distinct sentences."""
        if len(distinct) == len(self.index):  # no sentence repeats: rows are in order
            return distinct
        return distinct[np.ix_(self.index, self.index)]

    def exact(self, a: dict[str, float], b: dict[str, float]) -> float:
        """``_cosine(a, b)``, once per pair of vector objects: repeated sentences share their
        vector objects, so the same pairs come back for every copy of a version."""
        key = (id(a), id(b))
        value = self._exact.get(key)
        if value is None:
            value = self._exact[key] = _cosine(a, b)
        return value

    def row(self, member_id: str, k: int) -> int:
        return self.start[member_id] + k

    def cosines(self, member: _Member) -> np.ndarray:
        """Cosine of each of ``member``'s sentences (rows) with every sentence (columns)."""
        a = self.start[member.id]
        rows = slice(a, a + len(member.sentences))
        if self._cos is not None:
            return self._cos[rows]
        block = (self.vectors[self.index[rows]] @ self.vectors_t).toarray()
        return np.asarray(block)[:, self.index]

    def overlaps(self, rows: Sequence[int]) -> np.ndarray:
        """Shared content stems of the given sentences (rows) with every sentence (columns)."""
        index = np.asarray(rows, dtype=np.intp)
        if self._shared is not None:
            return self._shared[index]
        block = (self.stems[self.index[index]] @ self.stems_t).toarray()
        return np.asarray(block)[:, self.index]


def _rep_rows(story: Sequence[_Node], sims: _Similarity, width: int) -> np.ndarray:
    """Matrix rows of each story node's representatives, padded with its first one."""
    start = sims.start
    rows = [[start[mid] + k for mid, k in node.reps] for node in story]
    width = max(width, 1)
    padded = [r + r[:1] * (width - len(r)) for r in rows]
    return np.array(padded, dtype=np.intp).reshape(len(story), width)


def _published_key(value: datetime | None) -> tuple[bool, float]:
    if value is None:
        return (True, 0.0)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (False, value.timestamp())


def _base_scores(
    members: Sequence[_Member], config: MergeConfig, sims: _Similarity | None = None
) -> list[float]:
    """centrality + completeness - boilerplate share, per member (see ``merge``)."""
    n = len(members)
    if n > 1 and sims is None:
        sims = _Similarity(members)
    cut = config.align_threshold - _EPS
    total = sum(len(m.sentences) for m in members)
    doc_cos: dict[tuple[int, int], float] = {}
    exact = _doc_cosines(members, sims.vocab) if n > 1 and sims is not None else None
    # Members with the same sentences share their vector list (``_prepare_all``) and so have
    # the same completeness: their blocks are equal, and the claims each leaves out (its own
    # sentences) are the other's, with the same vectors.
    complete: dict[int, float] = {}
    scores = []
    for i, m in enumerate(members):
        if n == 1 or sims is None:
            scores.append(1.0 - m.boilerplate)
            continue
        if exact is not None:
            row = exact[i]
            centrality = sum(row[:i] + row[i + 1 :]) / (n - 1)
        else:
            others = [_doc_cosine(members, i, j, doc_cos) for j in range(n) if j != i]
            centrality = sum(others) / (n - 1)
        if id(m.vectors) in complete:
            scores.append(centrality + complete[id(m.vectors)] - m.boilerplate)
            continue
        claims = total - len(m.sentences)
        carried = 0
        if claims and m.sentences:
            a = sims.start[m.id]
            block = sims.cosines(m)
            claim = np.ones(block.shape[1], dtype=bool)
            claim[a : a + len(m.sentences)] = False  # m's own sentences are no claims
            sure = claim & (block >= cut + _BAND).any(axis=0)
            carried = int(sure.sum())
            unsure = claim & ~sure & (block > cut - _BAND).any(axis=0)
            for col in np.flatnonzero(unsure):
                o, k = _owner(members, sims, int(col))
                vec = o.vectors[k]
                carried += any(sims.exact(vec, mv) >= cut for mv in m.vectors)
        completeness = complete[id(m.vectors)] = carried / claims if claims else 1.0
        scores.append(centrality + completeness - m.boilerplate)
    return scores


def _doc_cosine(
    members: Sequence[_Member], i: int, j: int, cache: dict[tuple[int, int], float]
) -> float:
    """``_cosine(members[i].doc, members[j].doc)``, computed once per pair where it is symmetric.

    It is symmetric (bit for bit) when the two dicts differ in length: both orders then sum
    over the shorter one in its own key order.
    """
    a, b = members[i].doc, members[j].doc
    key = (min(i, j), max(i, j)) if len(a) != len(b) else (i, j)
    if key not in cache:
        cache[key] = _cosine(a, b)
    return cache[key]


# ``sum`` adds floats one by one, left to right, on the Python versions this package supports;
# numpy's cumulative sum does the same. Should ``sum`` ever compensate (as 3.12 does), the
# document cosines fall back to ``_cosine`` itself.
_SEQUENTIAL = [1e100, 1.0, -1e100, 1.0]
_SUM_IS_SEQUENTIAL = sum(_SEQUENTIAL) == 1.0 and float(np.cumsum(_SEQUENTIAL)[-1]) == 1.0
# Dense member x term matrix of document vectors up to this many cells (32 MiB).
_DOC_MATRIX_MAX_CELLS = 1 << 22


def _doc_cosines(members: Sequence[_Member], vocab: dict[str, int]) -> list[list[float]] | None:
    """``_cosine(members[i].doc, members[j].doc)`` for every pair, bit for bit; None when
    that cannot be promised (see ``_SUM_IS_SEQUENTIAL``) or the matrix would be too large.

    Why: document vectors are long, and these cosines were a fifth of the base score's time
    as Python loops. ``_cosine`` sums ``a[k] * b[k]`` over the shorter dict's keys (the first
    one's when equal) in key order, one by one; a cumulative sum over the same products in
    the same order performs the same float additions. Keys missing from the other dict add
    0.0, which changes no partial sum, in both.
    """
    n = len(members)
    if not _SUM_IS_SEQUENTIAL or n * max(len(vocab), 1) > _DOC_MATRIX_MAX_CELLS:
        return None
    cols = [np.array([vocab[k] for k in m.doc], dtype=np.intp) for m in members]
    vals = [np.fromiter(m.doc.values(), dtype=np.float64, count=len(m.doc)) for m in members]
    docs = np.zeros((n, max(len(vocab), 1)))
    for i in range(n):
        docs[i, cols[i]] = vals[i]
    # by_first[i][j]: the sum over members[i]'s keys, in their order.
    by_first = np.zeros((n, n))
    for i in range(n):
        if len(cols[i]):
            by_first[i] = np.cumsum(docs[:, cols[i]] * vals[i], axis=1)[:, -1]
    sizes = np.array([len(m.doc) for m in members])
    first_is_shorter = sizes[:, None] <= sizes[None, :]
    cosines: list[list[float]] = np.where(first_is_shorter, by_first, by_first.T).tolist()
    return cosines


def _owner(members: Sequence[_Member], sims: _Similarity, row: int) -> tuple[_Member, int]:
    """The member and sentence index of a matrix row."""
    for m in members:
        a = sims.start[m.id]
        if a <= row < a + len(m.sentences):
            return m, row - a
    raise IndexError(row)


def _order_members(
    members: list[_Member], config: MergeConfig, sims: _Similarity | None = None
) -> list[_Member]:
    """Base first, then the rest by the same score; ties by earliest published, then id."""
    scores = _base_scores(members, config, sims)
    ranked = sorted(
        zip(scores, members, strict=True),
        key=lambda sm: (-round(sm[0], 9), _published_key(sm[1].article.published), sm[1].id),
    )
    return [m for _, m in ranked]


# --------------------------------------------------------------------------- alignment


@dataclass(slots=True, eq=False)
class _Node:
    """One story sentence: the member sentences (member id -> indices) that state it.

    Compared by identity (``story.index``): no two nodes share a representative, so field
    equality meant identity anyway, at the cost of comparing dicts.
    """

    carriers: dict[str, list[int]] = field(default_factory=dict)
    reps: list[tuple[str, int]] = field(default_factory=list)


def _align(
    ordered: Sequence[_Member], config: MergeConfig, sims: _Similarity | None = None
) -> list[_Node]:
    """Build the story: the base's sentences, then each member aligned against it.

    Greedy best-match one-to-one (cosine >= ``align_threshold``) against the story built so
    far; a sentence contained in a story sentence (a split sentence of a near-copy) is attached
    to it as well; the rest are inserted after the story sentence their predecessor landed in.
    """
    by_id = {m.id: m for m in ordered}
    base = ordered[0]
    story = [_Node({base.id: [i]}, [(base.id, i)]) for i in range(len(base.sentences))]
    if len(ordered) == 1:
        return story  # a singleton: nothing to align, nothing joined
    if sims is None:
        sims = _Similarity(ordered)
    cut = config.align_threshold - _EPS
    width = config.max_node_representatives
    for member in ordered[1:]:
        if not member.sentences:
            continue
        reps = _rep_rows(story, sims, width)
        pairs = _aligned_pairs(member, story, reps, sims, by_id, cut)
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        placed: dict[int, int] = {}
        used: set[int] = set()
        for _, si, ni in pairs:
            if si in placed or ni in used:
                continue
            placed[si] = ni
            used.add(ni)
        placed.update(_contained(member, placed, reps, sims, config))
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
    _add_joined_carriers(story, ordered, sims, config)
    return story


def _aligned_pairs(
    member: _Member,
    story: Sequence[_Node],
    reps: np.ndarray,
    sims: _Similarity,
    by_id: dict[str, _Member],
    cut: float,
) -> list[tuple[float, int, int]]:
    """(cosine, sentence, node) for every member sentence and story node that align.

    The cosine with a node is the best over its representatives. The matrix product only
    proposes candidates; their cosines are recomputed with ``_cosine``, since ties between
    pairs are broken by these exact values.
    """
    if not story:
        return []
    by_rep = sims.cosines(member)[:, reps]  # sentence x node x representative
    near = by_rep.max(axis=2)
    rows, cols = np.nonzero(near > cut - _BAND)
    # Only a representative within the error band of the best can hold the exact maximum.
    close = (by_rep[rows, cols] >= (near[rows, cols] - 2 * _BAND)[:, None]).tolist()
    pairs = []
    for si, ni, ok in zip(rows.tolist(), cols.tolist(), close, strict=True):
        vec = member.vectors[si]
        node_reps = story[ni].reps
        if len(node_reps) == 1:  # then it is the best (padding repeats it)
            mid, k = node_reps[0]
            sim = sims.exact(vec, by_id[mid].vectors[k])
        else:
            sim = max(
                sims.exact(vec, by_id[mid].vectors[k])
                for (mid, k), good in zip(node_reps, ok, strict=False)
                if good
            )
        if sim >= cut:
            pairs.append((sim, si, ni))
    return pairs


def _contained(
    member: _Member,
    placed: dict[int, int],
    reps: np.ndarray,
    sims: _Similarity,
    config: MergeConfig,
) -> dict[int, int]:
    """Unplaced sentences (3+ stems) whose stems lie mostly inside one story node: the first
    node with the highest containment, if that reaches ``containment_threshold``.

    Shared-stem counts are exact integers, so the ratios equal ``_containment``'s.
    """
    todo = [si for si, stems in enumerate(member.stemsets) if si not in placed and len(stems) >= 3]
    if not todo:
        return {}
    a = sims.start[member.id]
    shared = sims.overlaps([a + si for si in todo])[:, reps].max(axis=2)
    out = {}
    for row, si in enumerate(todo):
        share = shared[row] / len(member.stemsets[si])
        best_ni = int(np.argmax(share)) if share.size and share.max() > 0.0 else -1
        best = float(share[best_ni]) if best_ni >= 0 else 0.0
        if best >= config.containment_threshold:
            out[si] = best_ni
    return out


def _add_joined_carriers(
    story: Sequence[_Node], ordered: Sequence[_Member], sims: _Similarity, config: MergeConfig
) -> None:
    """A member whose long sentence states a story sentence it was not aligned to still
    carries that claim (a joined sentence): add it to the sources, not to the text."""
    by_id = {m.id: m for m in ordered}
    heads = [node for node in story if len(by_id[node.reps[0][0]].stemsets[node.reps[0][1]]) >= 3]
    if not heads:
        return
    shared = sims.overlaps([sims.row(*node.reps[0]) for node in heads])
    sizes = np.array([len(by_id[mid].stemsets[k]) for mid, k in (n.reps[0] for n in heads)])
    hits = np.zeros((len(heads), len(ordered)), dtype=bool)  # node x member
    for mi, m in enumerate(ordered):
        if m.sentences:
            a = sims.start[m.id]
            best = shared[:, a : a + len(m.sentences)].max(axis=1)
            hits[:, mi] = best / sizes >= config.containment_threshold
    for h, mi in np.argwhere(hits):  # node by node, members in order, as carriers are listed
        node, mid = heads[h], ordered[mi].id
        if mid not in node.carriers:
            node.carriers[mid] = []


# --------------------------------------------------------------------------- exact copies


def _all_copies(members: Sequence[_Member]) -> bool:
    """True when every member has the same cleaned title and sentences (syndicated copies,
    page furniture aside)."""
    first = members[0]
    return all(m.title == first.title and m.sentences == first.sentences for m in members)


def _copies_order(members: Sequence[_Member]) -> list[_Member]:
    """``_order_members`` for copies that pass ``_aligns_only_to_itself``, without cosines.

    Every document vector is the same, so every member's centrality is the same mean of
    equal cosines; each member carries every other member's sentence k with its own sentence
    k, so completeness is 1.0. Scores then differ only by the boilerplate share, and are
    computed with the same float operations as ``_base_scores``.
    """
    n = len(members)
    doc = members[0].doc
    centrality = sum([_cosine(doc, doc)] * (n - 1)) / (n - 1)
    scores = [centrality + 1.0 - m.boilerplate for m in members]
    ranked = sorted(
        zip(scores, members, strict=True),
        key=lambda sm: (-round(sm[0], 9), _published_key(sm[1].article.published), sm[1].id),
    )
    return [m for _, m in ranked]


def _aligns_only_to_itself(member: _Member, config: MergeConfig) -> bool:
    """True when each sentence reaches ``align_threshold`` with itself and with no other.

    Then, among exact copies of ``member``, ``_order_members`` sees equal scores (ties: earliest
    published, then id) and ``_align`` maps each copy's sentence k onto story sentence k: the
    result ``_copies_story`` builds without any cosine beyond this check.
    """
    if not member.sentences:
        return True
    cut = config.align_threshold - _EPS
    block = _Similarity([member]).cosines(member)
    aligned = block >= cut + _BAND
    for i, j in np.argwhere((block > cut - _BAND) & ~aligned):
        aligned[i, j] = _cosine(member.vectors[i], member.vectors[j]) >= cut
    return bool(np.array_equal(aligned, np.eye(len(member.sentences), dtype=bool)))


def _copies_story(ordered: Sequence[_Member]) -> list[_Node]:
    """``_align``'s story for exact copies that pass ``_aligns_only_to_itself``.

    Only the first representative is kept: later ones serve alignment, which is skipped.
    """
    base = ordered[0]
    return [
        _Node({m.id: [i] for m in ordered}, [(m.id, i) for m in ordered[:1]])
        for i in range(len(base.sentences))
    ]


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
# Both patterns open with a look-ahead for the characters a match can start with: the
# regex engine then skips to those instead of trying the whole pattern at every position
# (2.5x faster over sentences with digits). A date starts with a digit or the capital of a
# month or weekday; a number with a digit or a currency sign.
_DATE = re.compile(
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
_NUMBER = re.compile(
    r"(?=[$€£\d])(?<![\w.])(?P<cur>[$€£])?(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?"
    r"(?:\s*(?P<scale>million|billion|trillion|thousand|hundred|bn|m)\b)?(?P<pct>\s*%)?"
)
_DIGIT = re.compile(r"\d")
_NAME_WORD = r"(?:[A-Z][a-z]+(?:[-'][A-Za-z]+)*|[A-Z][A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z0-9]+)*"
_NAME_WORD += r"|[A-Z]\.(?:[A-Z]\.)*)"
# The first word's capital comes first and the look-behind after it (``(?<![\w'-])`` before
# it, as "not such a character and then the capital"): a pattern that opens with a class is
# only tried where that class matches, one that opens with a look-behind at every position.
_NAME = re.compile(
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
    # Set by ``_mentions`` once the mention is complete (see ``_finish``): the nearest one
    # and two tokens on each side (None where missing), a name's words, and the id of the
    # mention ``_mentions`` made (copies for other members keep it): scores are memoised by it.
    ends: tuple[Any, ...] = ()
    words: frozenset[str] = frozenset()
    origin: int = 0


def _finish(mention: _Mention, sole: bool) -> None:
    """Fill the fields ``_role_score`` reads on every comparison, once per mention."""
    left, right = mention.left, mention.right
    mention.sole = sole
    mention.ends = (
        left[-1] if left else None,
        right[0] if right else None,
        (left[-2], left[-1]) if len(left) >= 2 else None,
        (right[0], right[1]) if len(right) >= 2 else None,
    )
    if mention.kind == "name":
        mention.words = _name_words(str(mention.key))
    mention.origin = id(mention)


def _roles(stems: Iterable[str]) -> frozenset[str]:
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
def _is_metadata(sentence: str) -> bool:
    """True for dateline and timestamp lines, whose differences are no disagreement.

    Tokens are scanned lazily: in a sentence of prose the first content word ends the scan,
    where listing every token cost four times as much. Cached: a story sentence is asked
    once for its mentions and again for its difference.
    """
    for match in _TOKEN.finditer(sentence.casefold()):
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


# Tokens kept on each side of a mention: as many as ``_mentions``, ``_finish`` and
# ``_context`` ever read.
_SIDE_TOKENS = 5
# Characters scanned on each side first: enough for ``_SIDE_TOKENS`` + 1 tokens of prose.
_SIDE_CHARS = 64


def _sides(
    sentence: str, start: int, end: int, low: str | None = None
) -> tuple[list[str], list[str]]:
    """The last ``_SIDE_TOKENS`` ``tokens`` of the text before ``start`` and the first of the
    text after ``end``.

    ``low``: the sentence lower-cased, when it is ASCII (then ``casefold`` is ``lower`` and
    keeps positions). Then only ``_SIDE_CHARS`` on each side are scanned: the token pattern
    has no anchors and no look-arounds, and a scan that starts inside a token resumes the
    whole-text tokens at that token's end, so all but the window's first token are the
    whole text's. The full scan runs only when the window holds too few tokens.
    """
    if low is None:
        return tokens(sentence[:start])[-_SIDE_TOKENS:], tokens(sentence[end:])[:_SIDE_TOKENS]
    if start > _SIDE_CHARS:
        left = _TOKEN.findall(low, start - _SIDE_CHARS, start)
        if len(left) <= _SIDE_TOKENS:
            left = _TOKEN.findall(low, 0, start)
    else:
        left = _TOKEN.findall(low, 0, start)
    right = _TOKEN.findall(low, end, end + _SIDE_CHARS)
    if len(right) <= _SIDE_TOKENS and end + _SIDE_CHARS < len(low):
        right = _TOKEN.findall(low, end)
    return left[-_SIDE_TOKENS:], right[:_SIDE_TOKENS]


_SCALES = {
    "thousand": 1e3,
    "hundred": 1e2,
    "million": 1e6,
    "m": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "trillion": 1e12,
}
_PARTICLES = ("of", "de", "van", "von", "der", "al", "la", "du")
_DAY_WORDS = frozenset([*_MONTHS, *_WEEKDAYS])  # no name ends with one
_NOT_NAME_START = _NOT_NAMES | _DAY_WORDS  # and none starts with one


def _mentions(
    sentence: str, member: str, known_names: frozenset[str], names: bool = True
) -> list[_Mention]:
    """Numbers, dates and names in one sentence, each with the words around it.

    ``names=False`` leaves names out (they are found last, so nothing else changes).
    """
    found: list[_Mention] = []
    if _is_metadata(sentence):
        return found
    low = sentence.lower() if sentence.isascii() else None
    taken: list[tuple[int, int]] = []
    # Every number and date has a digit, except a weekday ("...day"): most sentences have
    # neither, and the date pattern is tried at every word boundary.
    digits = _DIGIT.search(sentence) is not None
    for m in _DATE.finditer(sentence) if digits or "day" in sentence else ():
        left, right = _sides(sentence, m.start(), m.end(), low)
        if m.group("year") and not (left and left[-1] in _YEAR_CUES):
            continue
        key = _date_key(m)
        found.append(_Mention("date", m.group(0), key, member, left, right, unit=next(iter(key))))
        taken.append(m.span())
    for m in _NUMBER.finditer(sentence) if digits else ():
        at, end = m.span()
        if any(s <= at < e for s, e in taken):
            continue
        left, right = _sides(sentence, at, end, low)
        num, dec, scale = m.group("num", "dec", "scale")
        value = float(num.replace(",", "") + (dec or ""))
        value *= _SCALES.get((scale or "").lower(), 1.0)
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
        context = frozenset([_stem(t) for t in window if not t[0].isdigit()]) - {unit}
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
        taken.append((at, end))
    lead = len(sentence) - len(sentence.lstrip(" \"'(["))  # opening quotes and brackets
    for m in _NAME.finditer(sentence) if names else ():
        if taken and any(s < m.end() and m.start() < e for s, e in taken):
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
        left, right = _sides(sentence, start, start + len(text), low)
        found.append(_Mention("name", text, folded, member, left, right))
    kinds: dict[str, int] = {}
    for mention in found:
        kinds[mention.kind] = kinds.get(mention.kind, 0) + 1
    for mention in found:
        _finish(mention, kinds[mention.kind] == 1)
    return found


def _mentions_once(
    sentence: str,
    member: str,
    known_names: frozenset[str],
    seen: dict[tuple[str, bool], list[_Mention]],
    names: bool = True,
) -> list[_Mention]:
    """``_mentions``, computed once per distinct sentence of a cluster (copies repeat them):
    later members get fresh copies that name them."""
    found = seen.get((sentence, names))
    if found is None:
        found = seen[sentence, names] = _mentions(sentence, member, known_names, names)
        return found
    return [
        _Mention(
            x.kind,
            x.value,
            x.key,
            member,
            x.left,
            x.right,
            x.unit,
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
_MID_SENTENCE_CAPITAL = re.compile(r"[A-Z](?<=[\w,;:] [A-Z])[\w'.-]*")


def _known_names(members: Iterable[_Member]) -> frozenset[str]:
    """Capitalised words the cluster writes mid-sentence: evidence they are names.

    One search over all sentences joined by newlines finds what one search per sentence
    finds: no match reaches over a newline, and the look-behind needs a space before.
    """
    distinct = dict.fromkeys(s for m in members for s in m.sentences)  # copies add nothing
    words = set(_MID_SENTENCE_CAPITAL.findall("\n".join(distinct)))
    return frozenset(w.strip(".") for w in words)


# --------------------------------------------------------------------------- comparing


_POSSESSIVE_OR_DOT = re.compile(r"'s\b|\.")


@lru_cache(maxsize=1 << 14)
def _name_words(key: str) -> frozenset[str]:
    """Words of a name, plural 's' dropped so 'Yemeni' and 'Yemenis' agree (``_Mention.words``;
    cached: news repeats its names)."""
    words = _POSSESSIVE_OR_DOT.sub("", key).replace("-", " ").split()
    return frozenset(w[:-1] if w.endswith("s") and len(w) > 2 else w for w in words)


def _agree(a: _Mention, b: _Mention) -> bool:
    """Same value: equal numbers, compatible date parts, or one name inside the other."""
    if a.kind == "date":
        ka, kb = a.key, b.key
        shared = set(ka) & set(kb)
        return bool(shared) and all(ka[k] == kb[k] for k in shared)
    if a.kind == "name":
        ta, tb = a.words, b.words
        return ta <= tb or tb <= ta
    return bool(a.key == b.key)


_RESPELLING = 0.75  # SequenceMatcher ratio from which two names are one name respelled


@lru_cache(maxsize=1 << 14)
def _spelling(a: str, b: str) -> float:
    """``SequenceMatcher`` ratio of two names, or an upper bound of it below ``_RESPELLING``.

    Only ratios from ``_RESPELLING`` up are used as values; most pairs of names are far apart
    and fail the length bound (``real_quick_ratio``) or ``quick_ratio`` already. The same pairs
    recur in every sentence that names them, hence the cache.
    """
    length_bound = 2.0 * min(len(a), len(b)) / (len(a) + len(b)) if a or b else 1.0
    if length_bound < _RESPELLING:
        return length_bound
    # ``quick_ratio``: characters in common, counted with multiplicity; the same float.
    common = (_letters(a) & _letters(b)).total()
    bound = 2.0 * common / (len(a) + len(b)) if a or b else 1.0
    return SequenceMatcher(None, a, b).ratio() if bound >= _RESPELLING else bound


@lru_cache(maxsize=1 << 12)
def _letters(name: str) -> Counter[str]:
    """A name's characters with their counts (read only)."""
    return Counter(name)


def _role_score(a: _Mention, b: _Mention, aligned: bool, max_ratio: float = 2.0) -> float | None:
    """How surely ``a`` and ``b`` fill the same slot; None when they cannot."""
    if a.kind != b.kind:
        return None
    if a.kind == "number" and (a.unit != b.unit or (not aligned and not a.unit)):
        return None  # the commonest case, decided before the words around are compared
    # The same nearest one / two tokens on the left and on the right, each where ``a`` has
    # them (precomputed by ``_finish``).
    ea, eb = a.ends, b.ends
    near = (
        (ea[0] is not None and ea[0] == eb[0])
        + (ea[1] is not None and ea[1] == eb[1])
        + (ea[2] is not None and ea[2] == eb[2])
        + (ea[3] is not None and ea[3] == eb[3])
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
        spelling = _spelling(str(a.key), str(b.key))
        if spelling >= _RESPELLING:
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
    groups: Sequence[Sequence[_Mention]],
    aligned: bool,
    max_ratio: float = 2.0,
    scores: dict[tuple[int, int], float | None] | None = None,
) -> list[list[_Mention]]:
    """Group mentions of several members (one group each, in order) into same-role slots.

    ``scores`` memoises ``_role_score`` by ``origin`` across calls with the same ``aligned``
    and ``max_ratio``: copies of a version repeat the same comparisons.
    """
    if scores is None:
        scores = {}
    slots: list[list[_Mention]] = []
    voices: list[set[str]] = []  # the members in each slot
    bins: dict[tuple[str, ...], list[int]] = {}  # slots by ``_bins`` of their first mention
    for group in groups:
        opts: list[tuple[float, int, int]] = []  # (-score, gi, si): best first once sorted
        for gi, mention in enumerate(group):
            keys = _bins(mention)
            if len(keys) == 1:
                candidates: Iterable[int] = bins.get(keys[0], ())
            else:
                candidates = {si for key in keys for si in bins.get(key, ())}
            member, origin = mention.member, mention.origin
            for si in candidates:  # the order is free: ``opts`` is sorted whole
                if member in voices[si]:
                    continue
                rep = slots[si][0]
                pair = (rep.origin, origin)
                if pair in scores:
                    score = scores[pair]
                else:
                    score = scores[pair] = _role_score(rep, mention, aligned, max_ratio)
                if score is not None:
                    opts.append((-score, gi, si))
        opts.sort()
        done_g: set[int] = set()
        done_s: set[int] = set()
        for _, gi, si in opts:
            if gi in done_g or si in done_s:
                continue
            slots[si].append(group[gi])
            voices[si].add(group[gi].member)
            done_g.add(gi)
            done_s.add(si)
        for gi, mention in enumerate(group):
            if gi not in done_g:
                for key in _bins(mention):
                    bins.setdefault(key, []).append(len(slots))
                slots.append([mention])
                voices.append({mention.member})
    return slots


def _bins(mention: _Mention) -> list[tuple[str, ...]]:
    """Keys of which ``_role_score`` needs one in common to pair two mentions: the kind, and
    the unit of a number or any component of a date. Comparing only within them skips the
    bulk of the pairs (each number against every number of the cluster) unscored."""
    if mention.kind == "number":
        return [("number", mention.unit)]
    if mention.kind == "date":
        return [("date", part) for part in mention.key]
    return [(mention.kind,)]


def _variants(
    slot: Sequence[_Mention],
    rank: dict[str, int],
    speakers: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """value -> members; values that agree (143 / 143, Putin / Vladimir Putin) share one entry.

    ``speakers``: the members each mention's member speaks for (itself where absent).
    """
    merged: list[tuple[_Mention, set[str]]] = []
    for mention in slot:
        said_by = speakers.get(mention.member, (mention.member,)) if speakers else (
            mention.member,)
        for rep, members in merged:
            if _agree(rep, mention):
                members.update(said_by)
                break
        else:
            merged.append((mention, set(said_by)))
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
    known: frozenset[str] | None = None  # needed only where versions word a sentence apart
    found: list[tuple[int, Difference]] = []
    pool: list[tuple[int, _Mention]] = []  # numbers left without a partner in their sentence
    # Names in sentences only one version states, with that sentence's content stems.
    name_pool: list[tuple[int, _Mention, frozenset[str]]] = []
    seen: dict[tuple[str, bool], list[_Mention]] = {}  # keeps every ``origin`` alive
    scores: dict[tuple[int, int], float | None] = {}
    place = {m.id: i for i, m in enumerate(ordered)}
    for pos, node in enumerate(story):
        # The members stating the node, in ``ordered``'s order (joined carriers state nothing).
        carrying = [(by_id[mid], idxs) for mid, idxs in node.carriers.items() if idxs]
        if len(carrying) > 1:
            carrying.sort(key=lambda mi: place[mi[0].id])
        if len(carrying) == 1:
            # One version states it: within the sentence there is nothing to compare, so each
            # of its numbers goes to the cross-sentence pool, and names are not even extracted.
            # Names go to their own pool, compared by role below.
            member, idxs = carrying[0]
            if known is None:
                known = _known_names(ordered)
            for k in idxs:
                found_k = _mentions_once(member.sentences[k], member.id, known, seen)
                pool.extend((pos, x) for x in found_k if x.kind == "number")
                stems = member.stemsets[k]
                name_pool.extend((pos, x, stems) for x in found_k if x.kind == "name")
            continue
        # Versions that state it in the same words are one voice: they say the same values
        # in the same places, so their mentions are found and slotted once, for the first
        # of them, and the slots name all of them.
        voices: dict[tuple[str, ...], tuple[_Member, list[int], list[str]]] = {}
        for member, idxs in carrying:
            said = tuple(member.sentences[k] for k in idxs)
            if said in voices:
                voices[said][2].append(member.id)
            else:
                voices[said] = (member, idxs, [member.id])
        if len(voices) == 1:
            # Every version that states it in the same words: no disagreement within it, but
            # its names may fill a role that versions without it fill with another name.
            if len(node.carriers) < len(by_id):
                if known is None:
                    known = _known_names(ordered)
                for member, idxs in carrying:
                    for k in idxs:
                        found_k = _mentions_once(member.sentences[k], member.id, known, seen)
                        stems = member.stemsets[k]
                        name_pool.extend((pos, x, stems) for x in found_k if x.kind == "name")
            continue
        if known is None:
            known = _known_names(ordered)
        speakers = {lead.id: ids for lead, _, ids in voices.values()}
        groups = [
            [
                mention
                for k in idxs
                for mention in _mentions_once(lead.sentences[k], lead.id, known, seen)
            ]
            for lead, idxs, _ in voices.values()
        ]
        for kind in ("number", "date", "name"):
            kind_groups = [[x for x in g if x.kind == kind] for g in groups]
            for slot in _slots([g for g in kind_groups if g], aligned=True, scores=scores):
                if len(slot) == 1 and kind == "number" and len(speakers[slot[0].member]) == 1:
                    pool.append((pos, slot[0]))
                    continue
                variants = _variants(slot, rank, speakers)
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
    # Names in the same role across the cluster ("IV-K claimed responsibility" / "The
    # Islamic State claimed responsibility for the massacre"): see ``_role_names``.
    if name_pool:
        if known is None:
            known = _known_names(ordered)
        found.extend(_role_names(name_pool, ordered, known, seen, rank))
    # Sentences only some versions carry.
    members = sorted(m.id for m in ordered)
    for pos, node in enumerate(story):
        if len(node.carriers) == len(members):  # carriers are members: nobody is missing
            continue
        missing = [mid for mid in members if mid not in node.carriers]
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
    same_key: dict[tuple[str, frozenset[str]], list[int]] = {}  # positions in merged by key
    for _, diff in found:
        names = frozenset(diff.variants)
        if diff.kind != "sentence":
            names = frozenset(v.casefold() for v in diff.variants)
        dkey = (str(diff.kind), names)
        for at in same_key.get(dkey, []):
            _key, united, _first = merged[at]
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
            same_key.setdefault(dkey, []).append(len(merged))
            merged.append((dkey, {v: set(ids) for v, ids in diff.variants.items()}, diff))
    out = []
    for _, united, first in merged:
        variants = {v: tuple(sorted(ids, key=rank.__getitem__)) for v, ids in united.items()}
        out.append(Difference(first.kind, first.context, _sorted_variants(variants, rank)))
    # Facts first: numbers, dates, names, then sentences; story order within each kind.
    out.sort(key=lambda d: _KIND_ORDER[d.kind])
    return out


_KIND_ORDER = {"number": 0, "date": 1, "name": 2, "sentence": 3}

# Words that follow or precede any name and so name no role of their own ("Smith said",
# "told reporters"): a shared pair made of them does not put two names in one slot.
_NO_ROLE = tuple(
    """say tell told add accord report write ask call spokesman spokeswoman statement
    news reporter interview speak spoke believ think know""".split()
)


def _name_role(mention: _Mention, capitals: frozenset[str]) -> tuple[str, str] | None:
    """The role of a name: the stems of the two words right after it ("claimed
    responsibility"), when both are lower-case content words (``capitals``: words the
    cluster writes capitalised, folded: "Los Angeles" is a place, not a role) and neither is
    a reporting word, which follows any name. The words before a name are no role: they are
    a title that fits many people ("first baseman Mark Teixeira" / "... Carlos Delgado")."""
    pair = mention.right[:2]
    if len(pair) < 2 or any(t in STOPWORDS or not t.isalpha() or t in capitals for t in pair):
        return None
    first, second = _stem(pair[0]), _stem(pair[1])
    if first.startswith(_NO_ROLE) or second.startswith(_NO_ROLE):
        return None
    return first, second


def _role_names(
    name_pool: Sequence[tuple[int, _Mention, frozenset[str]]],
    ordered: Sequence[_Member],
    known: frozenset[str],
    seen: dict[tuple[str, bool], list[_Mention]],
    rank: dict[str, int],
) -> list[tuple[int, Difference]]:
    """Names in the same role in sentences that did not align: different names right before
    the same two content words, in different versions.

    Why: rewrites word a claim apart ("known as IV-K, claimed responsibility for the attack" /
    "The Islamic State claimed responsibility for the massacre"), so aligned sentences never
    compare them; the role words do. Guards, since two names beside the same words are
    often two actors: each version has one name in the role; exactly two names that do not
    agree (neither inside the other); the two sentences share ``_ROLE_SHARED_WORDS`` more
    content words (the same claim); and one of the names is never named by the versions
    that say the other (a version that names both people knows of both).
    """
    by_key: dict[tuple[str, str], dict[str, list[tuple[int, _Mention, frozenset[str]]]]] = {}
    capitals = frozenset(w.casefold() for w in known)
    for pos, mention, stems in name_pool:
        key = _name_role(mention, capitals)
        if key is not None:
            by_key.setdefault(key, {}).setdefault(mention.member, []).append(
                (pos, mention, stems)
            )
    if not any(len(per_member) > 1 for per_member in by_key.values()):
        return []
    named: dict[str, list[_Mention]] = {}  # every name each member writes, any sentence
    for m in ordered:
        named[m.id] = [
            x
            for sentence in dict.fromkeys(m.sentences)
            for x in _mentions_once(sentence, m.id, known, seen)
            if x.kind == "name"
        ]
    out: list[tuple[int, Difference]] = []
    for key, per_member in by_key.items():
        if len(per_member) < 2:
            continue
        slot: list[_Mention] = []
        said: list[frozenset[str]] = []  # the stems of each slot mention's sentence
        first = None
        for mid in sorted(per_member, key=rank.__getitem__):
            found = per_member[mid]
            if any(not _agree(found[0][1], x) for _, x, _ in found[1:]):
                continue  # two names in one role within a version: which one is disputed?
            slot.append(found[0][1])
            said.append(found[0][2])
            pos = min(p for p, _, _ in found)
            first = pos if first is None else min(first, pos)
        variants = _variants(slot, rank)
        if len(variants) != 2 or first is None:
            continue
        # The same claim: the sentences share content words besides the role's.
        role = set(key)
        groups = [
            frozenset().union(*(st for x, st in zip(slot, said, strict=True) if x.value == v))
            for v in variants
        ]
        if len((groups[0] & groups[1]) - role - _name_stems(slot)) < _ROLE_SHARED_WORDS:
            continue
        (a, a_ids), (b, b_ids) = variants.items()
        va = next(x for x in slot if x.value == a)
        vb = next(x for x in slot if x.value == b)
        if _names_anywhere(va, b_ids, named) and _names_anywhere(vb, a_ids, named):
            continue
        context = " ".join(slot[0].right[:2])
        out.append((first, Difference("name", context, variants)))
    return out


# Content words, besides the role's two, that two sentences must share for names in the
# same role to be one disputed fact (measured: 2 keeps the seeds' claimant and drops the
# ecbplus-dev pairs that were two actors, e.g. "a Saudi cargo ship" / "a Ukrainian cargo ship").
_ROLE_SHARED_WORDS = 2


def _name_stems(slot: Sequence[_Mention]) -> set[str]:
    """The stems of the names themselves (a name is not a shared word of the claim)."""
    return {_stem(t) for x in slot for t in tokens(x.value)}


def _names_anywhere(
    name: _Mention, members: Sequence[str], named: Mapping[str, Sequence[_Mention]]
) -> bool:
    """True when one of ``members`` writes ``name`` (or a name it agrees with) anywhere."""
    return any(_agree(name, x) for mid in members for x in named.get(mid, ()))


# --------------------------------------------------------------------------- public API


def merge(
    articles: Sequence[Article],
    cluster_id: str | None = None,
    config: Config | None = None,
    *,
    cleaned: Mapping[str, MemberText] | None = None,
    copies: Mapping[str, Sequence[str]] | None = None,
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
    sentences, numbers in the same role across the cluster, names in the same role (the
    same words after them) across sentences that did not align, and story sentences that
    not all members carry; each disagreement once, numbers first, then dates, names and
    sentences. The result does not depend on input order.

    ``cleaned``: ``member_text`` of members by id, computed ahead (the batch pipeline does
    that on a worker); the rest are cleaned here.

    ``copies``: for a distinct version among ``articles``, the ids of the members that copy
    it verbatim (``dedup.copies``), which are not passed: the story is merged from the
    distinct versions alone (three hundred copies are one voice, and merging them cost
    time quadratic in their number), cites each once, and lists every member and, in
    ``Story.copies``, each version's copies.

    Example:
        >>> from dedup.records import Article
        >>> story = merge([Article("x", "One sentence."), Article("y", "One sentence.")])
        >>> story.base, story.differences
        ('x', ())
    """
    cfg = (config or Config()).merge
    unique = {a.id: a for a in sorted(articles, key=lambda a: a.id)}
    members_sorted = tuple(sorted(unique))
    copied = {v: tuple(sorted(ids)) for v, ids in sorted((copies or {}).items())
              if ids and v in unique}
    everyone = tuple(sorted(members_sorted + tuple(i for ids in copied.values() for i in ids)))
    cid = cluster_id if cluster_id is not None else cluster_id_for(everyone)
    if not unique:
        return Story(cid, (), "", "", "", (), ())
    story = _merge_versions(unique, members_sorted, cid, cfg, cleaned)
    if copied:
        story = dataclasses.replace(story, members=everyone, copies=copied)
    return story


def _merge_versions(unique: Mapping[str, Article], members_sorted: tuple[str, ...], cid: str,
                    cfg: MergeConfig, cleaned: Mapping[str, MemberText] | None) -> Story:
    """``merge`` of distinct versions (``unique``: by id, sorted)."""
    if len(unique) == 1:
        return _singleton(cid, unique[members_sorted[0]], cfg, cleaned)
    prepared = _prepare_all([unique[i] for i in members_sorted], cfg, cleaned)
    if _all_copies(prepared) and _aligns_only_to_itself(prepared[0], cfg):
        ordered = _copies_order(prepared)
        story = _copies_story(ordered)
    else:
        sims = _Similarity(prepared)
        ordered = _order_members(prepared, cfg, sims)
        story = _align(ordered, cfg, sims)
    base = ordered[0]
    by_id = {m.id: m for m in ordered}
    rank = {m: i for i, m in enumerate(members_sorted)}
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


def _singleton(
    cluster_id: str, article: Article, cfg: MergeConfig, given: Mapping[str, MemberText] | None
) -> Story:
    """``merge`` of a one-member cluster: its cleaned sentences are the story, nothing is
    compared, so no vector is needed (a quarter of clusters are singletons)."""
    text = given.get(article.id) if given else None
    title, sentences, _ = text or _member_text(article, cfg)
    return Story(
        cluster_id=cluster_id,
        members=(article.id,),
        base=article.id,
        title=title,
        text="\n".join(sentences),
        sentences=tuple(StorySentence(text, (article.id,)) for text in sentences),
        differences=(),
    )


def story_to_dict(story: Story) -> dict[str, Any]:
    """The JSON shape of a story (one line of ``stories.jsonl``); ``copies`` only when some
    member copies another."""
    out: dict[str, Any] = {
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
    if story.copies:
        out["copies"] = {version: list(ids) for version, ids in story.copies.items()}
    return out


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
        copies={str(v): tuple(ids) for v, ids in data.get("copies", {}).items()},
    )
