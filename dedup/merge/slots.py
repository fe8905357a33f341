"""Slots: mentions of several versions that fill the same role, and whether they agree.

Why: "143 people were killed" and "the deaths of 144 people" state one disputed count;
"23 arrested" and "1,500 marched" state two facts. A slot pairs mentions by kind, unit and
the words around them (``role_score``); its values that agree (``agree``) are one variant.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from functools import cache, lru_cache

from dedup.merge.mentions import Mention, roles_of
from dedup.merge.similarity import stem_word


def agree(a: Mention, b: Mention) -> bool:
    """Same value: equal numbers, compatible date parts, or one name inside the other."""
    if a.kind == "date":
        ka, kb = a.key, b.key
        shared = set(ka) & set(kb)
        return bool(shared) and all(ka[k] == kb[k] for k in shared)
    if a.kind == "name":
        ta, tb = a.words, b.words
        return ta <= tb or tb <= ta or abbreviates(a.value, b.value)
    return bool(a.key == b.key)


_LINKING = frozenset("of the and for de du la von van al".split())


@lru_cache(maxsize=1 << 14)
def abbreviates(a: str, b: str) -> bool:
    """Whether one name is the other abbreviated: word for word, each word the same, a short
    form of the other's ("Main St." / "Main Street") or the initials of a run of its words
    ("U.N." / "UN" / "United Nations", "U.N. Security Council" / "United Nations Security
    Council"). Versions of a story name one thing in the same slot, so a name spelled out
    in one and shortened in another is no difference. Lower-case words other than "of",
    "de", ... are no part of a name ("U.S.-drafted" / "United States-drafted")."""
    (wa, short_a), (wb, short_b) = _name_words(a), _name_words(b)
    if wa == wb or not (short_a or short_b) or max(len(wa), len(wb)) > _LONGEST_NAME:
        # Most pairs of names: nothing shortened, so no word can stand for others. Over
        # _LONGEST_NAME words: a run of capitalised words, no name (and no deep recursion).
        return False
    return _spells(wa, wb) or _spells(wb, wa)


_LONGEST_NAME = 24  # words


@lru_cache(maxsize=1 << 14)
def _name_words(name: str) -> tuple[tuple[str, ...], bool]:
    """A name's words (lower-case words but "of", "de", ... dropped), and whether any may be
    a short form: an initial or abbreviation with its full stop, letters in capitals ("UN",
    "ECB"), or one of ``SHORT_FORMS`` ("St", "Tenn"). Names recur far more than pairs."""
    words = tuple(w for w in name.replace("-", " ").split() if not w.islower() or w in _LINKING)
    return words, any(w.endswith(".") or (len(w) >= 2 and w.isupper())
                      or w.casefold() in SHORT_FORMS for w in words)


def _spells(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    """Whether ``short`` abbreviates ``long`` word by word (``abbreviates``); each (word,
    word) position is decided once, so a long name costs the product of the lengths."""

    @cache
    def rest(i: int, j: int) -> bool:
        if i == len(short) or j == len(long):
            return i == len(short) and j == len(long)
        word, other = short[i], long[j]
        if (word == other or _short_for(word, other) or _short_for(other, word)) and rest(
                i + 1, j + 1):
            return True
        letters = word.replace(".", "")
        if len(letters) < 2 or not letters.isupper() or other in _LINKING:
            return False
        initials = ""
        for k in range(j, len(long)):
            if long[k] not in _LINKING:
                initials += long[k][0]
                if not letters.startswith(initials.upper()):
                    return False
                if k > j and initials.upper() == letters and rest(i + 1, k + 1):
                    return True
        return False

    return rest(0, 0)


def _short_for(short: str, word: str) -> bool:
    """"St" for "Street", "Tenn" for "Tennessee", "W." for "West": a short form news style
    uses (``SHORT_FORMS``), or one letter with its full stop as an initial. Guessing from the
    letters would tie "UK" to "Ukraine", "Kent" to "Kentucky" and "Jo" to "John"."""
    letters = short.removesuffix(".")
    if len(letters) == 1:
        return short.endswith(".") and word[0] == letters and len(word) > 1
    return word.casefold() in SHORT_FORMS.get(letters.casefold(), ())


# Short forms of words in names, as news style writes them (streets, ranks and titles,
# companies, US states): the short form, then the words it stands for.
SHORT_FORMS: dict[str, tuple[str, ...]] = {
    short: tuple(words.split("/"))
    for short, words in (
        item.split("=")
        for item in """st=street/saint ave=avenue blvd=boulevard rd=road dr=drive/doctor
        ln=lane hwy=highway pkwy=parkway sq=square ct=court pl=place mt=mount/mountain
        ft=fort pt=point is=island co=company/county corp=corporation inc=incorporated
        ltd=limited bros=brothers dept=department univ=university intl=international
        natl=national assn=association gov=governor sen=senator rep=representative
        gen=general lt=lieutenant col=colonel capt=captain sgt=sergeant cpl=corporal
        adm=admiral cmdr=commander supt=superintendent det=detective insp=inspector
        prof=professor rev=reverend jr=junior sr=senior ala=alabama ariz=arizona
        ark=arkansas calif=california colo=colorado conn=connecticut del=delaware
        fla=florida ga=georgia ill=illinois ind=indiana kan=kansas kans=kansas
        ky=kentucky la=louisiana md=maryland mass=massachusetts mich=michigan
        minn=minnesota miss=mississippi mo=missouri mont=montana neb=nebraska
        nev=nevada okla=oklahoma ore=oregon pa=pennsylvania tenn=tennessee tex=texas
        va=virginia vt=vermont wash=washington wis=wisconsin wyo=wyoming""".split()
    )
}


RESPELLING = 0.75  # SequenceMatcher ratio from which two names are one name respelled


@lru_cache(maxsize=1 << 14)
def spelling_ratio(a: str, b: str) -> float:
    """``SequenceMatcher`` ratio of two names, or an upper bound of it below ``RESPELLING``.

    Only ratios from ``RESPELLING`` up are used as values; most pairs of names are far apart
    and fail the length bound (``real_quick_ratio``) or ``quick_ratio`` already. The same pairs
    recur in every sentence that names them, hence the cache.
    """
    length_bound = 2.0 * min(len(a), len(b)) / (len(a) + len(b)) if a or b else 1.0
    if length_bound < RESPELLING:
        return length_bound
    # ``quick_ratio``: characters in common, counted with multiplicity; the same float.
    common = (_letters(a) & _letters(b)).total()
    bound = 2.0 * common / (len(a) + len(b)) if a or b else 1.0
    return SequenceMatcher(None, a, b).ratio() if bound >= RESPELLING else bound


@lru_cache(maxsize=1 << 12)
def _letters(name: str) -> Counter[str]:
    """A name's characters with their counts (read only)."""
    return Counter(name)


def role_score(a: Mention, b: Mention, aligned: bool, max_ratio: float = 2.0) -> float | None:
    """How surely ``a`` and ``b`` fill the same slot; None when they cannot."""
    if a.kind != b.kind:
        return None
    if a.kind == "number" and (
        (a.unit != b.unit and not (aligned and _anchored(a, b, max_ratio)))
        or (not aligned and not a.unit)
    ):
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
        if agree(a, b):
            return 2.0 + near
        return 1.0 + near if near or (a.sole and b.sole) else None
    if a.kind == "name":
        if agree(a, b):
            return 10.0 + near
        # A respelling (Smith / Smyth) pairs on its own; another name needs the same words
        # around it.
        spelling = spelling_ratio(str(a.key), str(b.key))
        if spelling >= RESPELLING:
            return 2.0 + spelling + near
        return float(near) if near >= 2 else None
    # numbers
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


def _anchored(a: Mention, b: Mention, max_ratio: float = 2.0) -> bool:
    """Whether two numbers with different units in aligned sentences may state one fact.

    Only numbers of one measure (``_measure``: not "fell 5 percent to $12" / "fell $5 to 12
    percent", not "26.2 miles" / "42.2 kilometres"; a number with no unit may be of any)
    may, and then when equal ("Eleven members voted" / "11 votes"). Otherwise only numbers
    within ``max_ratio`` of each other, as across unaligned sentences ("fell 600m" / "fell
    2,000 feet" is a conversion): when the same content word stands before both and one
    has no unit ("injuring 40, the agency said" / "injured 41, according to") or both are
    fractional measures ("magnitude 6.8 earthquake" / "of magnitude 6.9 shook"), unlike
    counts of different things ("pulled 12 survivors" / "pulled 3 bodies"); or, each the
    only number of its sentence, when the rewrite moved one in its phrase ("a magnitude
    7.4 earthquake" / "a 7.2-magnitude earthquake").
    """
    measure_a, measure_b = _measure(a), _measure(b)
    unknown = (a.bare and not measure_a) or (b.bare and not measure_b)  # no unit at all
    if measure_a != measure_b and not unknown:
        return False
    if a.key == b.key:
        return True
    low, high = sorted((abs(a.key), abs(b.key)))
    if high > max_ratio * low:
        return False
    if a.label and a.label == b.label:
        return a.bare or b.bare or (_FRACTION.search(a.value) is not None
                                    and _FRACTION.search(b.value) is not None)
    return a.sole and b.sole and bool(
        (a.label and a.label == b.unit) or (b.label and b.label == a.unit))


_FRACTION = re.compile(r"\d\.\d+$")  # "6.8", not "1.5 million" (a count)
_CURRENCY_SIGNS = {"$": "dollar", "€": "euro", "£": "pound"}
# Units whose numbers measure one thing each (stems, as ``Mention.unit`` holds them): a
# sum in euros and one in pounds, or a length in miles and one in kilometres, are two
# statements of one fact at most, not a dispute.
_MEASURES = frozenset(stem_word(w) for w in """euros pounds dollars yen yuan rupees francs
    pesos roubles rubles percent miles kilometres kilometers km metres meters feet foot ft
    yards inches cm mm mph km/h kph knots celsius fahrenheit degrees kg kilograms lbs tonnes
    tons ounces grams litres liters gallons acres hectares barrels""".split())


def _measure(m: Mention) -> str:
    """What a number measures, as far as its unit tells: a currency ("$5", "5 dollars":
    "dollar"), a percentage, a unit of measure ("mil", "kilometr"), or "" (a count, or
    anything else)."""
    unit = m.unit
    if unit[:1] in _CURRENCY_SIGNS:
        return _CURRENCY_SIGNS[unit[0]]
    return unit if unit in _MEASURES else ""


def fill_slots(
    groups: Sequence[Sequence[Mention]],
    aligned: bool,
    max_ratio: float = 2.0,
    scores: dict[tuple[int, int], float | None] | None = None,
) -> list[list[Mention]]:
    """Group mentions of several members (one group each, in order) into same-role slots.

    ``scores`` memoises ``role_score`` by ``origin`` across calls with the same ``aligned``
    and ``max_ratio``: copies of a version repeat the same comparisons.
    """
    if scores is None:
        scores = {}
    slots: list[list[Mention]] = []
    voices: list[set[str]] = []  # the members in each slot
    bins: dict[tuple[str, ...], list[int]] = {}  # slots by ``_bins`` of their first mention
    for group in groups:
        opts: list[tuple[float, int, int]] = []  # (-score, gi, si): best first once sorted
        for gi, mention in enumerate(group):
            keys = _bins(mention, aligned)
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
                    score = scores[pair] = role_score(rep, mention, aligned, max_ratio)
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
                for key in _bins(mention, aligned):
                    bins.setdefault(key, []).append(len(slots))
                slots.append([mention])
                voices.append({mention.member})
    return slots


def _bins(mention: Mention, aligned: bool) -> list[tuple[str, ...]]:
    """Keys of which ``role_score`` needs one in common to pair two mentions: the kind, and
    the unit of a number (in aligned sentences also its value and label: ``_anchored``) or
    any component of a date. Comparing only within them skips the bulk of the pairs (each
    number against every number of the cluster) unscored."""
    if mention.kind == "number":
        if aligned:  # ``_anchored``: equal values, and labels beside labels or units
            keys = [("number", mention.unit), ("number", "=", str(mention.key))]
            return [*keys, ("number", mention.label)] if mention.label else keys
        return [("number", mention.unit)]
    if mention.kind == "date":
        return [("date", part) for part in mention.key]
    return [(mention.kind,)]


def variants_of(
    slot: Sequence[Mention],
    rank: dict[str, int],
    speakers: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """value -> members; values that agree (143 / 143, Putin / Vladimir Putin) share one entry.

    ``speakers``: the members each mention's member speaks for (itself where absent).
    """
    merged: list[tuple[Mention, set[str]]] = []
    for mention in slot:
        said_by = speakers.get(mention.member, (mention.member,)) if speakers else (
            mention.member,)
        for rep, members in merged:
            if agree(rep, mention):
                members.update(said_by)
                break
        else:
            merged.append((mention, set(said_by)))
    out = {rep.value: tuple(sorted(members, key=rank.__getitem__)) for rep, members in merged}
    return sorted_variants(out, rank)


def sorted_variants(
    variants: dict[str, tuple[str, ...]], rank: dict[str, int]
) -> dict[str, tuple[str, ...]]:
    """Values ordered by their first member (members are sorted by id), then by value."""
    return dict(sorted(variants.items(), key=lambda kv: (rank[kv[1][0]], kv[0])))


def slot_context(slot: Sequence[Mention]) -> str:
    """The words around the first version's mention: after it for numbers, else around it."""
    first = slot[0]
    if first.kind == "number":
        # Prefer a version that names the role right after the number ("people were killed").
        best = next((m for m in slot if roles_of(stem_word(t) for t in m.right[:3])), first)
        words = best.right[:3] or best.left[-3:]
    elif first.kind == "date":
        words = first.left[-3:]
    else:
        words = [*first.left[-2:], "…", *first.right[:2]]
    return " ".join(words).strip(" …")
