"""Corpora with ground truth: where they live on disk and how they load into memory.

Every system in a benchmark run reads the same ``Corpus`` (articles as plain dicts in the
shape ``dedup.cluster`` takes, plus one gold label per article), so no system gets a
differently prepared input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlparse

ECBPLUS_DEV = "ecbplus-dev"


DATA_DIR = Path(__file__).resolve().parent / "data"


def ecbplus_dir() -> Path:
    """Folder holding the ECB+ development split (articles.jsonl, its licence and README).

    The repository carries it (``benchmarks/data/ecbplus-dev``), so a clone on its own
    runs the tests and benchmarks.
    """
    return DATA_DIR / ECBPLUS_DEV


class ParquetArticles(Sequence[dict[str, Any]]):
    """A Parquet corpus's articles, turned into dicts only when a system reads them.

    A million articles as dicts take ~9 GB: loaded up front, they would dwarf the memory
    of the system being measured. ``dedup`` reads the file itself, like its CLI does.
    """

    def __init__(self, path: Path, length: int, drop: Sequence[str] = ()) -> None:
        self.path = path
        self._length = length
        self._drop = list(drop)
        self._rows: list[dict[str, Any]] | None = None

    @property
    def loaded(self) -> bool:
        return self._rows is not None

    def load(self) -> list[dict[str, Any]]:
        """The articles as dicts (read from the file on first use)."""
        if self._rows is None:
            import polars as pl

            self._rows = pl.read_parquet(self.path).drop(self._drop, strict=False).to_dicts()
        return self._rows

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.load()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.load())


@dataclass
class Corpus:
    """Articles and their gold cluster labels, position by position."""

    name: str
    articles: Sequence[dict[str, Any]]
    gold: list[str]
    differences: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.articles) != len(self.gold):
            raise ValueError(f"{len(self.articles)} articles but {len(self.gold)} gold labels")

    @property
    def n_clusters(self) -> int:
        return len(set(self.gold))


def _source_of(url: str | None) -> str | None:
    """The outlet's host. No fallback: the subtopic would leak the gold label."""
    if url:
        return urlparse(url).netloc or None
    return None


def load_ecbplus_dev(path: Path | None = None) -> Corpus:
    """Load the 509 ECB+ dev articles; ``cluster`` is the gold event label."""
    path = path or ecbplus_dir() / "articles.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; it ships in benchmarks/data/ecbplus-dev")
    articles: list[dict[str, Any]] = []
    gold: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
            articles.append(
                {
                    "id": str(row["doc_id"]),
                    "title": row.get("title") or "",
                    "text": row["text"],
                    "published": None,
                    "source": _source_of(row.get("url")),
                }
            )
            gold.append(str(row["cluster"]))
    return Corpus(ECBPLUS_DEV, articles, gold)
