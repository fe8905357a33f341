"""Members prepared for comparison, and ranked: the first is the story's base.

Why: the base is the most central, most complete, least boilerplate version (see
``dedup.merge.merge``); every other member is aligned against the story built from it, in
this order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from dedup.config import MergeConfig
from dedup.merge.similarity import (
    BAND,
    EPS,
    Member,
    Sentence,
    Similarity,
    cosine,
    prepare_sentence,
    unit_vector,
)
from dedup.merge.text import MemberText, member_text
from dedup.records import Article


def prepare(
    article: Article, config: MergeConfig, seen: dict[str, Sentence] | None = None
) -> Member:
    """Sentences, their vectors and stem sets, and the whole text's vector, tokenised once.

    ``seen`` shares sentences already prepared for other members of the cluster (their
    vectors are then the same objects, which ``Similarity`` maps to columns once).
    """
    title, sentences, share = member_text(article.text, article.title, config)
    return vectorise(article, title, sentences, share, {} if seen is None else seen)


def vectorise(
    article: Article, title: str, sentences: list[str], share: float, seen: dict[str, Sentence]
) -> Member:
    """``prepare`` after cleaning: the sentences' vectors and stem sets, and the document's.

    Tokens never span the space that joins sentences, so the document's counts are the
    sentences' counts added up in order: the same vector as ``text_vector(" ".join(sentences))``.
    """
    parts = []
    terms: list[str] = []
    for text in sentences:
        part = seen.get(text)
        if part is None:
            part = seen[text] = prepare_sentence(text)
        parts.append(part)
        terms.extend(part.terms)
    doc = Counter(terms)  # counted in the same order: the same keys in the same order
    return Member(
        article=article,
        title=title,
        sentences=sentences,
        vectors=[p.vector for p in parts],
        stemsets=[p.stems for p in parts],
        boilerplate=share,
        doc=unit_vector(doc),
    )


def prepare_all(
    articles: Sequence[Article], config: MergeConfig, given: Mapping[str, MemberText] | None = None
) -> list[Member]:
    """``prepare`` each article; members with the same cleaned title and sentences share one
    preparation (each keeps its own boilerplate share), exact copies also one cleaning.

    Syndicated copies are common, and often differ only in page furniture.
    """
    cleaned: dict[tuple[str, str], tuple[str, list[str], float]] = {}
    done: dict[tuple[str, tuple[str, ...]], Member] = {}
    seen: dict[str, Sentence] = {}
    out = []
    for article in articles:
        text = given.get(article.id) if given else None
        if text is None:
            raw = (article.text, article.title)
            text = cleaned.get(raw)
            if text is None:
                text = cleaned[raw] = member_text(article.text, article.title, config)
        title, sentences, share = text
        key = (title, tuple(sentences))
        first = done.get(key)
        if first is None:
            first = done[key] = vectorise(article, title, sentences, share, seen)
            out.append(first)
        else:
            out.append(
                Member(
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


def published_key(value: datetime | None) -> tuple[bool, float]:
    """Sort key of a publication time: earliest first, undated last (naive times are UTC)."""
    if value is None:
        return (True, 0.0)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (False, value.timestamp())


def base_scores(
    members: Sequence[Member], config: MergeConfig, sims: Similarity | None = None
) -> list[float]:
    """centrality + completeness - boilerplate share, per member (see ``merge``)."""
    n = len(members)
    if n > 1 and sims is None:
        sims = Similarity(members)
    cut = config.align_threshold - EPS
    total = sum(len(m.sentences) for m in members)
    doc_cos: dict[tuple[int, int], float] = {}
    exact = doc_cosines(members, sims.vocab) if n > 1 and sims is not None else None
    # Members with the same sentences share their vector list (``prepare_all``) and so have
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
            sure = claim & (block >= cut + BAND).any(axis=0)
            carried = int(sure.sum())
            unsure = claim & ~sure & (block > cut - BAND).any(axis=0)
            for col in np.flatnonzero(unsure):
                o, k = _owner(members, sims, int(col))
                vec = o.vectors[k]
                carried += any(sims.exact(vec, mv) >= cut for mv in m.vectors)
        completeness = complete[id(m.vectors)] = carried / claims if claims else 1.0
        scores.append(centrality + completeness - m.boilerplate)
    return scores


def _doc_cosine(
    members: Sequence[Member], i: int, j: int, cache: dict[tuple[int, int], float]
) -> float:
    """``cosine(members[i].doc, members[j].doc)``, computed once per pair where it is symmetric.

    It is symmetric (bit for bit) when the two dicts differ in length: both orders then sum
    over the shorter one in its own key order.
    """
    a, b = members[i].doc, members[j].doc
    key = (min(i, j), max(i, j)) if len(a) != len(b) else (i, j)
    if key not in cache:
        cache[key] = cosine(a, b)
    return cache[key]


# ``sum`` adds floats one by one, left to right, on the Python versions this package supports;
# numpy's cumulative sum does the same. Should ``sum`` ever compensate (as 3.12 does), the
# document cosines fall back to ``cosine`` itself.
_SEQUENTIAL = [1e100, 1.0, -1e100, 1.0]
_SUM_IS_SEQUENTIAL = sum(_SEQUENTIAL) == 1.0 and float(np.cumsum(_SEQUENTIAL)[-1]) == 1.0
# Dense member x term matrix of document vectors up to this many cells (32 MiB).
_DOC_MATRIX_MAX_CELLS = 1 << 22


def doc_cosines(members: Sequence[Member], vocab: dict[str, int]) -> list[list[float]] | None:
    """``cosine(members[i].doc, members[j].doc)`` for every pair, bit for bit; None when
    that cannot be promised (see ``_SUM_IS_SEQUENTIAL``) or the matrix would be too large.

    Why: document vectors are long, and these cosines were a fifth of the base score's time
    as Python loops. ``cosine`` sums ``a[k] * b[k]`` over the shorter dict's keys (the first
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


def _owner(members: Sequence[Member], sims: Similarity, row: int) -> tuple[Member, int]:
    """The member and sentence index of a matrix row."""
    for m in members:
        a = sims.start[m.id]
        if a <= row < a + len(m.sentences):
            return m, row - a
    raise IndexError(row)


def order_members(
    members: list[Member], config: MergeConfig, sims: Similarity | None = None
) -> list[Member]:
    """Base first, then the rest by the same score; ties by earliest published, then id."""
    scores = base_scores(members, config, sims)
    ranked = sorted(
        zip(scores, members, strict=True),
        key=lambda sm: (-round(sm[0], 9), published_key(sm[1].article.published), sm[1].id),
    )
    return [m for _, m in ranked]
