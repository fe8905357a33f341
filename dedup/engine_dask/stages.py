"""Per-partition tasks of normalization, features and candidates: each calls the batch
stage function on its rows (``prepare.normalize_frame``, ``refine.weigh_features``,
``candidates.bucket_pairs``, ...) and splits the result by shuffle bucket."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import polars as pl
import scipy.sparse as sp

from dedup import candidates, copies, excerpts, normalize, refine, signatures
from dedup.config import ClusterConfig, Config, NormalizeConfig
from dedup.engine_dask.records import (
    BandBuckets,
    BandRows,
    Directed,
    Edges,
    PairCounts,
    Partition,
    Union,
    Weighed,
)
from dedup.engine_dask.routing import route, route_rows, route_text, split
from dedup.prepare import normalize_frame, publication_days

# --------------------------------------------------------------------------- normalize


def template_lines(frame: pl.DataFrame, config: NormalizeConfig,
                   buckets: int) -> list[Counter[tuple[str, str]]]:
    """``normalize.template_line_counts`` of a partition, split by line."""
    counts = normalize.template_line_counts(zip(frame["source"], frame["text"], strict=True),
                                            config)
    out: list[Counter[tuple[str, str]]] = [Counter() for _ in range(buckets)]
    for (source, line), n in counts.items():
        # By line: a bucket sees every source of its lines (``normalize.templates_of``).
        out[route_text(line, buckets)][(source, line)] = n
    return out


def templates(config: NormalizeConfig, *slices: Counter[tuple[str, str]]) -> frozenset[str]:
    """``normalize.templates_of`` the summed counts of one bucket of (source, line)."""
    total: Counter[tuple[str, str]] = Counter()
    for s in slices:
        total.update(s)
    return normalize.templates_of(total, config)


def prepare_partition(frame: pl.DataFrame, config: Config, chunk: int,
                      *template_parts: frozenset[str]) -> Partition:
    """``prepare.normalize_frame`` of one partition, and its publication days."""
    found = normalize_frame(frame, frozenset().union(*template_parts), config, chunk)
    days = publication_days(frame)
    return Partition(found.counts, found.copy_sigs, found.has_copies, days,
                     found.openings.dated(days))


def copy_keys(prepared: Partition) -> tuple[np.ndarray, np.ndarray]:
    """``copies.signature_keys`` of a partition's copies signatures, and which are present."""
    return copies.signature_keys(prepared.copy_sigs), prepared.has_copies


def copy_groups(*parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``copies.copy_groups`` over the whole corpus (8 bytes an article: one task holds a
    million): each global row's representative row."""
    keys = np.concatenate([p[0] for p in parts])
    present = np.concatenate([p[1] for p in parts])
    return copies.copy_groups(keys, present).group


def count_representatives(groups: np.ndarray) -> int:
    return int(np.count_nonzero(groups == np.arange(len(groups))))


def representatives(groups: np.ndarray, offset: int, m: int) -> np.ndarray:
    """Which of rows ``offset .. offset + m - 1`` represent their copy group."""
    return groups[offset : offset + m] == np.arange(offset, offset + m)


def excerpt_keys(prepared: Partition) -> excerpts.Openings:
    return prepared.openings


def excerpt_edges(groups: np.ndarray, config: ClusterConfig, buckets: int,
                  *parts: excerpts.Openings) -> list[Edges]:
    """``excerpts.edges`` over the whole corpus (one task: ~25 bytes an article), both ways,
    scored at the edge threshold as in the local engine, by component bucket."""
    whole = excerpts.Openings.stack(parts)
    found = excerpts.edges(whole.dated(whole.first, groups), groups == np.arange(len(groups)),
                           config.excerpt_max_days, np.bincount(groups, minlength=len(groups)))
    src = np.concatenate((found[:, 0], found[:, 1]))
    dst = np.concatenate((found[:, 1], found[:, 0]))
    return [Edges(*s) for s in split(route(src, buckets), buckets, src, dst,
                                      np.full(len(src), config.edge_threshold))]


def copy_edges(groups: np.ndarray, offset: int, m: int, buckets: int) -> list[Edges]:
    """Edges (both ways, score 1) from each copy here to its representative, by component
    bucket: a copy group joins one component, and linkage expands it (``linkage.link``)."""
    rows = np.arange(offset, offset + m)
    copy = rows[groups[offset : offset + m] != rows]
    rep = groups[copy]
    src, dst = np.concatenate((copy, rep)), np.concatenate((rep, copy))
    return [Edges(*s) for s in split(route(src, buckets), buckets, src, dst, np.ones(len(src)))]


# --------------------------------------------------------------------------- features


def frequencies(prepared: Partition, groups: np.ndarray, offset: int
                ) -> dict[str, sp.csr_matrix]:
    """Document frequencies as sparse rows: a dense block is 8 MB, mostly zeros, per shard.
    A copy group counts once (its representative), as in the local engine."""
    counted = representatives(groups, offset, len(prepared.has_copies))
    return {k: sp.csr_matrix(v.reshape(1, -1))
            for k, v in prepared.counts.frequencies(counted).items()}


def add(*parts: dict[str, sp.csr_matrix]) -> dict[str, sp.csr_matrix]:
    return {k: sum((p[k] for p in parts[1:]), parts[0][k]).tocsr() for k in parts[0]}


def weigh(prepared: Partition, totals: dict[str, sp.csr_matrix], n_docs: int,
          config: Config, groups: np.ndarray, offset: int) -> Weighed:
    """Corpus-weighted TF-IDF rows (row-local given ``totals``) and events signatures;
    only copy groups' representatives are candidates."""
    is_rep = representatives(groups, offset, len(prepared.has_copies))
    dense = {k: v.toarray().ravel().astype(np.int64) for k, v in totals.items()}
    features = refine.weigh_features(prepared.counts, dense, n_docs, config.refine,
                                     days=prepared.days)
    sig = config.signatures
    sets = signatures.column_shingles(features.salient.offsets, features.salient.columns)
    event_sigs = signatures.MinHasher(sig.num_perm, sig.seed).signatures(sets)
    return Weighed(
        features=dataclasses.replace(features, salient=refine.Salient.empty()),
        signatures={"copies": prepared.copy_sigs, "events": event_sigs},
        present={"copies": prepared.has_copies & is_rep,
                 "events": np.array([len(s) > 0 for s in sets], dtype=bool) & is_rep},
        openings=prepared.openings,
    )


def features_only(weighed: Weighed) -> Weighed:
    return Weighed(weighed.features, {}, {}, weighed.openings)


# --------------------------------------------------------------------------- candidates


def band_entries(weighed: Weighed, which: str, offset: int, bands: int, rows: int,
                 depth: int, buckets: int) -> list[BandRows]:
    """(band, key...) rows, global doc index and the min-hashes that split a crowded bucket
    (``candidates.split_columns``) of every present document, by bucket of (band, key)."""
    sigs = weighed.signatures[which][weighed.present[which]]
    local = np.flatnonzero(weighed.present[which])
    m = len(local)
    keys = sigs[:, : bands * rows].reshape(m, bands, rows).transpose(1, 0, 2)
    keys = np.concatenate(
        (np.repeat(np.arange(bands, dtype=np.uint32), m)[:, None], keys.reshape(-1, rows)), axis=1
    )
    docs = np.tile(local.astype(np.int64) + offset, bands)
    dest = route_rows(keys, buckets)
    if depth <= 0:
        return [BandRows(k, d, None) for k, d in split(dest, buckets, keys, docs)]
    extra = [candidates.split_columns(sigs, band, bands, rows, depth) for band in range(bands)]
    columns = np.concatenate([e for e in extra if e is not None])
    return [BandRows(*s) for s in split(dest, buckets, keys, docs, columns)]


def band_buckets(n: int, max_bucket_size: int, chain: int, buckets: int,
                 *slices: BandRows) -> BandBuckets:
    """``candidates.bucket_pairs`` of the LSH buckets grouped here: pairs with their band
    counts, crowded buckets skipped, and the chains' codes (kept whatever the caps)."""
    keys = np.concatenate([s.keys for s in slices])
    docs = np.concatenate([s.docs for s in slices])
    extra = (np.concatenate([s.extra for s in slices if s.extra is not None])
             if slices[0].extra is not None else None)
    chained: list[np.ndarray] = []
    codes, oversized = candidates.bucket_pairs(keys, docs, n, max_bucket_size, extra, chain,
                                               chained)
    codes, counts = np.unique(codes, return_counts=True)
    linked = candidates.unique_sorted(np.concatenate(chained or [np.empty(0, np.int64)]))
    return BandBuckets(
        pairs=[PairCounts(*s) for s in split(route(codes, buckets), buckets, codes, counts)],
        oversized=oversized,
        chains=[s[0] for s in split(route(linked, buckets), buckets, linked)],
    )


def chain_codes(*slices: np.ndarray) -> np.ndarray:
    return candidates.unique_sorted(np.concatenate(slices or (np.empty(0, np.int64),)))


def count_pairs(min_collisions: int, *slices: PairCounts) -> PairCounts:
    """Shared-band count per pair over every band, pairs below ``min_collisions`` dropped."""
    codes = np.concatenate([s.codes for s in slices] or [np.empty(0, np.int64)])
    counts = np.concatenate([s.counts for s in slices] or [np.empty(0, np.int64)])
    unique, inverse = np.unique(codes, return_inverse=True)
    total = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
    keep = total >= min_collisions
    return PairCounts(unique[keep], total[keep])


def directions(pairs: PairCounts, n: int, buckets: int) -> list[Directed]:
    codes, counts = pairs.codes, pairs.counts
    low, high = codes // n, codes % n
    src, dst = np.concatenate((low, high)), np.concatenate((high, low))
    return [Directed(*s) for s in split(route(src, buckets), buckets, src, dst,
                                        np.concatenate((counts, counts)),
                                        np.concatenate((codes, codes)))]


def strongest(limit: int, n: int, buckets: int, *slices: Directed) -> list[np.ndarray]:
    """Codes of pairs among each document's ``limit`` strongest partners (ties: lower index),
    the rule of ``candidates.lsh_pairs(max_per_doc=...)``."""
    src, dst, strength, codes = (np.concatenate([getattr(s, f) for s in slices])
                                 for f in ("src", "dst", "strength", "codes"))
    chosen = candidates.strongest_entries(src, dst, strength, limit, n)
    kept = candidates.unique_sorted(codes[chosen])
    return [s[0] for s in split(route(kept, buckets), buckets, kept)]


def union(copies_found: PairCounts, events: list[np.ndarray], copy_chain: np.ndarray,
          event_chain: np.ndarray) -> Union:
    """Candidate codes of one pair bucket, with its copies and events pair counts (chains
    included, as ``candidates.lsh_pairs`` counts them)."""
    event_codes = candidates.unique_sorted(np.concatenate(events))
    copy_codes = candidates.unique_sorted(np.concatenate((copies_found.codes, copy_chain)))
    event_codes = candidates.unique_sorted(np.concatenate((event_codes, event_chain)))
    codes = candidates.unique_sorted(np.concatenate((copy_codes, event_codes)).astype(np.int64))
    return Union(codes, len(copy_codes), len(event_codes))


def event_codes(found: PairCounts) -> np.ndarray:
    """The codes of uncapped events pairs (one slice for ``union``)."""
    return found.codes


def sizes(found: Union) -> tuple[int, int, int]:
    return found.sizes()
