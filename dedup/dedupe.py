"""Near-duplicate removal: keep one article of each copy group (#21).

What datasketch, rensa, text-dedup and datatrove users run to clean a corpus, as one stage:

1. a light normalization per article: ``normalize.clean_line`` per line, page furniture
   dropped (``normalize.is_boilerplate``, repeated lines once), lower-cased; no sentences,
   names or terms. Each distinct line is cleaned once (``LineCache``): copies share lines;
2. word tokens, their n-gram shingle hashes and a 64-bit key of each text's token sequence,
   in one compiled loop over the UTF-8 bytes (``shingling``); exact duplicates are equal
   keys;
3. MinHash signatures of the shingles (``signatures.MinHasher``, its compiled kernel),
   LSH banding at ``threshold`` (``candidates.lsh_pairs``), each candidate pair verified
   by its estimated Jaccard over the whole signature, joined transitively
   (``copies.copy_groups``: exact keys first, then near copies);
4. one row kept per group by the ``keep`` rule.

Steps 1 to 3 run in worker processes, chunk by chunk, and a chunk's result depends only
on its texts: the output is byte-identical for any ``workers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from dedup import copies, io, jit, normalize, shingling, signatures
from dedup.parallel import WorkerPool, guided_size, resolve_workers
from dedup.pipeline import StageTimer, articles_frame
from dedup.records import Article

Keep = Literal["first", "earliest", "longest"]
KEEP_RULES: tuple[str, ...] = ("first", "earliest", "longest")
CHUNK = 5_000  # articles normalized and signed at once: bounds the memory of token lists
_NUM_PERM = 128
_SEED = 1
_WRITE_ROWS = 50_000  # kept rows per slice written to JSONL


@dataclass(frozen=True, slots=True)
class DedupeResult:
    """What ``dedupe`` found.

    ``kept``: one row per copy group, in input order, every input column plus ``copies``
    (the group's size). ``groups``: one row per input article, in input order: ``id`` and
    ``copy_group``, the id of the article kept for its group. ``write_kept`` writes the
    kept rows without first copying them out of the input (a million texts are gigabytes).
    """

    frame: pl.DataFrame  # the input, every row
    kept_rows: np.ndarray  # rows kept, ascending
    copies: np.ndarray  # size of each kept row's group
    groups: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> pl.DataFrame:
        """The kept rows and their ``copies`` (a new frame)."""
        return self._kept_lazy().collect()

    def _kept_lazy(self) -> pl.LazyFrame:
        mask = np.zeros(self.frame.height, dtype=bool)
        mask[self.kept_rows] = True
        sizes = np.zeros(self.frame.height, dtype=np.int64)
        sizes[self.kept_rows] = self.copies
        return (self.frame.lazy()
                .with_columns(pl.Series("copies", sizes, dtype=pl.Int64))
                .filter(pl.Series(mask)))

    def write_kept(self, target: Path, fmt: io.TableFormat) -> None:
        """Write the kept rows as ``io.write_frame`` would (atomically, same bytes for
        the same input), a slice at a time."""
        with io.atomic_path(target) as tmp:
            if fmt == "parquet":
                self._kept_lazy().sink_parquet(tmp, compression="zstd", statistics=False)
                return
            with open(tmp, "w", encoding="utf-8", newline="\n") as out:
                for at in range(0, len(self.kept_rows), _WRITE_ROWS):
                    rows = self.kept_rows[at : at + _WRITE_ROWS]
                    chunk = self.frame[rows.tolist()].with_columns(pl.Series(
                        "copies", self.copies[at : at + _WRITE_ROWS], dtype=pl.Int64))
                    for row in chunk.to_dicts():
                        out.write(io.json_line(row))

    def mapping(self) -> dict[str, str]:
        """``groups`` as a dict: article id -> id of the article kept for its group."""
        return dict(zip(self.groups["id"].to_list(), self.groups["copy_group"].to_list(),
                        strict=True))


@dataclass(frozen=True, slots=True)
class SignTask:
    """One chunk of texts to normalize and sign: all a worker process needs."""

    texts: list[str]
    ngram: int
    num_perm: int
    seed: int


@dataclass(frozen=True, slots=True)
class SignedChunk:
    """A chunk's exact keys, MinHash signatures and which texts have any token."""

    keys: np.ndarray
    signatures: np.ndarray
    present: np.ndarray


def light_text(text: str) -> bytes:
    """A text after the light normalization, as UTF-8: cleaned (``normalize.clean_text``),
    furniture lines dropped (``normalize.strip_boilerplate``), lower-cased. The same text
    under two outlets' furniture gives the same bytes."""
    lines = normalize.strip_boilerplate(normalize.clean_text(text))
    return " ".join(lines).lower().encode("utf-8", "surrogatepass")


_SKIP = ("", "")  # a cached line that is empty or page furniture


class LineCache:
    """``light_text`` line by line, each distinct line cleaned once.

    Why: copies share their lines (a wire story's paragraphs, an outlet's furniture), and a
    corpus worth deduplicating is full of copies; cleaning a line is most of the cost of a
    text. ``normalize.clean_line`` of every line joined is ``clean_text`` of the text
    (where it is None, the text is cleaned whole), so the bytes equal ``light_text``'s.
    The cache starts over past ``max_entries`` lines, so memory stays bounded.
    """

    def __init__(self, max_entries: int = 1 << 19) -> None:
        self._cache: dict[str, tuple[str, str]] = {}
        self.max_entries = max_entries

    def __call__(self, text: str) -> bytes:
        cache = self._cache
        if len(cache) > self.max_entries:
            cache.clear()
        parts: list[str] = []
        seen: set[str] = set()
        for raw in text.split("\n"):
            hit = cache.get(raw)
            if hit is None:
                line = normalize.clean_line(raw)
                if line is None:  # a mark that reaches across lines: the whole text
                    return light_text(text)
                hit = (_SKIP if not line or normalize.is_boilerplate(line)
                       else (line.casefold(), line.lower()))
                cache[raw] = hit
            if hit is _SKIP or hit[0] in seen:
                continue
            seen.add(hit[0])
            parts.append(hit[1])
        return " ".join(parts).encode("utf-8", "surrogatepass")


_LINES = LineCache()  # one per process: cleaning is pure, sharing cannot change a value


def sign_chunk(task: SignTask) -> SignedChunk:
    """Normalize and sign one chunk. Module-level so worker processes can run it."""
    encoded = [_LINES(text) for text in task.texts]
    ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    del encoded
    flat, shingle_ends, keys, tokens = shingling.shingle_hashes(buf, ends, task.ngram)
    sets = np.split(flat, shingle_ends[:-1]) if len(shingle_ends) else []
    sigs = signatures.MinHasher(task.num_perm, task.seed).signatures(sets)
    return SignedChunk(keys, sigs, tokens > 0)


def _ready() -> None:
    """Load the compiled loops now (a worker runs this on start): every chunk of a job
    big enough for workers repays them."""
    jit.kernels(jit.MIN_WORK)
    shingling.shingle_hashes(np.zeros(shingling.COMPILE_FROM_BYTES, dtype=np.uint8),
                             np.array([1], dtype=np.int64), 1)


def sign(texts: pl.Series, *, ngram: int = 5, workers: int | None = 1,
         num_perm: int = _NUM_PERM, seed: int = _SEED) -> SignedChunk:
    """Exact keys, signatures and presence of every text, chunk by chunk (in parallel
    from two chunks on; the values do not depend on ``workers``)."""
    n = len(texts)
    with WorkerPool(resolve_workers(workers)) as pool:
        parallel = pool.workers > 1 and n > CHUNK
        if parallel:
            pool.warm(_ready)
        elif n > CHUNK:
            _ready()

        def tasks() -> Iterator[SignTask]:
            start = 0
            while start < n:
                size = guided_size(n - start, CHUNK, pool.workers)
                yield SignTask(texts.slice(start, size).to_list(), ngram, num_perm, seed)
                start += size

        parts = list(pool.map(sign_chunk, tasks(), parallel=parallel))
    if not parts:
        return SignedChunk(np.empty(0, np.uint64), np.empty((0, num_perm), np.uint32),
                           np.empty(0, bool))
    return SignedChunk(np.concatenate([p.keys for p in parts]),
                       np.concatenate([p.signatures for p in parts]),
                       np.concatenate([p.present for p in parts]))


def kept_rows(group: np.ndarray, frame: pl.DataFrame, keep: str) -> np.ndarray:
    """The row kept for each copy group (``group[r]``: the lowest row of ``r``'s group),
    ascending.

    ``first``: the group's first row in input order. ``earliest``: the lowest ``published``
    (rows without a date after every dated one). ``longest``: the most characters of
    ``text``. Ties go to the earlier row in input order, so every rule is stable.
    """
    n = len(group)
    rows = np.arange(n)
    if keep == "first":
        return np.flatnonzero(group == rows)
    if keep == "earliest":
        stamps = frame["published"].cast(pl.Datetime("us")).dt.epoch("us")
        missing = stamps.is_null().to_numpy()
        primary = stamps.fill_null(0).to_numpy().astype(np.int64)
        order = np.lexsort((rows, primary, missing, group))
    elif keep == "longest":
        lengths = frame["text"].str.len_chars().fill_null(0).to_numpy().astype(np.int64)
        order = np.lexsort((rows, -lengths, group))
    else:
        raise ValueError(f"keep must be one of {', '.join(KEEP_RULES)}, not {keep!r}")
    firsts = order[np.concatenate(([True], group[order][1:] != group[order][:-1]))]
    return np.sort(firsts)


def dedupe(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]],
    threshold: float = 0.8,
    ngram: int = 5,
    keep: Keep | str = "first",
    *,
    workers: int | None = 1,
    max_bucket_size: int = 100,
) -> DedupeResult:
    """Keep one article per copy group: exact duplicates of the normalized text, then
    near duplicates at estimated Jaccard >= ``threshold`` on word ``ngram``-grams, joined
    transitively (A~B and B~C put A, B and C in one group).

    Args:
        articles: a polars DataFrame with ``id`` and ``text`` (other columns pass
            through), or an iterable of dicts or ``Article`` records, as for ``cluster``.
        threshold: estimated Jaccard of word n-gram sets from which two texts are copies.
        ngram: words per shingle.
        keep: which row of a group stays: ``first`` (input order), ``earliest``
            (``published``), ``longest`` (characters of text); ties: input order.
        workers: processes (0 or None: every core); the output does not depend on it.
        max_bucket_size: LSH buckets larger than this are split and chained, never
            dropped (``candidates.lsh_pairs``).

    An article without a word (empty text) is nobody's copy: it is kept, alone.

    Example:
        >>> r = dedupe([{"id": "a", "text": "Quake hits Lima"},
        ...             {"id": "b", "text": "Quake hits  LIMA"}])
        >>> r.kept["id"].to_list(), r.mapping()
        (['a'], {'a': 'a', 'b': 'a'})
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, not {ngram}")
    if keep not in KEEP_RULES:
        raise ValueError(f"keep must be one of {', '.join(KEEP_RULES)}, not {keep!r}")
    timer = StageTimer()
    with timer.stage("read"):
        frame = articles_frame(articles)
    with timer.stage("signatures"):
        signed = sign(frame["text"], ngram=ngram, workers=workers)
    with timer.stage("groups"):
        groups = copies.copy_groups(signed.keys, signed.present, signed.signatures,
                                    threshold=threshold, max_bucket_size=max_bucket_size)
        group = groups.group
        exact = int(len(group) - np.count_nonzero(groups.exact == np.arange(len(group))))
        del signed
        kept = kept_rows(group, frame, keep)
        # Each row's group -> the kept row of that group.
        chosen = np.empty(len(group), dtype=np.int64)
        chosen[group[kept]] = kept
        kept_of = chosen[group]
        sizes = np.bincount(group, minlength=len(group))[group[kept]]
    with timer.stage("output"):
        ids = frame["id"]
        group_frame = pl.DataFrame({"id": ids, "copy_group": ids.gather(kept_of)})
    stats = {"articles": frame.height, "kept": len(kept), "dropped": frame.height - len(kept),
             "exact_duplicates": exact, "near_duplicates": frame.height - len(kept) - exact,
             "largest_group": int(sizes.max()) if len(sizes) else 0}
    return DedupeResult(frame, kept, sizes.astype(np.int64), group_frame, stats, timer.timings)
