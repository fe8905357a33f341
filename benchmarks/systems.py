"""The systems a benchmark compares, each behind one signature: articles -> ``SystemRun``.

Why one signature: the runner can then time, measure and score every system the same way
(and run any of them in a fresh subprocess by name).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NUM_PERM = 128
LSH_THRESHOLD = 0.5
SHINGLE_WORDS = 5
TFIDF_THRESHOLD = 0.30


class NotAvailable(RuntimeError):
    """The system cannot run here (e.g. an optional package is not installed)."""


@dataclass
class SystemRun:
    """What a system produced: one predicted label per input article, in input order."""

    labels: Sequence[Hashable]
    candidate_pairs: int
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""
    # Candidate pairs as (k, 2) article indices, when the system has a candidate step.
    pairs: np.ndarray | None = None


class _Stages:
    """Accumulates wall seconds per named stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._t
        self._t = now


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph on ``n`` nodes given as an edge list."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def word_shingles(text: str, k: int = SHINGLE_WORDS) -> list[str]:
    """Distinct word k-grams of lowercased whitespace tokens (a short text is one shingle)."""
    tokens = text.lower().split()
    if len(tokens) < k:
        return [" ".join(tokens)]
    return list(dict.fromkeys(" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)))


def _unique_pairs(left: array, right: array, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.frombuffer(left, dtype=np.int64) if len(left) else np.empty(0, np.int64)
    b = np.frombuffer(right, dtype=np.int64) if len(right) else np.empty(0, np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys = np.unique(lo[lo != hi] * n + hi[lo != hi])
    return keys // n, keys % n


def rensa_bands(threshold: float = LSH_THRESHOLD, num_perm: int = NUM_PERM) -> int:
    """Bands for rensa, which needs bands * rows == num_perm: among those splits, the one
    with the least false-positive + false-negative area (datasketch's criterion, which
    picks 25 x 5 for 0.5 / 128 when the split need not be exact)."""
    from datasketch.lsh import _false_negative_probability, _false_positive_probability

    splits = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    return min(
        splits,
        key=lambda b: (
            _false_positive_probability(threshold, b, num_perm // b)
            + _false_negative_probability(threshold, b, num_perm // b)
        ),
    )


def _lsh_run(neighbours: Iterable[Iterable[int]], n: int, stages: _Stages) -> SystemRun:
    """Pairs from each article's LSH neighbours (article i's at position i), components."""
    left, right = array("q"), array("q")
    for i, found in enumerate(neighbours):
        for j in found:
            if j != i:
                left.append(i)
                right.append(j)
    lo, hi = _unique_pairs(left, right, n)
    stages.lap("lsh")
    labels = components(n, lo, hi)
    stages.lap("components")
    return SystemRun(labels.tolist(), len(lo), stages.timings, pairs=np.stack([lo, hi], axis=1))


# --------------------------------------------------------------------------- systems


def run_dedup(articles: Sequence[dict[str, Any]]) -> SystemRun:
    """The ``dedup cluster`` job end to end: read, cluster on every core, merge, write.

    A Parquet corpus is read from its file as the CLI reads it; in-memory articles (ECB+)
    go in as they are. Outputs go to a temporary folder, stories streamed as merged.
    """
    import tempfile

    from benchmarks.corpora import ParquetArticles
    from dedup import Config, __version__, cluster, io, outputs
    from dedup.cli import write_files

    stages = _Stages()
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as folder:
        out = Path(folder)
        if isinstance(articles, ParquetArticles) and not articles.loaded:
            source: Any = io.read_articles([str(articles.path)]).frame
        else:
            source = list(articles)
        stages.lap("read")
        with outputs.staged(out) as staging:  # as `dedup cluster -o` publishes its set
            with io.text_sink(staging.path / "stories.jsonl") as write:
                result = cluster(source, Config(), workers=0, on_story_lines=write)
            del source
            for name, seconds in result.timings.items():  # cluster's stages, not one lap
                stages.timings[name] = stages.timings.get(name, 0.0) + seconds
            stages._t = time.perf_counter()
            write_files(staging.path, result, "parquet", False, stories_written=True)
            staging.commit({}, __version__)
        stages.lap("write")
    labels = result.assignments["cluster_id"].to_list()
    return SystemRun(labels, int(result.candidate_pairs), stages.timings, pairs=result.pairs)


def run_datasketch(articles: Sequence[dict[str, Any]]) -> SystemRun:
    """The common recipe: word 5-gram MinHash, LSH at 0.5, connected components."""
    from datasketch import MinHash, MinHashLSH

    stages = _Stages()
    signatures = []
    for a in articles:
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in word_shingles(a["text"])])
        signatures.append(m)
    stages.lap("signatures")
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    for i, m in enumerate(signatures):
        lsh.insert(i, m, check_duplication=False)
    return _lsh_run((lsh.query(m) for m in signatures), len(articles), stages)


def run_tfidf(articles: Sequence[dict[str, Any]], block_entries: int = 50_000_000) -> SystemRun:
    """TF-IDF cosine >= 0.30 over all pairs (sparse products in row blocks), single link."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    stages = _Stages()
    n = len(articles)
    matrix = TfidfVectorizer(
        stop_words="english", sublinear_tf=True, dtype=np.float32
    ).fit_transform(a["text"] for a in articles)
    stages.lap("vectorize")
    transposed = matrix.T.tocsr()
    block = max(16, min(4096, block_entries // max(n, 1)))
    lefts, rights = [], []
    for start in range(0, n, block):
        sims = (matrix[start : start + block] @ transposed).tocoo()
        rows = sims.row + start
        keep = (sims.data >= TFIDF_THRESHOLD) & (sims.col > rows)
        lefts.append(rows[keep])
        rights.append(sims.col[keep])
    left = np.concatenate(lefts) if lefts else np.empty(0, np.int64)
    right = np.concatenate(rights) if rights else np.empty(0, np.int64)
    stages.lap("pairs")
    labels = components(n, left, right)
    stages.lap("components")
    return SystemRun(labels.tolist(), n * (n - 1) // 2, stages.timings, note="all pairs scored")


def run_rensa(articles: Sequence[dict[str, Any]]) -> SystemRun:
    """rensa (Rust MinHash): same shingles, 128 perms, LSH at 0.5, connected components."""
    try:
        from rensa import RMinHash, RMinHashLSH
    except ImportError as exc:
        raise NotAvailable(f"rensa not installed ({exc})") from exc

    stages = _Stages()
    signatures = RMinHash.from_token_sets(
        (word_shingles(a["text"]) for a in articles), NUM_PERM, 42
    )
    stages.lap("signatures")
    lsh = RMinHashLSH(LSH_THRESHOLD, NUM_PERM, rensa_bands())
    lsh.insert_many(signatures)
    return _lsh_run(lsh.query_all(signatures), len(articles), stages)


SYSTEMS: dict[str, Callable[[Sequence[dict[str, Any]]], SystemRun]] = {
    "dedup": run_dedup,
    "datasketch": run_datasketch,
    "tfidf-0.30": run_tfidf,
    "rensa": run_rensa,
}

DESCRIPTIONS = {
    "dedup": "dedup cluster end to end (read, every core, merge, write), default Config",
    "datasketch": "datasketch MinHash 5-gram, 128 perms, LSH 0.5, connected components",
    "tfidf-0.30": "sklearn TF-IDF (English stop words, sublinear tf), cosine >= 0.30, single link",
    "rensa": "rensa RMinHash 5-gram, 128 perms, RMinHashLSH 0.5 (32 x 4 bands), "
    "connected components",
}


def pick(names: Iterable[str]) -> list[str]:
    """Validate system names against ``SYSTEMS``, keeping the caller's order."""
    names = list(names)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {list(SYSTEMS)}")
    return names
