"""Differences: every disagreement between the versions of a story, listed once.

Why: the story must say where its versions disagree (143 vs 144 dead, Smith vs Smyth, a
sentence only one outlet carries) and who says what. Numbers, dates and names are compared
within aligned sentences (slot by slot), numbers also across the cluster, names also by
role (``roles``); story sentences that not every member carries are differences too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dedup.config import MergeConfig
from dedup.merge.align import Node
from dedup.merge.mentions import Mention, is_metadata, mentions_once, mid_sentence_names
from dedup.merge.roles import role_names
from dedup.merge.similarity import Member
from dedup.merge.slots import fill_slots, slot_context, sorted_variants, variants_of
from dedup.normalize import content_tokens
from dedup.records import Difference

__all__ = ["find_differences"]

_KIND_ORDER = {"number": 0, "date": 1, "name": 2, "sentence": 3}

# A sentence's members: (member, its sentence indices stating the node).
_Carrying = list[tuple[Member, list[int]]]
# Members that state a node in the same words: the first of them, its indices, all their ids.
_Voices = dict[tuple[str, ...], tuple[Member, list[int], list[str]]]


def find_differences(
    story: Sequence[Node], ordered: Sequence[Member], config: MergeConfig
) -> list[Difference]:
    """Number, date and name disagreements within aligned sentences, numbers also across,
    names by role, and the sentences not every member carries: facts first (numbers, dates,
    names, then sentences), story order within each kind."""
    found = _Found(ordered)
    for pos, node in enumerate(story):
        found.within_node(pos, node)
    found.numbers_across(config.cross_number_max_ratio)
    # Names in the same role across the cluster: see ``roles``.
    if found.name_pool:
        found.diffs.extend(
            role_names(found.name_pool, ordered, found.known(), found.seen, found.rank)
        )
    found.missing_sentences(story, config.min_sentence_words)
    found.diffs.sort(key=lambda pd: pd[0])
    out = _unite(found.diffs, found.rank)
    out.sort(key=lambda d: _KIND_ORDER[d.kind])
    return out


@dataclass(slots=True)
class _Found:
    """What ``find_differences`` gathers while it walks one story: the differences with
    their story positions, and the mentions kept for the cross-sentence comparisons."""

    ordered: Sequence[Member]
    by_id: dict[str, Member] = field(init=False)
    rank: dict[str, int] = field(init=False)  # members by id order
    place: dict[str, int] = field(init=False)  # members in ``ordered``'s order
    diffs: list[tuple[int, Difference]] = field(default_factory=list)
    pool: list[tuple[int, Mention]] = field(default_factory=list)  # numbers left unpaired
    # Names in sentences only one version states, with that sentence's content stems.
    name_pool: list[tuple[int, Mention, frozenset[str]]] = field(default_factory=list)
    seen: dict[tuple[str, bool], list[Mention]] = field(default_factory=dict)  # keeps origins
    scores: dict[tuple[int, int], float | None] = field(default_factory=dict)
    names: frozenset[str] | None = None  # needed only where versions word a sentence apart

    def __post_init__(self) -> None:
        self.by_id = {m.id: m for m in self.ordered}
        self.rank = {m: i for i, m in enumerate(sorted(self.by_id))}
        self.place = {m.id: i for i, m in enumerate(self.ordered)}

    def known(self) -> frozenset[str]:
        """``mid_sentence_names`` of the cluster, computed on first need."""
        if self.names is None:
            self.names = mid_sentence_names(self.ordered)
        return self.names

    def within_node(self, pos: int, node: Node) -> None:
        """Compare the versions of one story sentence, or pool what cannot be compared."""
        # The members stating the node, in ``ordered``'s order (joined carriers state nothing).
        by_id, place = self.by_id, self.place
        carrying = [(by_id[mid], idxs) for mid, idxs in node.carriers.items() if idxs]
        if len(carrying) > 1:
            carrying.sort(key=lambda mi: place[mi[0].id])
        if len(carrying) == 1:
            # One version states it: within the sentence there is nothing to compare, so each
            # of its numbers goes to the cross-sentence pool, and its names to their own pool,
            # compared by role.
            member, idxs = carrying[0]
            known, seen = self.known(), self.seen
            for k in idxs:
                found_k = mentions_once(member.sentences[k], member.id, known, seen)
                self.pool.extend((pos, x) for x in found_k if x.kind == "number")
                stems = member.stemsets[k]
                self.name_pool.extend((pos, x, stems) for x in found_k if x.kind == "name")
            return
        voices = _voices(carrying)
        if len(voices) == 1:
            # Every version that states it in the same words: no disagreement within it, but
            # its names may fill a role that versions without it fill with another name.
            if len(node.carriers) < len(self.by_id):
                self._pool_names(pos, carrying)
            return
        self._compare_voices(pos, voices)

    def _pool_names(self, pos: int, carrying: _Carrying) -> None:
        """Pool the names of a node every carrier states in the same words."""
        known, seen = self.known(), self.seen
        for member, idxs in carrying:
            for k in idxs:
                found_k = mentions_once(member.sentences[k], member.id, known, seen)
                stems = member.stemsets[k]
                self.name_pool.extend((pos, x, stems) for x in found_k if x.kind == "name")

    def _compare_voices(self, pos: int, voices: _Voices) -> None:
        """Slot the mentions of each voice, kind by kind; a slot whose values disagree is a
        difference, a number alone in its slot (and said by one member) goes to the pool."""
        speakers = {lead.id: ids for lead, _, ids in voices.values()}
        known, seen = self.known(), self.seen
        groups = [
            [
                mention
                for k in idxs
                for mention in mentions_once(lead.sentences[k], lead.id, known, seen)
            ]
            for lead, idxs, _ in voices.values()
        ]
        for kind in ("number", "date", "name"):
            kind_groups = [[x for x in g if x.kind == kind] for g in groups]
            for slot in fill_slots([g for g in kind_groups if g], aligned=True,
                                   scores=self.scores):
                if len(slot) == 1 and kind == "number" and len(speakers[slot[0].member]) == 1:
                    self.pool.append((pos, slot[0]))
                    continue
                variants = variants_of(slot, self.rank, speakers)
                if len(variants) > 1:
                    self.diffs.append((pos, Difference(kind, slot_context(slot), variants)))

    def numbers_across(self, max_ratio: float) -> None:
        """Rewrites state the same count in sentences too different to align ("At least 143
        people were killed" / "resulting in the deaths of 144 people"): compare the pooled
        numbers that play the same role (same unit, same role words) across the cluster."""
        pool = self.pool
        says = {(m.member, m.unit, m.key) for _, m in pool}
        by_member: dict[str, list[tuple[int, Mention]]] = {}
        for pos, mention in pool:
            by_member.setdefault(mention.member, []).append((pos, mention))
        groups = [[m for _, m in by_member[mid]] for mid in self.by_id if mid in by_member]
        first_pos = {id(m): pos for pos, m in pool}
        for slot in fill_slots(groups, aligned=False, max_ratio=max_ratio):
            if len(slot) < 2:
                continue
            values = {m.key for m in slot}
            # A member that also states the other value in that role elsewhere does not
            # disagree.
            slot = [m for m in slot
                    if not any((m.member, m.unit, v) in says for v in values - {m.key})]
            variants = variants_of(slot, self.rank)
            if len(variants) > 1:
                pos = min(first_pos[id(m)] for m in slot)
                self.diffs.append((pos, Difference("number", slot_context(slot), variants)))

    def missing_sentences(self, story: Sequence[Node], min_words: int) -> None:
        """Story sentences only some versions carry (``min_words`` content words or more,
        no dateline)."""
        members = sorted(self.by_id)
        for pos, node in enumerate(story):
            if len(node.carriers) == len(members):  # carriers are members: nobody is missing
                continue
            missing = [mid for mid in members if mid not in node.carriers]
            mid, k = node.reps[0]
            text = self.by_id[mid].sentences[k]
            if len(content_tokens(text)) < min_words or is_metadata(text):
                continue
            carriers = tuple(sorted(node.carriers, key=self.rank.__getitem__))
            context = "not in " + ", ".join(missing)
            self.diffs.append((pos, Difference("sentence", context, {text: carriers})))


def _voices(carrying: _Carrying) -> _Voices:
    """Versions that state a node in the same words are one voice: they say the same values
    in the same places, so their mentions are found and slotted once, for the first of
    them, and the slots name all of them."""
    voices: _Voices = {}
    for member, idxs in carrying:
        said = tuple(member.sentences[k] for k in idxs)
        if said in voices:
            voices[said][2].append(member.id)
        else:
            voices[said] = (member, idxs, [member.id])
    return voices


def _unite(found: Sequence[tuple[int, Difference]], rank: dict[str, int]) -> list[Difference]:
    """The same disagreement repeated in several sentences (Smith / Smyth wherever the name
    occurs) is one disagreement: same kind and same values, members united, unless some
    member would then say both values."""
    merged: list[tuple[tuple[str, frozenset[str]], dict[str, set[str]], Difference]] = []
    same_key: dict[tuple[str, frozenset[str]], list[int]] = {}  # positions in merged by key
    for _, diff in found:
        names = frozenset(diff.variants)
        if diff.kind != "sentence":
            names = frozenset(v.casefold() for v in diff.variants)
        dkey = (str(diff.kind), names)
        for at in same_key.get(dkey, []):
            if _join(merged[at][1], diff):
                break
        else:
            same_key.setdefault(dkey, []).append(len(merged))
            merged.append((dkey, {v: set(ids) for v, ids in diff.variants.items()}, diff))
    out = []
    for _, united, first in merged:
        variants = {v: tuple(sorted(ids, key=rank.__getitem__)) for v, ids in united.items()}
        out.append(Difference(first.kind, first.context, sorted_variants(variants, rank)))
    return out


def _join(united: dict[str, set[str]], diff: Difference) -> bool:
    """Add ``diff``'s members to ``united`` (values matched case-blind) when nobody ends up
    saying both values; False (``united`` unchanged) otherwise."""
    fold = {v.casefold(): v for v in united}
    trial = {v: set(ids) for v, ids in united.items()}
    for value, ids in diff.variants.items():
        trial[fold.get(value.casefold(), value)].update(ids)
    everyone = [i for ids in trial.values() for i in ids]
    if len(everyone) != len(set(everyone)):
        return False
    united.clear()
    united.update(trial)
    return True
