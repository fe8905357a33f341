"""Where a row goes in a shuffle: stable hashes of integers and text, and bucket splits.

Python's ``hash()`` differs per process, so routing uses SplitMix64 and CRC-32: every
worker sends a key to the same bucket. A hash only decides *where* rows meet, never
*whether* two keys are equal, so routing cannot change a result.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import polars as pl

__all__ = ["mix", "owner", "route", "route_rows", "route_text", "split", "take"]


def mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a stable hash of integers (Python's hash() is per process)."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def route(values: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each integer."""
    return (mix(values) % np.uint64(buckets)).astype(np.int64)


def route_rows(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each row of integers (an LSH band's key)."""
    h = np.zeros(len(keys), dtype=np.uint64)
    for column in keys.T:
        h = mix(h ^ column.astype(np.uint64))
    return (h % np.uint64(buckets)).astype(np.int64)


def route_text(text: str, buckets: int) -> int:
    """Bucket of a string (an id, a template line)."""
    return zlib.crc32(text.encode("utf-8")) % buckets


def take(value: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of an array or a polars frame."""
    if isinstance(value, pl.DataFrame):
        return value[pl.Series(index, dtype=pl.Int64)] if len(index) else value.clear()
    return value[index]


def split(dest: np.ndarray, buckets: int, *arrays: Any) -> list[tuple[Any, ...]]:
    """Rows of ``arrays`` grouped by destination bucket, order kept inside each."""
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(buckets + 1))
    return [
        tuple(take(a, order[bounds[b] : bounds[b + 1]]) for a in arrays) for b in range(buckets)
    ]


def owner(gidx: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Partition holding each global document index (``offsets`` has P + 1 entries)."""
    return np.searchsorted(offsets, gidx, side="right") - 1
