"""``merge``: one cluster -> its canonical story, with provenance and differences.

Why a module of its own: it is the stage's one entry point, and it only sequences the
steps that the other modules of ``dedup.merge`` hold (clean, rank, align, differ).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast

import polars as pl

from dedup import records
from dedup.config import Config, MergeConfig
from dedup.merge.align import (
    align_members,
    aligns_only_to_itself,
    all_copies,
    copies_order,
    copies_story,
)
from dedup.merge.differences import find_differences
from dedup.merge.members import order_members, prepare_all
from dedup.merge.similarity import Similarity
from dedup.merge.text import MemberText, member_text
from dedup.prepare import articles_frame, to_articles
from dedup.records import Article, Story, StorySentence

__all__ = ["merge"]


def merge(
    articles: Sequence[Article | Mapping[str, Any]] | pl.DataFrame,
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

    ``articles`` may be ``Article`` records, dicts or a frame, as ``dedup.cluster`` takes
    them (ids and dates checked the same way).

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
    if isinstance(articles, pl.DataFrame) or not all(isinstance(a, Article) for a in articles):
        articles = to_articles(articles_frame(articles))
    unique = {a.id: a for a in sorted(cast(Sequence[Article], articles), key=lambda a: a.id)}
    members_sorted = tuple(sorted(unique))
    copied = {v: tuple(sorted(ids)) for v, ids in sorted((copies or {}).items())
              if ids and v in unique}
    everyone = tuple(sorted(members_sorted + tuple(i for ids in copied.values() for i in ids)))
    cid = cluster_id if cluster_id is not None else records.cluster_id(everyone)
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
    prepared = prepare_all([unique[i] for i in members_sorted], cfg, cleaned)
    if all_copies(prepared) and aligns_only_to_itself(prepared[0], cfg):
        ordered = copies_order(prepared)
        story = copies_story(ordered)
    else:
        sims = Similarity(prepared)
        ordered = order_members(prepared, cfg, sims)
        story = align_members(ordered, cfg, sims)
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
    differences = tuple(find_differences(story, ordered, cfg)) if len(ordered) > 1 else ()
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
    title, sentences, _ = text or member_text(article.text, article.title, cfg)
    return Story(
        cluster_id=cluster_id,
        members=(article.id,),
        base=article.id,
        title=title,
        text="\n".join(sentences),
        sentences=tuple(StorySentence(text, (article.id,)) for text in sentences),
        differences=(),
    )
