"""StoryIndex internals that stand in for library calls: they must give the same answers."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from dedup import candidates, pipeline, refine, signatures
from dedup.clustering import weighted_link as _weighted_link_reference
from dedup.config import Config
from dedup.index import StoryIndex
from dedup.index.bands import BandIndex, Rules, lookup, radix_directory, radix_search
from dedup.index.inputs import plain_articles
from dedup.index.state import TermStore, count_df
from dedup.index.terms import count_terms
from dedup.index.vectors import Scratch, Vectors
from dedup.records import Article

_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)


def _naive_wpgma(sim: np.ndarray, threshold: float) -> list[list[int]]:
    """WPGMA by its definition, O(n^3): merge the closest pair while it is within the cut; the
    merged cluster's distance to another is the plain mean of its two parts' distances."""
    dist = np.clip(1.0 - (sim + sim.T) / 2, 0.0, 1.0)
    groups: dict[int, list[int]] = {i: [i] for i in range(len(sim))}
    d = {(i, j): float(dist[i, j]) for i in groups for j in groups if i < j}
    while d:
        (a, b), height = min(d.items(), key=lambda kv: (kv[1], kv[0]))
        if height > 1.0 - threshold:
            break
        for c in groups:
            if c not in (a, b):
                d[min(a, c), max(a, c)] = (d[min(a, c), max(a, c)] + d[min(b, c), max(b, c)]) / 2
        groups[a] += groups.pop(b)
        d = {k: v for k, v in d.items() if b not in k}
    return sorted(sorted(g) for g in groups.values())


@pytest.mark.parametrize("seed", range(40))
def test_weighted_link_matches_naive_wpgma(seed: int) -> None:
    """Random score matrices: stories (blocks of high scores), noise, exact duplicates
    (ties at distance 0), scores below zero and above one, slight asymmetry. The reference
    is WPGMA written out in the test, not a call into ``dedup``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    story = rng.integers(0, max(1, n // 3), size=n)
    sim = np.where(story[:, None] == story[None, :], rng.uniform(0.05, 0.6, (n, n)),
                   rng.uniform(-0.05, 0.2, (n, n)))
    sim = (sim + sim.T) / 2
    twins = rng.choice(n, size=min(n, 4), replace=False)
    sim[twins[1:]] = sim[twins[0]]
    sim[:, twins[1:]] = sim[:, [twins[0]]]
    sim[np.ix_(twins, twins)] = 1.0 + rng.uniform(0, 1e-12)
    sim = sim + rng.uniform(0, 1e-15, (n, n))  # as a matrix product may leave it
    for threshold in (0.13, 0.3):
        ours = sorted(g.tolist() for g in _weighted_link_reference(sim, threshold))
        assert ours == _naive_wpgma(sim, threshold)


def test_radix_search_matches_searchsorted() -> None:
    rng = np.random.default_rng(7)
    edges = np.array([0, 5, 5, 5, 2**64 - 1, 2**64 - 1], dtype=np.uint64)
    for n in (0, 3, 1000, 300_000):
        keys = np.sort(np.concatenate(
            [rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2), edges]))
        directory = radix_directory(keys)
        queries = np.sort(np.concatenate([
            keys[rng.integers(0, len(keys), 500)],
            rng.integers(0, 2**63, 500, dtype=np.int64).astype(np.uint64),
            np.array([0, 1, 4, 5, 6, 2**64 - 1], dtype=np.uint64)]))
        for side in ("left", "right"):
            assert np.array_equal(radix_search(keys, directory, queries, side),
                                  np.searchsorted(keys, queries, side))


# --------------------------------------------------------------------- candidate rules


def _index_pairs(sigs: np.ndarray, cand: Any, adds: list[int], limit: int | None = None
                 ) -> set[tuple[int, int]]:
    """Candidate pairs of ``bands.lookup`` over ``sigs`` as events signatures, added in
    batches of ``adds`` rows (copies signatures absent; ``limit``: the events cap), each
    pair as (low, high)."""
    options = cand.lsh_options("events")
    shape = candidates.lsh_params(options["threshold"], sigs.shape[1])
    events, copies = BandIndex(Rules.of(options, shape)), BandIndex(Rules.of(options, shape))
    out: set[tuple[int, int]] = set()
    first = 0
    for size in adds:
        part = sigs[first : first + size]
        keys = events.rules.keys(part)
        present = np.ones(size, dtype=bool)
        found = lookup(copies, events, keys, ~present, keys, present, first, limit)
        out.update((int(r), first + k) for k, rows in enumerate(found) for r in rows)
        events.insert(np.arange(first, first + size), keys)
        first += size
    return out


def _crowded_signatures() -> np.ndarray:
    """Events signatures (82 bands of 1 row) with one crowded bucket that a split resolves:
    rows 20-59 share min-hash 0 (band 0's bucket, cap 20), the last 10 of them (``A``) also
    share min-hash 1, the split column of band 0, as do rows 0-19 (band 1 crowded too). A
    arrives last, when both buckets are crowded."""
    rng = np.random.default_rng(5)
    sigs = rng.integers(0, 2**32, (60, 128), dtype=np.int64).astype(np.uint32)
    sigs[20:60, 0] = 7  # band 0: 40 members
    sigs[:20, 1] = sigs[50:, 1] = 9  # band 1: 30 members; rows 50-59 (A) share bands 0 and 1
    return sigs


def test_index_splits_crowded_buckets_as_the_batch_does() -> None:
    """``events_split_depth`` (#18: the index ignored it) changes the index's candidates as
    it changes the batch's: with depth 0 both only chain the crowded buckets, with depth 1
    both pair the 10 articles that also share the split column, all 45 pairs; the index
    sees them in arrival order (the crowd first, then A, one add and several)."""
    sigs = _crowded_signatures()
    a_pairs = {(i, j) for i in range(50, 60) for j in range(i + 1, 60)}
    for depth in (0, 1, 2):
        cand = dataclasses.replace(Config().candidates, events_split_depth=depth,
                                   events_max_per_doc=None)
        batch, _ = candidates.lsh_pairs(sigs, np.ones(60, dtype=bool),
                                        **cand.lsh_options("events"))
        batch_has = a_pairs <= {(int(i), int(j)) for i, j in batch}
        for adds in ([60], [30, 25, 5], [1] * 60):
            index_has = a_pairs <= _index_pairs(sigs, cand, adds)
            assert batch_has == index_has == (depth > 0), (depth, adds)


def test_index_chains_a_crowded_bucket_as_the_batch_does_past_the_caps() -> None:
    """A bucket still crowded (no split level) is chained: each member to the next
    ``crowded_chain`` by row, kept whatever ``events_min_collisions`` says, as
    ``lsh_pairs`` keeps them. The index sees the chain from each newest member, from the
    add that makes the bucket crowded (21 members counting the new one, cap 20)."""
    rng = np.random.default_rng(9)
    sigs = rng.integers(0, 2**32, (30, 128), dtype=np.int64).astype(np.uint32)
    sigs[:, 0] = 7  # one band shared by all 30: crowded; every pair shares one band only
    cand = dataclasses.replace(Config().candidates, events_split_depth=0,
                               events_min_collisions=2, events_max_per_doc=None)
    batch, _ = candidates.lsh_pairs(sigs, np.ones(30, dtype=bool), **cand.lsh_options("events"))
    chained = {(int(i), int(j)) for i, j in batch}
    assert chained == {(i, j) for j in range(30) for i in (j - 2, j - 1) if i >= 0}
    for adds in ([30], [10, 15, 5], [1] * 30):
        assert _index_pairs(sigs, cand, adds) == {(i, j) for i, j in chained if j >= 20}


def test_index_caps_events_partners_by_the_batch_rank() -> None:
    """The events cap keeps a new article's partners sharing the most bands, ties the lower
    row (``candidates.strongest_entries``, as ``lsh_pairs``), not the most recent."""
    rng = np.random.default_rng(4)
    sigs = rng.integers(0, 2**32, (6, 128), dtype=np.int64).astype(np.uint32)
    for row in range(5):  # rows 0-4 share band ``row`` with row 5; row 4 shares band 9 too
        sigs[row, row] = sigs[5, row]
    sigs[4, 9] = sigs[5, 9]
    for adds in ([6], [5, 1]):
        assert _index_pairs(sigs, Config().candidates, adds, limit=2) == {(0, 5), (4, 5)}


def test_band_tiers_stay_sorted_and_answer_as_one_table() -> None:
    """Merging batches into the small, recent and main tiers keeps each sorted by key, split
    min-hashes, row (what makes a sub-bucket a slice whose last rows are the newest), and
    the tiers answer a query as one table built at once does."""
    rng = np.random.default_rng(2)
    rules = Rules(bands=4, rows=1, max_bucket_size=5, chain=2, split_depth=2)
    keys = rng.integers(0, 6, (400, 3, 4), dtype=np.int64).astype(np.uint64)  # crowded
    table, whole = BandIndex(rules), BandIndex(rules)
    table.SMALL = 64  # merges into recent and main after a few batches
    for first in range(0, 360, 40):
        table.insert(np.arange(first, first + 40), keys[first : first + 40])
    whole.build(np.arange(360), keys[:360])
    assert all(len(tier[0]) for tier in table.tiers[:2])
    for band_keys, split, rows in table.tiers:
        order = np.lexsort((rows, split, band_keys))
        assert np.array_equal(order, np.arange(len(order)))
    valid = np.ones(40, dtype=bool)
    ours, theirs = table.query(keys[360:], valid, 360), whole.query(keys[360:], valid, 360)
    for a, b in zip(ours.pairs(360) + ours.chained(360), theirs.pairs(360) + theirs.chained(360),
                    strict=True):
        assert np.array_equal(a, b)
    assert len(ours.chained(360)[0]) and len(ours.pairs(360)[0])


def test_index_finds_the_batch_pairs_where_no_bucket_is_crowded() -> None:
    """Buckets under the cap: the index's candidates, whatever the batch sizes, are exactly
    ``lsh_pairs``' (same bands, same bucket keys, same shared-band rule)."""
    rng = np.random.default_rng(11)
    sigs = rng.integers(0, 40, (120, 128), dtype=np.int64).astype(np.uint32)  # many collisions
    cand = dataclasses.replace(Config().candidates, events_max_bucket_size=1000,
                               events_min_collisions=2, events_max_per_doc=None)
    batch, _ = candidates.lsh_pairs(sigs, np.ones(120, dtype=bool), **cand.lsh_options("events"))
    expected = {(int(i), int(j)) for i, j in batch}
    assert 100 < len(expected) < 120 * 119 // 2
    for adds in ([120], [50, 1, 69]):
        assert _index_pairs(sigs, cand, adds) == expected


# --------------------------------------------------------------------------- add's inputs


def _texts() -> list[dict[str, object]]:
    """Seeds, distractors and the first 300 ECB+ dev articles: varied real text."""
    from tests.conftest import DISTRACTORS, ECBPLUS, read_seeds

    rows = [*read_seeds(), *DISTRACTORS]
    with ECBPLUS.open(encoding="utf-8") as handle:
        for line in list(handle)[:300]:
            r = json.loads(line)
            rows.append({"id": r["doc_id"], "title": r["title"], "text": r["text"]})
    return rows


def test_plain_articles_match_the_frame() -> None:
    """The direct path builds what the polars frame does, and leaves the rest to it."""
    stamp = datetime(2024, 5, 1, 12, 30, 15, 123456)
    plain: list[list[Any]] = [
        [{"id": "a", "text": "Quake hits Lima."}],
        [{"id": "a", "text": "x", "title": None, "published": stamp, "source": "Wire"},
         {"id": "b", "text": "", "title": "T", "published": None, "source": None},
         Article("c", "Text", "Title", stamp, "Src")],
        [{"id": " padded ", "text": "y", "title": ""}],
    ]
    for items in plain:
        ours = plain_articles(items)
        assert ours is not None
        theirs = pipeline.to_articles(pipeline.articles_frame(items))
        assert [(a.id, a.text, a.title, a.published, a.source, a.extra) for a in ours] == [
            (a.id, a.text, a.title, a.published, a.source, a.extra) for a in theirs]
    not_plain: list[list[Any]] = [
        [{"id": "a", "text": "x", "lang": "en"}],  # an extra column
        [Article("a", "x", extra={"lang": "en"})],
        [{"id": 7, "text": "x"}],  # cast by the frame
        [{"id": "a", "text": None}],
        [{"id": "  ", "text": "x"}],  # rejected by the frame
        [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}],
        [{"text": "x"}],
        [{"id": "a", "text": "x", "published": "2024-05-01"}],
        [{"id": "a", "text": "x", "published": stamp.replace(tzinfo=UTC)}],
        [("a", "x")],
    ]
    for items in not_plain:
        assert plain_articles(items) is None


def test_count_terms_match_the_hashing_vectorizer(tmp_path: Path) -> None:
    """Term ids, TF, DF and both shingle sets equal what refine's HashingVectorizer and
    signatures' TokenHasher give, batch after batch (the vocabulary warm)."""
    config = Config()
    hasher = signatures.TokenHasher()
    with StoryIndex.open(tmp_path / "i.db") as index:
        state: Any = SimpleNamespace(df=np.zeros(4 * refine.N_FEATURES, dtype=np.int32), terms=0)
        df = np.zeros(4 * refine.N_FEATURES, dtype=np.int64)
        rows = _texts()
        for start in range(0, len(rows), 37):
            prepared = [pipeline.prepare(str(r["text"]), str(r.get("title") or ""), frozenset())
                        for r in rows[start : start + 37]]
            ids, tf, lengths, hashes, counts = count_terms(index._vocabulary, prepared, True)
            count_df(state, ids, 1)  # no copies among these texts: all count
            matrix = sp.hstack([refine.term_counts([getattr(p.terms, name) for p in prepared])
                                for name in ("body", "names", "title", "numbers")], format="csr")
            assert np.array_equal(ids, matrix.indices.astype(np.int32))
            assert np.array_equal(tf, (1.0 + np.log(matrix.data)).astype(np.float32))
            assert np.array_equal(lengths, np.diff(matrix.indptr))
            np.add.at(df, matrix.indices, 1)
            assert np.array_equal(state.df, df) and state.terms == np.count_nonzero(df)
            ours = signatures.hashed_shingles(hashes, counts, config.signatures.shingle_size)
            theirs = signatures.copy_shingles([p.tokens for p in prepared], config.signatures,
                                              hasher)
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
            body = matrix.indices[matrix.indices < refine.N_FEATURES]
            assert np.array_equal(index._vocabulary.column_hashes(body),
                                  signatures.term_shingles([list(map(str, body))], hasher)[0])


@pytest.mark.parametrize("seed", range(40))
def test_weighted_link_nn_chain_matches_public_linkage(seed: int) -> None:
    """``weighted_link`` (scipy's nn_chain called directly) against the same cut of the
    tree public ``linkage`` builds, with ties (rounded scores) and slight asymmetry."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60))
    story = rng.integers(0, max(1, n // 3), size=n)
    sim = np.where(story[:, None] == story[None, :], rng.uniform(0.05, 0.6, (n, n)),
                   rng.uniform(-0.05, 0.2, (n, n)))
    if seed % 2:
        sim = np.round(sim, 1)
    sim = (sim + sim.T) / 2 + rng.uniform(0, 1e-15, (n, n))
    for threshold in (0.05, 0.13, 0.3):
        ours = [g.tolist() for g in _weighted_link_reference(sim, threshold)]
        # the fallback: scipy's public ``linkage``
        public = [g.tolist() for g in _weighted_link_reference(sim, threshold, nn_chain=False)]
        assert ours == public


def test_term_store_gathers_what_was_added_after_removals() -> None:
    rng = np.random.default_rng(3)
    store = TermStore()
    expected: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    row = 1
    for _ in range(30):
        lengths = rng.integers(0, 9, size=5)
        rows = np.arange(row, row + 5)
        row += 5
        ids = rng.integers(0, 1000, size=int(lengths.sum())).astype(np.int32)
        tf = rng.uniform(1, 3, size=len(ids)).astype(np.float32)
        store.add(rows, ids, tf, lengths, np.full(5, np.nan), [frozenset({"2020"})] * 5)
        for r, part_ids, part_tf in zip(rows.tolist(), np.split(ids, np.cumsum(lengths)[:-1]),
                                        np.split(tf, np.cumsum(lengths)[:-1]), strict=True):
            expected[r] = (part_ids, part_tf)
        gone = rng.choice(sorted(expected), size=3, replace=False)
        store.remove(gone)
        for r in gone.tolist():
            del expected[r]
    assert store.garbage < store.used  # compacted along the way
    live = np.asarray(sorted(expected))
    ids, tf, lengths = store.gather(live)
    assert np.array_equal(ids, np.concatenate([expected[r][0] for r in live.tolist()]))
    assert np.array_equal(tf, np.concatenate([expected[r][1] for r in live.tolist()]))
    assert lengths.tolist() == [len(expected[r][0]) for r in live.tolist()]


# --------------------------------------------------------------------------- one score


def _scored_corpus() -> list[dict[str, object]]:
    """ECB+ articles in topics that share words, dated days to months apart, some naming
    conflicting years: pairs that the year factor and the date window both change."""
    from tests.conftest import ECBPLUS

    with ECBPLUS.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in list(handle)[:48]]
    years = ["", " The 2005 report said so.", " The 2008 report said so."]
    out: list[dict[str, object]] = []
    for k, r in enumerate(rows):
        out.append({"id": r["doc_id"], "title": r["title"], "text": r["text"] + years[k % 3],
                    "published": datetime(2024, 1, 1, 6) + timedelta(days=[0, 3, 40, 9][k % 4],
                                                                     hours=k)})
    return out


def test_batch_and_index_give_one_score_per_pair(tmp_path: Path) -> None:
    """The same pair gets the same score from the batch stage (``refine.pair_scores`` and
    ``block_similarity``, which the Dask engine calls too) and from the index's vectors
    (``Vectors.pair_scores``, ``scores``, ``dense``, ``dense_many``), compared directly:
    IDF, block weights, the year-conflict factor and the date window included. The index
    stores TF as float32, hence the tolerance (a rule that differs moves scores by 0.1+)."""
    config = Config()
    rows = _scored_corpus()
    prepared = [pipeline.prepare(str(r["text"]), str(r["title"]), frozenset()) for r in rows]
    days = np.array([r["published"].replace(tzinfo=UTC).timestamp()  # type: ignore[attr-defined]
                     for r in rows]) / 86400.0
    features = refine.build_features([p.terms for p in prepared], config.refine, days)
    n = len(rows)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    batch = refine.pair_scores(features, pairs)
    with StoryIndex.open(tmp_path / "i.db", config) as index:
        index.add(rows)  # one add: DF counts the whole batch, as the batch does
        state = index._current_state()
        vectors = Vectors(config.refine, state, state.distinct, Scratch())
        row_of = {doc.id: row for row, doc in state.docs.items()}
        at = np.array([row_of[str(r["id"])] for r in rows], dtype=np.int64)
        ours = vectors.pair_scores(at[pairs[:, 0]], at[pairs[:, 1]])
        one = vectors.scores(int(at[0]), at[1:].tolist())
        dense = vectors.dense(at.tolist())
        small = vectors.dense_many([at[:6].tolist()])[tuple(at[:6].tolist())]
    gap = np.abs(days[pairs[:, 0]] - days[pairs[:, 1]]) > config.refine.date_window_days
    shared = refine.pair_scores(dataclasses.replace(features, year_conflict_factor=1.0,
                                                    date_window_days=None), pairs)
    conflict = ~gap & (shared > 0.05) & (batch < shared * 0.75)
    assert gap.sum() > 50 and conflict.sum() > 5 and (batch[~gap] > 0.05).sum() > 50
    assert np.allclose(ours, batch, rtol=1e-6, atol=1e-9)
    assert np.allclose(one, batch[: n - 1], rtol=1e-6, atol=1e-9)
    block = refine.block_similarity(features, np.arange(n))
    assert np.allclose(dense, block, rtol=1e-6, atol=1e-9)
    assert np.allclose(small, block[:6, :6], rtol=1e-6, atol=1e-9)
