"""A seeded synthetic news feed with exact ground truth, from 1,000 to 1,000,000 articles.

Why: ECB+ dev has 509 articles, too few to measure speed or memory, and its gold labels
say nothing about *which* facts differ between versions. This generator plants both.

Base stories are recombined ECB+ dev sentences (several dev articles of one topic shuffled
together) with fresh names, numbers and dates, so each base story is a distinct event.
Each story then gets the versions a feed carries:

- ``syndication``: the same sentences under another outlet's boilerplate (navigation
  lines such as "PREV ...", "NEXT ...", "Share.", "Tags: ...", bylines, "Exit mobile version");
- ``light``: a synonym or two, a number off by one (143 vs 144), maybe one sentence dropped;
- ``rewrite``: sentences dropped, reordered and merged, synonyms, numbers, dates and the
  spelling of a name changed, sometimes a sentence no other version carries;
- ``truncated``: only the lede (first one to three sentences);
- hard negatives: same topic and names, another event or date. They get their own gold
  cluster (and their own versions).

Versions per story follow a heavy-tailed law, as real feeds do (#18): 45% of stories have
one version, most of the rest 2-10 (an exponential law; median 3), 2% 11-40, and about one
story in 1,000 (``TAIL_RATE``) is the day's big event, with a log-uniform 300 to 5,000
versions, most of them verbatim syndication (``TAIL_KINDS``: a wire story run by hundreds of
outlets), the rest light edits, rewrites and ledes. The tail draws its own random numbers
(seed + 7), so ``tail=False`` (``--no-tail``) writes exactly the corpus of generator
version 2, before the tail, for old-vs-new comparisons.

Every disagreement between versions of one story is recorded as a difference shaped like
``dedup.records.Difference``: ``kind`` (number | date | name | sentence), ``gold``,
``context`` and ``variants`` (value -> article ids), so a merger can be scored.

Generation streams story by story (a bounded shuffle buffer mixes stories the way a feed
interleaves them), so 1M articles go to Parquet in chunks without holding the corpus:

    python -m benchmarks.synthetic --docs 1000000 -o synthetic-1m.parquet
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.corpora import Corpus, ecbplus_dir

DEFAULT_SEED = 13
GENERATOR_VERSION = 3  # bump when output changes, so cached corpora are rebuilt
# The heavy tail of versions per story (see the module docstring).
TAIL_RATE = 0.001
TAIL_SIZES = (300, 5_000)
# Kinds of a big event's versions after its original (weights): mass verbatim syndication.
TAIL_KINDS = (("syndication", "light", "rewrite", "truncated"), (70, 10, 12, 8))
BIG_EVENT = 300  # versions from which a story counts as a big event in the tables
DEFAULT_CHUNK = 10_000


def _words(text: str) -> list[str]:
    """Whitespace-separated word lists, kept compact in the source."""
    return text.split()


MONTHS = _words(
    "January February March April May June July August September October November December"
)
WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_NOT_NAMES = {
    *MONTHS,
    *WEEKDAYS,
    *_words(
        """The A An I In On At He She It Its They We You But And Or So This That These Those
        His Her Their Our My After Before When While As If For Of To By With From Mr Mrs Ms Dr
        Who What Where Why How There Here Then Also According Police Officials Authorities One
        Two Three Four Five Six Seven Eight Nine Ten Some Many Most All No Not Yes Both Each
        Last First Next Now Later Earlier Today Tonight Yesterday Tomorrow Since Until Despite
        However Meanwhile Still Just Even Only Because Although Though Among During Under Over
        Into About Against Around Between Without Within Through Across Once"""
    ),
}
_ORG_SUFFIXES = set(
    _words(
        """Center Centre Hall Party Commission University Department Court Company Corp Inc
        Foods Club Agency Council Ministry Association Institute Hospital Airport Bank Group
        Service Services Network Times Post News Press Church School College Festival Awards
        Stadium Bridge Street River Island Islands Sea Ocean Valley Office Prize Games Cup
        League Force Army Navy Senate House Assembly"""
    )
)
_FIRST_NAMES = _words(
    """Adrian Alma Anders Anika Arlen Beatriz Bram Callum Carmen Celia Dario Della Dmitri Edda
    Elian Emre Esther Farid Freya Gideon Greta Hana Hugo Ines Ivo Jalen Janne Joon Kasia Kemal
    Lars Leona Lidia Malik Mara Mateo Nadia Niko Noor Odile Omar Oren Paula Petra Quinn Rafael
    Rania Rosa Sami Selma Soren Talia Teo Ulla Vera Viktor Wren Yara Yusuf Zora"""
)
_SYLLABLES_A = _words("Ber Cal Dor Fen Gar Hal Kar Lor Mal Nor Per Ral Sol Tam Val Wen Zan Bel")
_SYLLABLES_A += ["Cor", "Dra"]
_SYLLABLES_B = _words("an en in on ar er or el il al ov ek ad ur ia")
_SYLLABLES_C = _words("to ski vic ley son dez ova ani berg wood ford mont ez ard ner")
_SOURCE_A = _words("Daily Metro Evening Global Coastal Valley Capital Northern Southern Union")
_SOURCE_B = _words("Courier Ledger Herald Tribune Wire Gazette Observer Dispatch Sentinel Journal")

SYNONYMS = {
    "said": "stated",
    "says": "states",
    "told": "informed",
    "announced": "declared",
    "began": "started",
    "begin": "start",
    "large": "big",
    "small": "little",
    "help": "assist",
    "helped": "assisted",
    "showed": "revealed",
    "arrested": "detained",
    "home": "house",
    "car": "vehicle",
    "officials": "authorities",
    "attack": "assault",
    "people": "persons",
    "killed": "slain",
    "injured": "hurt",
    "died": "perished",
    "near": "close to",
    "later": "subsequently",
    "also": "additionally",
    "after": "following",
    "before": "prior to",
    "about": "around",
    "building": "structure",
    "team": "squad",
    "won": "claimed",
    "decision": "ruling",
    "plans": "intends",
    "reported": "said",
    "police": "officers",
    "earlier": "previously",
    "major": "significant",
    "several": "a number of",
    "quickly": "rapidly",
    "expected": "anticipated",
    "show": "reveal",
    "city": "town",
}
_SYNONYM_RE = re.compile(r"\b(" + "|".join(sorted(SYNONYMS, key=len, reverse=True)) + r")\b")

_SLOT_RE = re.compile(
    r"(?P<md>\b(?:" + "|".join(MONTHS) + r")\s+\d{1,2}\b(?![.,:/]?\d))"
    r"|(?P<wd>\b(?:" + "|".join(WEEKDAYS) + r")\b)"
    r"|(?P<yr>(?<![\d.,:/])\b(?:19[5-9]\d|20[0-3]\d)\b(?![.,:/]?\d))"
    r"|(?P<num>(?<![\d.,:/$£€])\b\d{1,5}\b(?![.,:/]\d))"
    r"|(?P<name>\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2}\b)"
)

Slot = tuple[str, str]  # (kind, original surface) -- also the entity key within a story
Part = str | Slot


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """An ECB+ dev sentence cut into literal text and entity slots."""

    topic: int
    parts: tuple[Part, ...]
    slots: tuple[Slot, ...]


def _clean(sentence: str) -> str:
    """Undo the ECB+ tokenisation ("rear - ended", ``quotes''), so text reads like news."""
    s = sentence.replace("``", '"').replace("''", '"')
    s = re.sub(r"\s+([,.;:!?%)])", r"\1", s)
    s = re.sub(r"([($])\s+", r"\1", s)
    s = re.sub(r"\s+-\s+", "-", s)
    s = re.sub(r"\s+('s|n't|'re|'ve|'ll|'d|'m)\b", r"\1", s)
    s = re.sub("\\s+\u2019\\s*(s|t|re|ve|ll|d|m)\\b", "\u2019\\1", s)
    s = re.sub(r'"\s+(.*?)\s*"', r'"\1"', s)
    return re.sub(r"\s{2,}", " ", s).strip()


def _template(topic: int, sentence: str, known_names: frozenset[str] = frozenset()) -> Template:
    parts: list[Part] = []
    slots: list[Slot] = []
    pos = 0
    for m in _SLOT_RE.finditer(sentence):
        kind = m.lastgroup or ""
        surface = m.group(0)
        if kind == "name":
            words = surface.split()
            while words and words[0] in _NOT_NAMES:
                words.pop(0)
            opener = m.start() == 0 and len(words) == len(surface.split()) == 1
            if not words or (opener and words[0] not in known_names):
                continue  # a capitalised sentence opener is a name only if seen mid-sentence
            start = m.start() + surface.index(words[0])
            surface = " ".join(words)
            if surface in _NOT_NAMES or len(surface) < 3:
                continue
        else:
            start = m.start()
        if kind in ("md", "wd", "yr"):
            slot: Slot = (f"date:{kind}", surface)
        else:
            slot = ("number" if kind == "num" else kind, surface)
        parts.append(sentence[pos:start])
        parts.append(slot)
        slots.append(slot)
        pos = start + len(surface)
    parts.append(sentence[pos:])
    return Template(topic, tuple(p for p in parts if p != ""), tuple(dict.fromkeys(slots)))


@functools.lru_cache(maxsize=4)
def load_templates(path: str | None = None) -> tuple[Template, ...]:
    """Sentence templates from ECB+ dev (cached: built once per process, in ~0.1 s)."""
    src = Path(path) if path else ecbplus_dir() / "articles.jsonl"
    seen: set[str] = set()
    kept: list[tuple[int, str]] = []
    with src.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for raw in row["text"].split("\n"):
                s = _clean(raw)
                n_words = len(s.split())
                if not 7 <= n_words <= 45 or s in seen or not s[0].isupper():
                    continue
                if not s.endswith((".", '"', "!", "?")) or re.search(r"\d\s*[:/]\s*\d", s):
                    continue
                seen.add(s)
                kept.append((int(row["topic"]), s))
    first = [_template(topic, s) for topic, s in kept]
    known = frozenset(
        w for t in first for kind, surface in t.slots if kind == "name" for w in surface.split()
    )
    return tuple(_template(topic, s, known) for topic, s in kept)


# --------------------------------------------------------------------------- stories


@dataclass
class Story:
    """A base event: chosen sentences and the value of every entity slot."""

    label: str
    topic: int
    sentences: list[int]
    values: dict[Slot, str]
    published: datetime
    hard_negative_of: str | None = None


@dataclass
class Version:
    """One article of a story: which sentences it carries and where it disagrees."""

    article_id: str
    kind: str
    source: str
    items: list[tuple[int, ...]]  # each item: one sentence, or two merged into one
    overrides: dict[Slot, str] = field(default_factory=dict)
    synonym_rate: float = 0.0
    published: datetime | None = None


@dataclass
class SyntheticCorpus(Corpus):
    """Articles, gold labels and planted differences (see module docstring)."""

    seed: int = DEFAULT_SEED
    hard_negatives: dict[str, str] = field(default_factory=dict)  # gold -> look-alike gold


@dataclass
class SyntheticChunk:
    """A slice of the stream: articles with gold labels, and the differences of stories
    finished so far (a story's differences come with the chunk in which it was made)."""

    articles: list[dict[str, Any]]
    gold: list[str]
    differences: list[dict[str, Any]]
    hard_negatives: dict[str, str] = field(default_factory=dict)
    # Gold copy group of each article (``copy_group``), for near-duplicate removal (#21).
    copy_groups: list[str] = field(default_factory=list)


# Versions that are copies of their story's original text (#21): verbatim syndication under
# other furniture, and light edits (a synonym or two, a number, maybe a sentence dropped).
COPY_KINDS = frozenset({"original", "syndication", "light"})


def copy_group(label: str, article_id: str, kind: str) -> str:
    """Gold copy group of one version: its story's copies share one, any other version
    (rewrite, lede) is a group of its own."""
    return f"{label}/copies" if kind in COPY_KINDS else f"{label}/{article_id}"


class Generator:
    """Deterministic story-by-story generator; all randomness flows from ``seed``."""

    def __init__(self, seed: int = DEFAULT_SEED, templates: tuple[Template, ...] | None = None,
                 tail: bool = True):
        self.seed = seed
        self.rng = random.Random(seed)
        # The tail's own stream: with ``tail=False`` nothing draws from it, and ``rng`` gives
        # the corpus of generator version 2 draw for draw.
        self.tail_rng = random.Random(seed + 7) if tail else None
        self.templates = templates if templates is not None else load_templates()
        by_topic: dict[int, list[int]] = {}
        for i, t in enumerate(self.templates):
            by_topic.setdefault(t.topic, []).append(i)
        self.by_topic = by_topic
        self.topics = sorted(by_topic)
        self.topic_weights = [len(by_topic[t]) for t in self.topics]
        self.surnames = sorted(
            {a + b + c for a in _SYLLABLES_A for b in _SYLLABLES_B for c in _SYLLABLES_C}
        )
        self.sources = [f"{a} {b}" for a in _SOURCE_A for b in _SOURCE_B]
        self.recent_titles: list[str] = ["Markets close mixed as traders weigh rate outlook"]
        self.n_stories = 0
        self._id_key = str(seed).encode()
        # Kind of each version of the story ``stories`` yielded last (original, syndication,
        # light, rewrite, truncated): read beside the stream, so its items keep their shape.
        self.last_kinds: list[str] = []

    # -- values ------------------------------------------------------------------------

    def _fresh_value(self, slot: Slot, when: datetime) -> str:
        kind, surface = slot
        rng = self.rng
        if kind == "number":
            n = int(surface)
            if n <= 12:
                return str(rng.randint(1, 12))
            digits = len(surface)
            return str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        if kind == "date:md":
            return f"{MONTHS[when.month - 1]} {rng.randint(1, 28)}"
        if kind == "date:wd":
            return WEEKDAYS[rng.randrange(7)]
        if kind == "date:yr":
            return str(when.year - rng.choice((0, 0, 0, 1, 2, 5)))
        words = surface.split()
        last = words[-1]
        if len(words) > 1 and last in _ORG_SUFFIXES:
            return f"{rng.choice(self.surnames)} {last}"
        if len(words) == 1:
            return rng.choice(self.surnames)
        return f"{rng.choice(_FIRST_NAMES)} {rng.choice(self.surnames)}"

    def _vary(self, slot: Slot, value: str) -> str:
        """A value another version of the same event might print instead."""
        kind = slot[0]
        rng = self.rng
        if kind == "number":
            n = int(value)
            step = 1 if n < 100 else max(1, n // 100)
            new = n + rng.choice((-1, 1)) * rng.randint(1, 2) * step
            return str(new if new >= 0 else n + step)
        if kind == "date:md":
            month, day = value.split()
            d = int(day)
            return f"{month} {d + 1 if d < 28 else d - 1}"
        if kind == "date:wd":
            return WEEKDAYS[(WEEKDAYS.index(value) + rng.choice((-1, 1))) % 7]
        if kind == "date:yr":
            return str(int(value) + rng.choice((-1, 1)))
        words = value.split()
        i = len(words) - 1
        if len(words) > 1 and words[-1] in _ORG_SUFFIXES:
            i -= 1
        w = words[i]
        vowels = [j for j, c in enumerate(w) if c in "aeiou" and j > 0]
        if vowels:
            j = rng.choice(vowels)
            w = w[:j] + rng.choice([v for v in "aeiouy" if v != w[j]]) + w[j + 1 :]
        else:
            w = w + "e"
        words[i] = w
        return " ".join(words)

    def _article_id(self, story: int, member: int) -> str:
        digest = hashlib.blake2b(f"{story}:{member}".encode(), digest_size=8, key=self._id_key)
        return "a" + digest.hexdigest()

    # -- stories -----------------------------------------------------------------------

    def _pick_sentences(self, topic: int, k: int, exclude: set[int] | None = None) -> list[int]:
        pool = self.by_topic[topic]
        if exclude:
            pool = [i for i in pool if i not in exclude]
        return self.rng.sample(pool, min(k, len(pool)))

    def _fill_values(self, story: Story, sentence_ids: list[int]) -> None:
        for i in sentence_ids:
            for slot in self.templates[i].slots:
                if slot not in story.values:
                    story.values[slot] = self._fresh_value(slot, story.published)

    def new_story(self) -> Story:
        rng = self.rng
        label = f"s{self.n_stories:07d}"
        self.n_stories += 1
        topic = rng.choices(self.topics, weights=self.topic_weights)[0]
        published = datetime(2008, 1, 1) + timedelta(
            days=rng.randrange(16 * 365), seconds=rng.randrange(86_400)
        )
        story = Story(label, topic, self._pick_sentences(topic, rng.randint(5, 16)), {}, published)
        self._fill_values(story, story.sentences)
        return story

    def hard_negative(self, base: Story) -> Story:
        """Same topic and names, another event: few shared sentences, new numbers and dates."""
        rng = self.rng
        label = f"s{self.n_stories:07d}"
        self.n_stories += 1
        published = base.published + timedelta(
            days=rng.choice((-1, 1)) * rng.randint(20, 900), seconds=rng.randrange(86_400)
        )
        recurrence = rng.random() < 0.3  # e.g. the same annual event, another year
        share = 0.6 if recurrence else 0.3
        kept = [i for i in base.sentences if rng.random() < share] or [base.sentences[0]]
        n_new = max(2, len(base.sentences) - len(kept))
        new = self._pick_sentences(base.topic, n_new, exclude=set(base.sentences))
        sentences = kept + new
        rng.shuffle(sentences)
        names = {s: v for s, v in base.values.items() if s[0] == "name"}
        story = Story(label, base.topic, sentences, names, published, hard_negative_of=base.label)
        self._fill_values(story, sentences)
        return story

    def cluster_size(self) -> int:
        if self.tail_rng is not None and self.tail_rng.random() < TAIL_RATE:
            low, high = TAIL_SIZES
            return round(low * (high / low) ** self.tail_rng.random())
        r = self.rng.random()
        if r < 0.45:
            return 1
        if r < 0.98:
            return min(10, 2 + int(self.rng.expovariate(0.45)))
        return self.rng.randint(11, 40)

    def versions(self, story: Story, size: int, story_index: int) -> list[Version]:
        rng = self.rng
        out: list[Version] = []
        base_items = [(i,) for i in story.sentences]
        kinds, weights = (TAIL_KINDS if size >= BIG_EVENT else (
            ("syndication", "light", "rewrite", "truncated"), (35, 25, 25, 15)))
        for member in range(size):
            vid = self._article_id(story_index, member)
            source = rng.choice(self.sources)
            when = story.published + timedelta(minutes=rng.randrange(0, 48 * 60))
            kind = (
                "original"
                if member == 0
                else rng.choices(kinds, weights=weights)[0]
            )
            v = Version(vid, kind, source, list(base_items), published=when)
            if kind == "light":
                self._light(story, v)
            elif kind == "rewrite":
                self._rewrite(story, v)
            elif kind == "truncated":
                v.items = v.items[: rng.randint(1, min(3, len(v.items)))]
            out.append(v)
        return out

    def _carried(self, v: Version) -> list[Slot]:
        return [s for item in v.items for i in item for s in self.templates[i].slots]

    def _light(self, story: Story, v: Version) -> None:
        rng = self.rng
        v.synonym_rate = 0.15
        numbers = [s for s in self._carried(v) if s[0] == "number"]
        if numbers and rng.random() < 0.7:
            slot = rng.choice(numbers)
            v.overrides[slot] = self._vary(slot, story.values[slot])
        if len(v.items) > 3 and rng.random() < 0.3:
            del v.items[rng.randrange(1, len(v.items))]

    def _rewrite(self, story: Story, v: Version) -> None:
        rng = self.rng
        v.synonym_rate = 0.6
        lede, rest = v.items[0], v.items[1:]
        rest = [it for it in rest if rng.random() > 0.25]
        for _ in range(rng.randint(0, 2)):  # reorder: swap neighbours
            if len(rest) > 1:
                j = rng.randrange(len(rest) - 1)
                rest[j], rest[j + 1] = rest[j + 1], rest[j]
        if len(rest) > 1 and rng.random() < 0.6:  # merge two neighbours into one sentence
            j = rng.randrange(len(rest) - 1)
            rest[j : j + 2] = [rest[j] + rest[j + 1]]
        if rng.random() < 0.3:  # information only this version carries
            extra = self._pick_sentences(story.topic, 1, exclude=set(story.sentences))
            self._fill_values(story, extra)  # its new entities get their one true value
            for i in extra:
                rest.insert(rng.randint(0, len(rest)), (i,))
        v.items = [lede, *rest]
        for slot in dict.fromkeys(self._carried(v)):
            if slot in v.overrides:
                continue
            p = 0.2 if slot[0] == "name" else 0.3
            if rng.random() < p:
                v.overrides[slot] = self._vary(slot, story.values[slot])

    # -- rendering ---------------------------------------------------------------------

    def _sentence(self, i: int, values: dict[Slot, str], overrides: dict[Slot, str]) -> str:
        return "".join(
            p if isinstance(p, str) else overrides.get(p) or values[p]
            for p in self.templates[i].parts
        )

    def _synonyms(self, text: str, rate: float) -> str:
        if rate <= 0:
            return text
        rng = self.rng
        return _SYNONYM_RE.sub(
            lambda m: SYNONYMS[m.group(1)] if rng.random() < rate else m.group(1), text
        )

    def _render_item(self, item: tuple[int, ...], story: Story, v: Version) -> str:
        sentences = [self._sentence(i, story.values, v.overrides) for i in item]
        if len(sentences) == 1:
            return sentences[0]
        first, second = sentences[0].rstrip('.!?" '), sentences[1]
        opener = self.templates[item[1]].parts[0]
        word = opener.split()[0] if isinstance(opener, str) and opener.split() else ""
        if first.endswith('"') or word not in _NOT_NAMES or word == "I":  # keep names' case
            return f"{first}; {second}"
        return f"{first}, and {second[0].lower()}{second[1:]}"

    def _boilerplate(self, v: Version, tags: list[str]) -> tuple[list[str], list[str]]:
        """Outlet furniture: the lines a clusterer must look past."""
        rng = self.rng
        h = int.from_bytes(hashlib.blake2b(v.source.encode(), digest_size=2).digest(), "big")
        head: list[str] = []
        foot: list[str] = []
        if h & 1:
            head.append("Exit mobile version")
        if h & 2:
            head.append(f"By {rng.choice(_FIRST_NAMES)} {rng.choice(self.surnames)}, {v.source}")
        if h & 4:
            foot.append("Share.")
        if h & 8:
            foot.append("Tags: " + ", ".join(tags))
        if h & 16 or v.kind == "truncated":
            foot.append("Read more: " + rng.choice(self.recent_titles))
        if h & 32:
            foot.append("PREV " + rng.choice(self.recent_titles))
            foot.append("NEXT " + rng.choice(self.recent_titles))
        foot.append(
            f"© {v.published.year if v.published else 2024} {v.source}. All rights reserved."
        )
        return head, foot

    def render(self, story: Story, v: Version) -> dict[str, Any]:
        body = [self._synonyms(self._render_item(it, story, v), v.synonym_rate) for it in v.items]
        title_words = body[0].rstrip(".").split()
        title = " ".join(title_words[:14])
        names = [val for s, val in story.values.items() if s[0] == "name"][:4]
        head, foot = self._boilerplate(v, names or [title_words[0]])
        paragraphs = [*head, title, *body, *foot]
        return {
            "id": v.article_id,
            "title": title,
            "text": "\n\n".join(paragraphs),
            "published": v.published,
            "source": v.source,
        }

    # -- differences -------------------------------------------------------------------

    def _context(self, slot: Slot, story: Story, versions: list[Version]) -> str:
        for v in versions:
            for item in v.items:
                for i in item:
                    parts = self.templates[i].parts
                    if slot not in parts:
                        continue
                    k = parts.index(slot)
                    after = " ".join(
                        p if isinstance(p, str) else story.values[p] for p in parts[k + 1 :]
                    )
                    words = re.findall(r"[\w'-]+", after)[:3]
                    if not words:
                        before = " ".join(
                            p if isinstance(p, str) else story.values[p] for p in parts[:k]
                        )
                        words = re.findall(r"[\w'-]+", before)[-3:]
                    return " ".join(words)
        return ""

    def differences(self, story: Story, versions: list[Version]) -> list[dict[str, Any]]:
        if len(versions) < 2:
            return []
        out: list[dict[str, Any]] = []
        values: dict[Slot, dict[str, list[str]]] = {}
        carriers: dict[int, list[str]] = {}
        for v in versions:
            for slot in dict.fromkeys(self._carried(v)):
                value = v.overrides.get(slot) or story.values[slot]
                values.setdefault(slot, {}).setdefault(value, []).append(v.article_id)
            for i in dict.fromkeys(i for item in v.items for i in item):
                carriers.setdefault(i, []).append(v.article_id)
        for slot, variants in values.items():
            if len(variants) > 1:
                out.append(
                    {
                        "kind": slot[0].split(":")[0],
                        "gold": story.label,
                        "context": self._context(slot, story, versions),
                        "variants": {k: sorted(ids) for k, ids in sorted(variants.items())},
                    }
                )
        everyone = sorted(v.article_id for v in versions)
        for i, ids in carriers.items():
            if len(ids) < len(versions):
                present = sorted(ids)
                out.append(
                    {
                        "kind": "sentence",
                        "gold": story.label,
                        "context": self._sentence(i, story.values, {}),
                        "variants": {
                            "present": present,
                            "absent": sorted(set(everyone) - set(present)),
                        },
                    }
                )
        return out

    # -- the stream --------------------------------------------------------------------

    def stories(self) -> Iterator[tuple[Story, list[dict[str, Any]], list[dict[str, Any]]]]:
        """Endless stream of (story, its articles, its differences)."""
        recent: list[Story] = []
        while True:
            if recent and self.rng.random() < 0.12:
                story = self.hard_negative(self.rng.choice(recent))
            else:
                story = self.new_story()
            index = int(story.label[1:])
            versions = self.versions(story, self.cluster_size(), index)
            articles = [self.render(story, v) for v in versions]
            diffs = self.differences(story, versions)
            self.last_kinds = [v.kind for v in versions]
            self.recent_titles.append(articles[0]["title"])
            if len(self.recent_titles) > 200:
                del self.recent_titles[:100]
            recent.append(story)
            if len(recent) > 500:
                del recent[:250]
            yield story, articles, diffs


def iter_synthetic(
    n_docs: int, seed: int = DEFAULT_SEED, chunk_size: int = DEFAULT_CHUNK, tail: bool = True
) -> Iterator[SyntheticChunk]:
    """Stream exactly ``n_docs`` articles in shuffled chunks; memory stays O(chunk_size).

    ``tail``: draw the heavy tail of big events (False: generator version 2's corpus)."""
    if n_docs < 0:
        raise ValueError("n_docs must be >= 0")
    gen = Generator(seed, tail=tail)
    shuffle_rng = random.Random(seed + 1)
    buffer: list[tuple[dict[str, Any], str, str]] = []
    diffs: list[dict[str, Any]] = []
    related: dict[str, str] = {}
    remaining = n_docs
    stream = gen.stories()
    while remaining > 0:
        story, articles, story_diffs = next(stream)
        copies = [copy_group(story.label, a["id"], kind)
                  for a, kind in zip(articles, gen.last_kinds, strict=True)]
        if len(articles) > remaining:  # cut the last story to land exactly on n_docs
            articles = articles[:remaining]
            kept = {a["id"] for a in articles}
            story_diffs = _restrict(story_diffs, kept)
        remaining -= len(articles)
        buffer.extend((a, story.label, c) for a, c in zip(articles, copies, strict=False))
        diffs.extend(story_diffs)
        if story.hard_negative_of is not None:
            related[story.label] = story.hard_negative_of
        if len(buffer) >= 2 * chunk_size:
            shuffle_rng.shuffle(buffer)
            out, buffer = buffer[:chunk_size], buffer[chunk_size:]
            yield SyntheticChunk([a for a, _, _ in out], [g for _, g, _ in out], diffs, related,
                                 [c for _, _, c in out])
            diffs, related = [], {}
    shuffle_rng.shuffle(buffer)
    for start in range(0, len(buffer), chunk_size):
        out = buffer[start : start + chunk_size]
        yield SyntheticChunk([a for a, _, _ in out], [g for _, g, _ in out], diffs, related,
                             [c for _, _, c in out])
        diffs, related = [], {}


def _restrict(diffs: list[dict[str, Any]], kept: set[str]) -> list[dict[str, Any]]:
    """Differences among the articles that survived a cut, dropping any now unanimous."""
    out = []
    for d in diffs:
        variants = {k: [i for i in ids if i in kept] for k, ids in d["variants"].items()}
        variants = {k: ids for k, ids in variants.items() if ids}
        if len(variants) > 1:
            out.append({**d, "variants": variants})
    return out


def generate(n_docs: int, seed: int = DEFAULT_SEED, tail: bool = True) -> SyntheticCorpus:
    """The whole corpus in memory (fine up to a few 100k articles; stream beyond that)."""
    articles: list[dict[str, Any]] = []
    gold: list[str] = []
    differences: list[dict[str, Any]] = []
    related: dict[str, str] = {}
    for chunk in iter_synthetic(n_docs, seed, tail=tail):
        articles.extend(chunk.articles)
        gold.extend(chunk.gold)
        differences.extend(chunk.differences)
        related.update(chunk.hard_negatives)
    present = set(gold)  # a cut at n_docs can drop the story a hard negative resembles
    related = {k: v for k, v in related.items() if k in present and v in present}
    return SyntheticCorpus("synthetic", articles, gold, differences, seed, related)


if __name__ == "__main__":
    from benchmarks.synthetic_files import main

    main()
