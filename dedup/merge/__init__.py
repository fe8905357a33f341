"""Merge one cluster into a canonical story that records provenance and disagreements.

Why this shape: readers want one story per event, but the versions of that story disagree
(143 vs 144 dead, Smith vs Smyth, one outlet has a fact the others lack). The story keeps
the most central, most complete member as its backbone, adds every sentence only other
versions carry where it fits, and lists every disagreement once with who says what.

Everything is regular expressions and bag-of-words cosine: no model downloads.

The stage, module by module (each step feeds the next; ``story.merge`` sequences them):

- ``text``: a member's cleaned title and sentences and its boilerplate share;
- ``similarity``: sentence terms, vectors and cosines, and a cluster's similarity matrices;
- ``members``: members prepared for comparison and ranked (the first is the base);
- ``align``: sentence alignment into story nodes (and the exact-copies shortcut);
- ``mentions``: numbers, dates and names in a sentence, with the words around them;
- ``slots``: mentions of several versions that fill one role, and whether they agree;
- ``roles``: names in one role across sentences that did not align;
- ``differences``: every disagreement, listed once;
- ``story``: ``merge`` itself.

Stories' JSON shape (``story_to_dict`` / ``story_from_dict``) and the cluster-id rule
live beside the records, in ``dedup.records``; they are re-exported here.

Example:
    >>> from dedup.records import Article
    >>> a = Article("a", "At least 143 people were killed in the attack.", title="Attack")
    >>> b = Article("b", "At least 144 people were killed in the attack.", title="Attack")
    >>> story = merge([a, b])
    >>> [(d.kind, d.variants) for d in story.differences]
    [('number', {'143': ('a',), '144': ('b',)})]
"""

from __future__ import annotations

from dedup.merge import align, differences, members, mentions, similarity, slots, text
from dedup.merge.story import merge
from dedup.merge.text import MemberText, member_sentences, member_text
from dedup.records import cluster_id, story_from_dict, story_to_dict

__all__ = ["MemberText", "clear_caches", "cluster_id", "cluster_id_for", "member_sentences",
           "member_text", "merge", "story_from_dict", "story_to_dict"]

# The name ``merge.py`` gave the cluster-id rule: the same function as ``cluster_id``.
cluster_id_for = cluster_id


def clear_caches() -> None:
    """Empty every memo the merger keeps between clusters (lines, terms, stems, names).

    Memos never change a story, only its cost: tests call this to time or check a cold
    merge, and a long-running process may call it to give the memory back.
    """
    text.LINES.clear()
    similarity.TERMS.clear()
    for memo in (similarity.stem_word, mentions.is_metadata, mentions.name_words,
                 slots.spelling_ratio):
        memo.cache_clear()


# ``merge.py``'s private spellings, for code written against the single module. New code
# imports the public names of the submodules above.
_EPS = similarity.EPS
_cosine = similarity.cosine
_containment = similarity.containment
_stems = similarity.text_stems
_vector = similarity.text_vector
_Member = similarity.Member
_Similarity = similarity.Similarity
_prepare = members.prepare
_prepare_all = members.prepare_all
_base_scores = members.base_scores
_doc_cosines = members.doc_cosines
_order_members = members.order_members
_Node = align.Node
_align = align.align_members
_mentions = mentions.find_mentions
_sides = mentions.sides
_slots = slots.fill_slots
_differences = differences.find_differences
_content = text.read_content
_content_whole = text.read_content_whole
_LINES = text.LINES
_SPLIT_NUMBER = text.SPLIT_NUMBER
_NAME = mentions.NAME
_DATE = mentions.DATE
_NUMBER = mentions.NUMBER
_MID_SENTENCE_CAPITAL = mentions.MID_SENTENCE_CAPITAL
_SIDE_TOKENS = mentions.SIDE_TOKENS
_RESPELLING = slots.RESPELLING
_spelling = slots.spelling_ratio
