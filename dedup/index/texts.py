"""What an add computes from an article's text alone (terms, TF, copies signature, years),
remembered by the text: verbatim copies are normalized and counted once (#18)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dedup import excerpts, normalize, signatures
from dedup.config import Config
from dedup.index import terms
from dedup.prepare import prepare_lines
from dedup.records import Article


@dataclass(frozen=True, slots=True)
class TextTerms:
    """One text's stored terms: term ids (int32, sorted) and TF (float32) as
    ``terms.count_terms`` gives them, its copies signature (None: no shingles), the
    years it names, and its opening (``excerpts.Openings``: key, 0 for none, and whether
    it is short enough to be an excerpt). A pure function of the text and title, under
    fixed settings."""

    ids: np.ndarray
    tf: np.ndarray
    copy_sig: np.ndarray | None
    years: frozenset[str]
    opening: int = 0
    short: bool = False


_SKIP = ("", "")  # a cached line that is empty or page furniture


class Lines:
    """``normalize.strip_boilerplate(normalize.clean_text(text))`` line by line, each
    distinct line cleaned and judged once (as ``dedupe.LineCache``).

    Why: copies share their lines (a wire story's paragraphs, an outlet's furniture), and
    cleaning and judging lines was a fifth of looking a text up. ``normalize.clean_line``
    of every line joined is ``clean_text`` of the text (where it is None, the text is
    cleaned whole), so the lines equal the uncached ones. The cache starts over past
    ``max_entries`` lines (~450 bytes each: 30 MB at most).
    """

    def __init__(self, max_entries: int = 1 << 16) -> None:
        self.cache: dict[str, tuple[str, str]] = {}
        self.max_entries = max_entries

    def __call__(self, text: str) -> list[str]:
        cache = self.cache
        if len(cache) > self.max_entries:
            cache.clear()
        kept: list[str] = []
        seen: set[str] = set()
        for raw in text.split("\n"):
            hit = cache.get(raw)
            if hit is None:
                line = normalize.clean_line(raw)
                if line is None:  # a mark that reaches across lines: the whole text
                    return normalize.strip_boilerplate(normalize.clean_text(text), frozenset())
                hit = (_SKIP if not line or normalize.is_boilerplate(line)
                       else (line.casefold(), line))
                cache[raw] = hit
            if hit is _SKIP or hit[0] in seen:
                continue
            seen.add(hit[0])
            kept.append(hit[1])
        return kept


def text_key(lines: list[str], title: str) -> bytes:
    """A digest of what ``prepare_lines`` reads: the cleaned, boilerplate-free lines and
    the title (lines hold no newline, and the title's length comes first, so no two
    articles that differ there share the string hashed)."""
    text = f"{len(title)}:{title}\n" + "\n".join(lines)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class TextCache:
    """``TextTerms`` of the texts seen lately, least recently used dropped past
    ``max_entries`` (~2 KB each: 35 MB at most).

    Why: a heavy-tailed feed repeats texts: syndication runs one wire story under each
    outlet's furniture, and on the synthetic feed with big events four articles in ten
    repeat an earlier text once the furniture is stripped. Normalizing, term counting and
    min-hashing were a third of an add; a repeat now costs the stripping and one lookup.
    Everything cached is computed by the same functions as before, so a hit gives the same
    arrays a miss would.
    """

    def __init__(self, config: Config, vocabulary: terms.Vocabulary,
                 minhasher: signatures.MinHasher, max_entries: int = 1 << 14) -> None:
        self.config = config
        self.vocabulary = vocabulary
        self.minhasher = minhasher
        self.max_entries = max_entries
        self.lines = Lines()
        self.entries: OrderedDict[bytes, TextTerms] = OrderedDict()
        self.misses = 0  # texts computed (``lookup`` of a repeat adds nothing here)

    def lookup(self, batch: Sequence[Article]) -> list[TextTerms]:
        """``TextTerms`` of each article, computing those of texts not cached (once per
        distinct text of the batch)."""
        keys = []
        found: dict[bytes, TextTerms] = {}
        todo: dict[bytes, tuple[list[str], str]] = {}
        for article in batch:
            lines = self.lines(article.text)
            key = text_key(lines, article.title)
            keys.append(key)
            hit = self.entries.get(key)
            if hit is not None:
                self.entries.move_to_end(key)
                found[key] = hit
            elif key not in todo:
                todo[key] = (lines, article.title)
        if todo:
            found.update(zip(todo, self._compute(list(todo.values())), strict=True))
            self.misses += len(todo)
            self.entries.update((k, found[k]) for k in todo)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return [found[k] for k in keys]

    def _compute(self, texts: Sequence[tuple[list[str], str]]) -> list[TextTerms]:
        """Normalize, count terms and min-hash the copies shingles of (lines, title)s."""
        prepared = [prepare_lines(lines, title, body=False) for lines, title in texts]
        cfg = self.config
        ids, tf, lengths, token_hashes, token_counts = terms.count_terms(
            self.vocabulary, prepared, cfg.refine.sublinear_tf)
        copy_sets = signatures.hashed_shingles(token_hashes, token_counts,
                                               cfg.signatures.shingle_size)
        copy_sigs = self.minhasher.signatures(copy_sets)
        openings = excerpts.Openings.of([p.tokens for p in prepared], cfg.clustering)
        keys, short = openings.keys.tolist(), openings.short.tolist()
        ends = np.cumsum(lengths)
        starts = ends - lengths
        return [
            TextTerms(ids[s:e].copy(), tf[s:e].copy(),
                      copy_sigs[k].copy() if len(copy_sets[k]) else None,
                      frozenset(p.terms.years), keys[k], short[k])
            for k, (s, e, p) in enumerate(zip(starts.tolist(), ends.tolist(), prepared,
                                              strict=True))
        ]

    def openings(self, texts: Sequence[str]) -> excerpts.Openings:
        """The openings of stored texts (days unknown), as ``lookup`` finds them: the same
        lines, tokenized as ``prepare_lines`` does, for an index written before it stored
        them (or under other excerpt settings)."""
        tokens = [normalize.tokens(" ".join(self.lines(text))) for text in texts]
        return excerpts.Openings.of(tokens, self.config.clustering)
