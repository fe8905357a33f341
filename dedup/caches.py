"""Bounded memo tables: the one kind of module state the stages keep.

Why: news repeats its lines, words and names, so the text stages memoise pure functions of
a string (``normalize.names``, ``merge``'s line cleaning and stemming). A memo never
changes a result, only its cost; bounding it keeps a long-running process's memory flat.
Each table is a named object with ``clear()``, so a caller (or a test) empties it through
a public name instead of reaching into a module.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["BoundedCache"]


class BoundedCache(dict[K, V]):
    """A dict that starts over (empties itself) when a new key would pass ``max_size``.

    A plain ``dict`` underneath, so ``get`` in a hot loop costs what a dict's does; only
    ``put``, on a miss, checks the bound. Starting over beats LRU bookkeeping here: the
    tables are read far more often than written, and a hit rate of a few tens of percent
    comes back within one batch.

    Example:
        >>> cache: BoundedCache[str, int] = BoundedCache(2)
        >>> cache.put("a", 1), cache.put("b", 2), cache.put("c", 3)
        (1, 2, 3)
        >>> dict(cache)
        {'c': 3}
    """

    __slots__ = ("max_size",)

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (emptying the table first when it is full)."""
        if len(self) >= self.max_size:
            self.clear()
        self[key] = value
        return value
