"""Articles as ``add`` takes them: the fast path around the polars frame for plain items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dedup import pipeline
from dedup.records import Article

CORE_COLUMNS = frozenset(pipeline.CORE_COLUMNS)


def plain_articles(items: Sequence[Any]) -> list[Article] | None:
    """``to_articles(articles_frame(items))`` built directly when every item is plain: an
    ``Article`` without extras or a dict of core columns only, with a non-blank str id
    (unique), str text, str or None title and source, a naive datetime or None published
    (what the frame keeps as is). None otherwise: the frame handles the rest, errors too.

    Why: the round trip through a polars frame cost 2-3 ms per add of 100 dicts.
    """
    out: list[Article] = []
    for item in items:
        if type(item) is dict:
            if "id" not in item or "text" not in item or not item.keys() <= CORE_COLUMNS:
                return None
            aid, text, title = item["id"], item["text"], item.get("title")
            published, source = item.get("published"), item.get("source")
        elif type(item) is Article and not item.extra:
            aid, text, title = item.id, item.text, item.title
            published, source = item.published, item.source
        else:
            return None
        if (type(aid) is not str or not aid.strip() or type(text) is not str
                or (title is not None and type(title) is not str)
                or (source is not None and type(source) is not str)
                or (published is not None and (type(published) is not datetime
                                               or published.tzinfo is not None))):
            return None
        out.append(Article(aid, text, title or "", published, source))
    if len({a.id for a in out}) != len(out):
        return None
    return out
