"""How well ``dedup.merge`` recovers disagreements between versions of one story.

Why: a canonical story is only trustworthy if its list of differences is complete (recall)
and not padded with noise (precision). Real clusters carry no labels for their
disagreements, so this benchmark plants them: each of N ecbplus-dev articles becomes 2-4
versions, and some versions get a changed number, date or name in one sentence, a name
swapped in a sentence they also word differently (a rewrite: "known as IV-K, claimed
responsibility for the attack" / "The Islamic State claimed responsibility for the
massacre"), a dropped sentence, or an extra sentence from an article of another topic.
Version 0 is the original.
Versions other than 0 also lose a word or two in ``--rewrite`` of their sentences, so
alignment is tested on edited sentences, not only on exact copies. Everything is seeded,
so the table is reproducible.

A reported difference matches a planted one when the kind is the same, each planted value
is contained in (or contains) a reported value with exactly the same members, and both
list the same number of values. Sentence differences match on members and on the sentence
text. Recall = planted differences matched / planted; precision = reported differences that
match a planted one / reported. A rewritten sentence may or may not align with its original,
so a sentence difference that reports either of them is neither counted nor held against
precision. The ``name (rewritten)`` row is the recall of the rewritten swaps alone (they
are also in the ``name`` row).

Run: ``python -m benchmarks.merge_quality [--articles 200] [--seed 0]``
Data: ecbplus-dev (``benchmarks.corpora.ecbplus_dir``; ECB+, CC BY 3.0, Cybulska and Vossen,
LREC 2014).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora import ecbplus_dir
from dedup.merge import merge
from dedup.normalize import (
    STOPWORDS,
    clean_text,
    content_tokens,
    split_sentences,
    strip_boilerplate,
    tokens,
)
from dedup.records import Article, Difference

KINDS = ("number", "date", "name", "sentence")

# The benchmark finds what to change with its own patterns, independent of dedup.merge's.
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)
_ANY_MONTH = r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b"
_DATE_MD = re.compile(rf"\b{_MONTH} (\d{{1,2}})\b")
_WEEKDAY = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_YEAR = re.compile(r"\b(?:in|since) ((?:19|20)\d\d)\b")
_NUMBER = re.compile(r"(?<![\w.,$-])(\d{1,3}(?:,\d{3})*|\d+)(?![\w.,:-]*\d)(?! ?%)")
_NAME = re.compile(r"(?<=[a-z,] )([A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*)\b")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Planted:
    """A difference the benchmark planted: kind and value -> members (as a set).

    ``rewritten``: the sentences of a swap in reworded sentences (original, rewrite).
    """

    kind: str
    variants: dict[str, frozenset[str]]
    rewritten: tuple[str, ...] = ()


def _load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sentences(text: str) -> list[str]:
    return split_sentences(strip_boilerplate(clean_text(text)))


_DATELINE = re.compile(
    rf"{_ANY_MONTH}|{_WEEKDAY.pattern}|posted|updated|published|last|[ap]\.?m\b|\b[A-Z]{{2,3}}T\b",
    re.IGNORECASE,
)


def _is_claim(sentence: str) -> bool:
    """Two or more words once dateline words are gone: a claim, not a timestamp line."""
    rest = _DATELINE.sub(" ", sentence)
    return len([w for w in re.findall(r"[A-Za-z]{2,}", rest) if w.lower() not in STOPWORDS]) >= 2


def _number_change(sentence: str, rng: random.Random) -> tuple[str, str, str] | None:
    for m in _NUMBER.finditer(sentence):
        around = sentence[max(0, m.start() - 12) : m.end() + 12]
        old = m.group(1)
        if re.search(_ANY_MONTH, around) or re.fullmatch(r"(?:19|20)\d\d", old):
            continue  # a date, not a count
        before, after = sentence[: m.start()], sentence[m.end() :]
        if re.search(r"\d ?[:,.] ?$", before) or re.match(r"[:,.] ?\d", after):
            continue  # a time of day, or part of a tokenised "910, 000" / "5. 9"
        value = int(old.replace(",", ""))
        new_value = value + rng.choice([1, 2, 3, 5, 10]) if value < 50 else int(value * 1.2) + 1
        new = f"{new_value:,}" if "," in old else str(new_value)
        return sentence[: m.start()] + new + sentence[m.end() :], old, new
    return None


def _date_change(sentence: str, rng: random.Random) -> tuple[str, str, str] | None:
    m = _DATE_MD.search(sentence)
    if m:
        day = int(m.group(1))
        new_day = day + rng.choice([1, 2, 3]) if day < 25 else day - rng.choice([1, 2, 3])
        old = m.group(0)
        new = old[: m.start(1) - m.start()] + str(new_day)
        return sentence[: m.start()] + new + sentence[m.end() :], old, new
    m = _WEEKDAY.search(sentence)
    if m:
        old = m.group(1)
        new = _DAYS[(_DAYS.index(old) + rng.choice([1, 2, 5])) % 7]
        return sentence[: m.start()] + new + sentence[m.end() :], old, new
    m = _YEAR.search(sentence)
    if m:
        old = m.group(1)
        new = str(int(old) + rng.choice([-2, -1, 1]))
        return sentence[: m.start(1)] + new + sentence[m.end(1) :], old, new
    return None


def _name_change(sentence: str, rng: random.Random, pool: list[str]) -> tuple[str, str, str] | None:
    if sum(w[:1].isupper() for w in sentence.split()) > len(sentence.split()) / 2:
        return None  # a Title Case headline: every word looks like a name
    for m in _NAME.finditer(sentence):
        old = m.group(1)
        abbreviation = sentence[m.end() : m.end() + 1] == "."
        if re.search(rf"{_ANY_MONTH}|{_WEEKDAY.pattern}", old) or abbreviation:
            continue  # a month, a weekday, or an abbreviated title (Sgt., Rep.)
        if rng.random() < 0.5:  # a misspelling: John Smith -> John Smyth
            last = old.split()[-1]
            i = rng.randrange(1, len(last))
            letter = rng.choice([c for c in "aeiouy" if c != last[i].lower()])
            new = old[: len(old) - len(last)] + last[:i] + letter + last[i + 1 :]
        else:  # another name altogether
            choices = [p for p in pool if p != old and p not in sentence]
            if not choices:
                continue
            new = rng.choice(choices)
        return sentence[: m.start(1)] + new + sentence[m.end(1) :], old, new
    return None


# A name as the subject of a verb: followed by a lower-case word that looks like a verb in
# the past or third person, then another lower-case word ("IV-K claimed responsibility").
# Own pattern, independent of dedup.merge's.
_ROLE_NAME = re.compile(
    r"(?<![\w-])([A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*),? ([a-z]{2,}(?:ed|s)) ([a-z]{3,})\b"
)
_OPENERS = ("By one account, ", "Reports now say that ", "In a later account, ")


def _rewritten_name_change(
    sentence: str, rng: random.Random, pool: list[str]
) -> tuple[str, str, str] | None:
    """Swap a name that has a role and reword the rest: a new opening replaces the words
    before the name, and the sentence ends at the first comma after the role."""
    if sum(w[:1].isupper() for w in sentence.split()) > len(sentence.split()) / 2:
        return None  # a Title Case headline
    for m in _ROLE_NAME.finditer(sentence):
        old = m.group(1)
        if m.start() == 0 or re.search(rf"{_ANY_MONTH}|{_WEEKDAY.pattern}", old):
            continue
        if {m.group(2), m.group(3)} & STOPWORDS or old.split()[0].lower() in STOPWORDS:
            continue
        choices = [p for p in pool if p != old and p not in sentence]
        if not choices:
            return None
        new = rng.choice(choices)
        rest = sentence[m.end(1) :].lstrip(",")
        clause = rest.split(",")[0].rstrip(" .!?")
        if len(clause.split()) < 5:
            continue  # too little left to say what the sentence is about
        return rng.choice(_OPENERS) + new + clause + ".", old, new
    return None


def _reword(sentence: str, rng: random.Random) -> str:
    """Drop one or two lower-case words (never a number, a word next to one, or a name)."""
    words = sentence.split(" ")
    digit = [any(c.isdigit() for c in w) for w in words]
    cut = [
        i
        for i, w in enumerate(words[1:-1], 1)
        if w.isalpha() and w.islower() and not digit[i - 1] and not digit[i + 1]
    ]
    for i in sorted(rng.sample(cut, min(len(cut), rng.randint(1, 2))), reverse=True):
        del words[i]
    return " ".join(words)


def _plant_name_swap(sentences: list[str], positions: list[int],
                     versions: list[list[str | None]], ids: list[str], rng: random.Random,
                     names: list[str]) -> list[Planted]:
    """The first claim (in ``positions`` order) with a name in a role, reworded with another
    name in some versions; its position leaves ``positions``. No such claim: nothing."""
    n = len(ids)
    for pos in positions:
        swap = _rewritten_name_change(sentences[pos], rng, names)
        if swap is None:
            continue
        new_sentence, old, new = swap
        changed = sorted(rng.sample(range(1, n), rng.randint(1, n - 1)))
        for k in changed:
            versions[k][pos] = new_sentence
        positions.remove(pos)
        return [Planted("name", {old: frozenset(ids[k] for k in range(n) if k not in changed),
                                 new: frozenset(ids[k] for k in changed)},
                        (sentences[pos], new_sentence))]
    return []


def make_cluster(
    doc: dict[str, str],
    rng: random.Random,
    names: list[str],
    extras: list[str],
    rewrite: float = 0.3,
) -> tuple[list[Article], list[Planted]]:
    """2-4 versions of one article with planted changes, and the differences planted."""
    sentences = _sentences(doc["text"])
    n = rng.randint(2, 4)
    ids = [f"{doc['doc_id']}~v{k}" for k in range(n)]
    versions: list[list[str | None]] = [list(sentences) for _ in range(n)]
    planted: list[Planted] = []
    # Sentence 0 is the title line; datelines ("Updated 5:40 p.m. ET") state no claim.
    positions = [i for i in range(1, len(sentences)) if _is_claim(sentences[i])]
    rng.shuffle(positions)
    # One name swap in a reworded sentence per cluster, where a sentence has a name with a
    # role (the other changes are drawn below, one action per sentence).
    planted += _plant_name_swap(sentences, positions, versions, ids, rng, names)
    for pos in positions[: max(1, len(positions) // 3)]:
        changed = sorted(rng.sample(range(1, n), rng.randint(1, n - 1)))
        kept = [k for k in range(n) if k not in changed]
        action = rng.choice(["number", "date", "name", "drop"])
        if action == "drop":
            if len(kept) == n or len(sentences) < 4:
                continue
            for k in changed:
                versions[k][pos] = None
            text = sentences[pos]
            if len(content_tokens(text)) >= 2:  # merge's min_sentence_words
                planted.append(Planted("sentence", {text: frozenset(ids[k] for k in kept)}))
            continue
        change = {
            "number": _number_change,
            "date": _date_change,
            "name": lambda s, r: _name_change(s, r, names),
        }[action](sentences[pos], rng)
        if change is None:
            continue
        new_sentence, old, new = change
        for k in changed:
            versions[k][pos] = new_sentence
        planted.append(
            Planted(
                action,
                {
                    old: frozenset(ids[k] for k in kept),
                    new: frozenset(ids[k] for k in changed),
                },
            )
        )
    rewritten = {s for p in planted for s in p.rewritten}
    for k in range(1, n):  # light rewording: other outlets cut words here and there
        for i, s in enumerate(versions[k]):
            if i and s is not None and s not in rewritten and rng.random() < rewrite:
                versions[k][i] = _reword(s, rng)
    out_versions = [[s for s in v if s is not None] for v in versions]
    if rng.random() < 0.5:  # one version adds a sentence from another topic
        k = rng.randrange(n)
        extra = rng.choice(extras)
        out_versions[k].insert(rng.randint(1, len(out_versions[k])), extra)
        planted.append(Planted("sentence", {extra: frozenset([ids[k]])}))
    articles = [
        Article(ids[k], "\n".join(out_versions[k]), title=doc.get("title") or "") for k in range(n)
    ]
    rng.shuffle(articles)  # merge must not depend on input order
    return articles, planted


def _words(text: str) -> set[str]:
    return set(tokens(clean_text(re.sub(r" ' (?=s\b)", "'", text))))


def _matches(reported: Difference, planted: Planted) -> bool:
    if reported.kind != planted.kind or len(reported.variants) != len(planted.variants):
        return False
    if planted.kind == "sentence":
        ((text, members),) = planted.variants.items()
        for value, got in reported.variants.items():
            overlap = len(_words(text) & _words(value)) / max(1, len(_words(text) | _words(value)))
            if frozenset(got) == members and overlap >= 0.8:
                return True
        return False
    for value, members in planted.variants.items():
        v = value.casefold()
        if not any(
            frozenset(got) == members and (v in r.casefold() or r.casefold() in v)
            for r, got in reported.variants.items()
        ):
            return False
    return True


def _tolerated(reported: Difference, planted: list[Planted]) -> bool:
    """A sentence difference reporting one side of a rewritten swap (see the module doc)."""
    if reported.kind != "sentence":
        return False
    for p in planted:
        for text in p.rewritten:
            for value in reported.variants:
                union = _words(text) | _words(value)
                if len(_words(text) & _words(value)) / max(1, len(union)) >= 0.8:
                    return True
    return False


REWRITTEN = "name (rewritten)"


def run(
    articles: int, seed: int, rewrite: float = 0.3, verbose: bool = False
) -> dict[str, dict[str, float]]:
    """Build the planted clusters, merge each, and score per kind and overall."""
    rng = random.Random(seed)
    docs = [d for d in _load(ecbplus_dir() / "articles.jsonl") if len(_sentences(d["text"])) >= 5]
    docs.sort(key=lambda d: d["doc_id"])
    chosen = rng.sample(docs, min(articles, len(docs)))
    names = sorted(
        {
            m.group(1)
            for d in docs
            for m in _NAME.finditer(d["text"])
            if len(m.group(1)) > 3 and not re.match(rf"{_ANY_MONTH}|{_WEEKDAY.pattern}", m.group(1))
        }
    )
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in (*KINDS, REWRITTEN, "all")}
    elapsed = 0.0
    for doc in chosen:
        topic = doc["doc_id"].split("_")[0]
        extras = [
            s
            for d in rng.sample(docs, 5)
            if d["doc_id"].split("_")[0] != topic
            for s in _sentences(d["text"])[1:3]
            if _is_claim(s) and len(content_tokens(s)) >= 2
        ] or ["An unrelated sentence about the weather in Lisbon appeared here."]
        cluster, planted = make_cluster(doc, rng, names, extras, rewrite)
        start = time.perf_counter()
        story = merge(cluster)
        elapsed += time.perf_counter() - start
        for p in planted:
            hit = any(_matches(r, p) for r in story.differences)
            for kind in (p.kind, "all", *([REWRITTEN] if p.rewritten else [])):
                counts[kind]["planted"] += 1
                counts[kind]["recalled"] += hit
            if verbose and not hit:
                print("MISSED", p.kind, dict(p.variants), p.rewritten)
        for r in story.differences:
            hit = any(_matches(r, p) for p in planted)
            if not hit and _tolerated(r, planted):
                continue
            for kind in (r.kind, "all"):
                counts[kind]["reported"] += 1
                counts[kind]["correct"] += hit
            if verbose and not hit:
                print("EXTRA", r.kind, r.context, r.variants)
    table = {}
    for kind, c in counts.items():
        table[kind] = {
            "planted": c["planted"],
            "reported": c["reported"],
            "recall": c["recalled"] / c["planted"] if c["planted"] else float("nan"),
            "precision": c["correct"] / c["reported"] if c["reported"] else float("nan"),
        }
    table["all"]["seconds"] = elapsed
    table["all"]["clusters"] = len(chosen)
    return table


def main() -> None:
    """Print the recall/precision table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=200, help="base articles (clusters)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rewrite", type=float, default=0.3, help="share of sentences reworded per version"
    )
    parser.add_argument("--verbose", action="store_true", help="print misses and extras")
    args = parser.parse_args()
    table = run(args.articles, args.seed, args.rewrite, args.verbose)
    print(
        f"merge quality: {table['all']['clusters']:.0f} clusters of 2-4 versions, "
        f"seed {args.seed}, "
        f"{args.rewrite:.0%} of sentences reworded"
    )
    print(f"{'kind':<18}{'planted':>9}{'reported':>10}{'recall':>9}{'precision':>11}")
    for kind, row in table.items():
        if kind == REWRITTEN:
            print(f"{kind:<18}{row['planted']:>9}{'':>10}{row['recall']:>9.3f}{'':>11}")
            continue
        print(
            f"{kind:<18}{row['planted']:>9}{row['reported']:>10}"
            f"{row['recall']:>9.3f}{row['precision']:>11.3f}"
        )
    print(f"merge time: {table['all']['seconds']:.2f} s")


if __name__ == "__main__":
    main()
