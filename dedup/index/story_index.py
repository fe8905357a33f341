"""``StoryIndex`` itself: opening and closing, and ``add``; the steps live beside it
(``store``, ``placement``, ``relink``, ``ids``, ``expiry``, ``reads``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict, Unpack

import polars as pl

from dedup import candidates, pipeline, signatures
from dedup.config import Config, IndexConfig
from dedup.index import bands, inputs
from dedup.index.expiry import Expiry
from dedup.index.placement import Placer
from dedup.index.reads import Reads
from dedup.index.records import Added, Progress, StoryIndexError
from dedup.index.store import translated
from dedup.index.terms import Vocabulary
from dedup.index.texts import TextCache
from dedup.index.vectors import Scratch
from dedup.pipeline import DedupInputError
from dedup.records import Article


class OpenOptions(TypedDict, total=False):
    """``StoryIndex.open``'s keywords, forwarded to ``StoryIndex(...)``."""

    index_config: IndexConfig | None
    create: bool


class StoryIndex(Placer, Expiry, Reads):
    """An incremental, persistent index of stories; see ``dedup.index``'s docstring for the rules.

    Open with ``StoryIndex.open(path)``; use it as a context manager or call ``close``.
    One ``StoryIndex`` object is for one thread; many processes may open the same file.
    A new index stores the settings it was created with (``read_config``); the CLI opens
    it with them, while ``open`` uses the ``config`` it is given (defaults when None) and
    checks only the signature settings against the file.
    """

    def __init__(
        self,
        path: str | Path,
        config: Config | None = None,
        *,
        index_config: IndexConfig | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.config = config or Config()
        self.index_config: IndexConfig = (
            index_config or getattr(self.config, "index", None) or IndexConfig()
        )
        if self.index_config.story_refresh not in ("read", "add"):
            raise ValueError(
                f"story_refresh must be 'read' or 'add', not {self.index_config.story_refresh!r}"
            )
        cand, sig = self.config.candidates, self.config.signatures
        self._copy_bands = candidates.lsh_params(cand.copies_threshold, sig.num_perm)
        self._event_bands = candidates.lsh_params(cand.events_threshold, sig.num_perm)
        try:  # the band storage holds two split levels at most
            bands.Rules.of(cand.lsh_options("events"), self._event_bands)
        except ValueError as err:
            raise StoryIndexError(f"{self.path}: {err}") from None
        self._vocabulary = Vocabulary()
        self._minhasher = signatures.MinHasher(sig.num_perm, sig.seed)
        self._texts = TextCache(self.config, self._vocabulary, self._minhasher)
        self._state = None
        self._scratch = Scratch()
        self._conn = self._connect(create)

    @classmethod
    def open(cls, path: str | Path, config: Config | None = None,
             **options: Unpack[OpenOptions]) -> StoryIndex:
        """Open the index at ``path``, creating it when missing (unless ``create=False``);
        ``options`` are ``__init__``'s keywords (``index_config``, ``create``).

        Raises StoryIndexError for a file that is not a story index, one written by another
        format version, or one built with other signature settings.
        """
        return cls(path, config, **options)

    def __enter__(self) -> StoryIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._state = None


    @translated
    def add(
        self,
        articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
        *,
        progress: Progress | None = None,
    ) -> Added:
        """Place new articles, in order, into the index's clusters; one transaction.

        Args:
            articles: what ``dedup.cluster`` takes (a frame, dicts or ``Article`` records).
            progress: called as ``progress("add", done, total)`` while placing.

        Returns one ``Placement`` per article, in input order, as an ``Added`` list whose
        ``retired`` holds every cluster id this add retired (``RetiredCluster``, by id),
        including those merged into stories no new article joined. Raises ``DedupInputError``
        for a missing id or text column, an empty id, an id repeated in the batch or
        already in the index; the index is then unchanged. A crash or kill mid-batch
        leaves the index as it was before the batch.

        Example:
            >>> index.add([{"id": "b", "text": "Lima quake: 40 dead."}])[0].cluster_id
            ... # doctest: +SKIP
            'c...'
        """
        if not isinstance(articles, pl.DataFrame):
            articles = list(articles)
        batch = None if isinstance(articles, pl.DataFrame) else inputs.plain_articles(articles)
        if batch is None:
            batch = pipeline.to_articles(pipeline.articles_frame(articles))
        if not batch:
            return Added()
        texts = self._texts.lookup(batch)
        with self._write() as conn:
            self._reject_known([a.id for a in batch])
            state = self._current_state()
            try:
                return self._place(conn, state, batch, texts, progress)
            except BaseException:
                self._state = None  # memory may hold half a batch: reload on next use
                raise

    def _reject_known(self, ids: Sequence[str]) -> None:
        known = self.existing(ids)
        if known:
            first = next(i for i in ids if i in known)
            others = len(known) - 1
            more = (f" (as {'is' if others == 1 else 'are'} {others} more of this batch)"
                    if others else "")
            raise DedupInputError(
                f"duplicate id {first!r}: it is already in the index {self.path}{more}; ids "
                "must be unique: leave them out (`dedup index add --skip-bad-rows` does)"
            )

    @translated
    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are in the index."""
        return {aid for _, _, aid in self._articles_by_id(self.conn, list(ids))}
