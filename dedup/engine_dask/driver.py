"""``cluster_dask``: the batch stages on a Dask cluster, partition by partition.

What this module adds to the stage functions is only the distribution: which partition
holds what, the shuffles that bring together what must meet, and the assembly of the
outputs (gathered to the client, or written by the workers).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dedup import candidates, io, outputs
from dedup.assemble import ClusterResult
from dedup.config import CandidateSignal, Config
from dedup.dedupe import (
    DedupeResult,
    RowColumns,
    SignedChunk,
    check_options,
    dedupe_columns,
    grouped,
    sign,
)
from dedup.engine_dask import components, linkage, scoring, stages
from dedup.engine_dask.reading import expand, plan, read_files
from dedup.engine_dask.records import Finished, Linked
from dedup.engine_dask.runner import DaskEngineError, Run, connect, distributed, in_memory_parts
from dedup.merge import story_to_dict
from dedup.prepare import articles_frame
from dedup.records import Article, Cluster, Rejected, Story
from dedup.tuning import DaskTuning

__all__ = ["cluster_dask", "cluster_dataset", "dedupe_dask"]

_PARTS = ".parts"


@dataclass(frozen=True, slots=True)
class _Job:
    """What to cluster and where the results go: ``cluster_dask``'s arguments."""

    articles: Any
    partitions: int | None = None
    with_stories: bool = True
    with_pairs: bool = False
    columns: io.Columns = field(default_factory=io.Columns)
    fmt: str | None = None
    skip_bad_rows: bool = False
    output: Path | None = None
    output_format: io.TableFormat = "parquet"
    output_options: dict[str, Any] = field(default_factory=dict)
    coerce_ids: bool = False


@dataclass(frozen=True, slots=True)
class _Layout:
    """The non-empty partitions read (futures of frames), where each starts, what was
    rejected, and how many workers share them."""

    parts: list[Any]
    lengths: np.ndarray
    offsets: np.ndarray
    rejected: list[Rejected]
    workers: int
    notes: list[str]  # what the read changed without rejecting a row (``io.Notes``)

    @property
    def noted(self) -> dict[str, list[str]]:
        """``{"notes": ...}`` for a result's stats when the read noted something (a
        local read's notes are the CLI's, not the result's: equal stats otherwise)."""
        return {"notes": self.notes} if self.notes else {}

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    @property
    def count(self) -> int:
        return len(self.parts)

    def offset(self, k: int) -> int:
        return int(self.offsets[k])


@dataclass(frozen=True, slots=True)
class _Candidates:
    """Candidate pairs by pair bucket (futures of ``Union``) and their counts."""

    unions: list[Any]
    sizes: list[tuple[int, int, int]]
    oversized: int

    @property
    def pairs(self) -> int:
        return sum(s[0] for s in self.sizes)


def _is_paths(articles: Any) -> bool:
    if isinstance(articles, (str, Path)):
        return True
    return (isinstance(articles, (list, tuple)) and bool(articles)
            and all(isinstance(a, (str, Path)) for a in articles))


def _read(run: Run, job: _Job) -> _Layout:
    """Partitions of the input on the workers; empty ones dropped."""
    workers = run.workers()
    rejected: list[Rejected] = []
    notes: list[str] = []
    with run.stage("read"):
        if _is_paths(job.articles):
            pieces = plan(expand(job.articles), job.fmt, job.partitions,
                          run.tuning.partition_rows)
            parts, rejected, notes = read_files(run, pieces, job.columns,
                                                job.skip_bad_rows, job.coerce_ids)
        else:
            frame = articles_frame(job.articles)
            count = job.partitions or max(workers, -(-frame.height // run.tuning.partition_rows))
            parts = in_memory_parts(run, frame, max(1, min(count, frame.height)))
            del frame
        lengths = np.array(run.gather([run.submit(len, p) for p in parts]), dtype=np.int64)
        parts = [p for p, m in zip(parts, lengths, strict=True) if m > 0]
        lengths = lengths[lengths > 0]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    return _Layout(parts, lengths, offsets, rejected, workers, notes)


def _normalize(run: Run, layout: _Layout) -> tuple[list[Any], list[Any], Any, Any, int]:
    """Templates (a shuffle of line counts), each partition normalized, and the copy
    groups of the whole corpus: (partitions, their copy keys, groups, excerpt edges,
    number of groups)."""
    config, B = run.config, layout.count
    counts = [run.submit(stages.template_lines, p, config.normalize, B) for p in layout.parts]
    templates = [run.submit(stages.templates, config.normalize, *col)
                 for col in run.shuffle(counts, B)]
    prepared = [run.submit(stages.prepare_partition, p, config, run.tuning.chunk, *templates)
                for p in layout.parts]
    # Copy groups (#18): one small task sees every article's signature key.
    keys = [run.submit(stages.copy_keys, p) for p in prepared]  # also copy_group labels
    groups = run.submit(stages.copy_groups, *keys)
    # Excerpts tied to their story (``dedup.excerpts``): one small task, as copy groups.
    ties = run.submit(stages.excerpt_edges, groups, config.clustering, B,
                      *[run.submit(stages.excerpt_keys, p) for p in prepared])
    distinct = int(run.gather(run.submit(stages.count_representatives, groups)))
    run.wait(prepared)
    return prepared, keys, groups, ties, distinct


def _features(run: Run, layout: _Layout, prepared: list[Any], groups: Any,
              distinct: int) -> list[Any]:
    """Document frequencies summed over partitions, then each partition's weighed rows."""
    freqs = [run.submit(stages.frequencies, p, groups, layout.offset(k))
             for k, p in enumerate(prepared)]
    while len(freqs) > 1:  # tree reduction: no node sums more than 8 vectors
        freqs = [run.submit(stages.add, *freqs[k : k + 8]) for k in range(0, len(freqs), 8)]
    weighed = [run.submit(stages.weigh, p, freqs[0], distinct, run.config, groups,
                          layout.offset(k)) for k, p in enumerate(prepared)]
    run.wait(weighed)
    return weighed


def _signal(run: Run, layout: _Layout, weighed: list[Any], which: CandidateSignal
            ) -> tuple[list[Any], list[Any], list[Any]]:
    """LSH pairs of one signal (``candidates.lsh_pairs``' rules, ``CandidateConfig.
    lsh_options``): pairs by pair bucket, crowded-bucket counts, chains by pair bucket."""
    options = run.config.candidates.lsh_options(which)
    B, n = layout.count, layout.n
    bands, rows = candidates.lsh_params(options["threshold"], run.config.signatures.num_perm)
    entries = [run.submit(stages.band_entries, w, which, layout.offset(k), bands, rows,
                          options.get("split_depth", 0), B) for k, w in enumerate(weighed)]
    grouped = [run.submit(stages.band_buckets, n, options["max_bucket_size"],
                          options["chain"], B, *col) for col in run.shuffle(entries, B)]
    oversized = [run.pick(g, "oversized") for g in grouped]
    chains = [run.submit(stages.chain_codes, *col)
              for col in run.shuffle(grouped, B, "chains")]
    found = [run.submit(stages.count_pairs, options.get("min_collisions", 1), *col)
             for col in run.shuffle(grouped, B, "pairs")]
    return found, oversized, chains


def _candidates(run: Run, layout: _Layout, weighed: list[Any]) -> _Candidates:
    """Copies and events pairs, events capped per document, unioned by pair bucket."""
    B, n = layout.count, layout.n
    copies_found, copies_oversized, copies_chains = _signal(run, layout, weighed, "copies")
    events_found, events_oversized, events_chains = _signal(run, layout, weighed, "events")
    limit = run.config.candidates.lsh_options("events")["max_per_doc"]
    if limit is not None:
        directed = [run.submit(stages.directions, f, n, B) for f in events_found]
        strongest = [run.submit(stages.strongest, limit, n, B, *col)
                     for col in run.shuffle(directed, B)]
        events = run.shuffle(strongest, B)
    else:
        events = [[run.submit(stages.event_codes, f)] for f in events_found]
    unions = [run.submit(stages.union, c, e, cc, ec)
              for c, e, cc, ec in zip(copies_found, events, copies_chains, events_chains,
                                      strict=True)]
    sizes = run.gather([run.submit(stages.sizes, u) for u in unions])
    oversized = int(sum(run.gather(copies_oversized + events_oversized)))
    return _Candidates(unions, sizes, oversized)


def _refine(run: Run, layout: _Layout, weighed: list[Any], found: _Candidates
            ) -> tuple[list[Any], int]:
    """Accepted edges by component bucket, scored in waves of destination partitions."""
    P, n, offsets = layout.count, layout.n, layout.offsets
    by_left = [run.submit(scoring.by_left, u, n, offsets) for u in found.unions]
    mine = [run.submit(scoring.sorted_codes, *col) for col in run.shuffle(by_left, P)]
    del by_left
    scored = []
    waves = scoring.waves(P, found.pairs, layout.workers, run.tuning.wave_pairs_per_worker)
    for lo, hi in waves:
        left = [run.submit(scoring.left_rows, w, layout.offset(k), n, offsets, lo, hi, m)
                for k, (w, m) in enumerate(zip(weighed, mine, strict=True))]
        wave = [run.submit(scoring.score, weighed[d], layout.offset(d), n,
                           run.config.clustering.edge_threshold, P, *col)
                for d, col in zip(range(lo, hi), run.shuffle(left, hi - lo), strict=True)]
        run.wait(wave)  # the next wave's rows are shipped only once these are consumed
        scored += wave
    return scored, len(waves)


def _components(run: Run, scored: list[Any], B: int) -> tuple[list[Any], int]:
    """Connected components (``components``): graphs whose labels no longer change."""
    graphs = [run.submit(components.init, *col) for col in run.shuffle(scored, B)]
    rounds = 0
    while True:
        rounds += 1
        messages = [run.submit(components.messages, g, B) for g in graphs]
        received = [run.submit(components.receive, g, B, *col)
                    for g, col in zip(graphs, run.shuffle(messages, B), strict=True)]
        graphs = [run.pick(r, "graph") for r in received]
        answers = [run.submit(components.answer, g, B, *col)
                   for g, col in zip(graphs, run.shuffle(received, B, "requests"), strict=True)]
        jumped = [run.submit(components.jump, g, *col)
                  for g, col in zip(graphs, run.shuffle(answers, B), strict=True)]
        graphs = [run.pick(j, "graph") for j in jumped]
        changes = run.gather([run.pick(x, "changed") for x in received + jumped])
        if not any(changes):
            return graphs, rounds


def _link(run: Run, layout: _Layout, graphs: list[Any], weighed: list[Any], groups: Any,
          keys: list[Any], with_stories: bool) -> tuple[list[Any], list[Any]]:
    """Linkage and stories per component bucket (``linkage.link``), then each partition's
    assignments (``linkage.finish``): (linked, finished) futures."""
    P, B, offsets = layout.count, layout.count, layout.offsets
    labels = run.shuffle([run.submit(components.labels_by_part, g, offsets) for g in graphs], P)
    grouped_rows = [run.submit(linkage.rows_by_group, f, w, layout.offset(k), groups, B,
                               *labels[k])
                    for k, (f, w) in enumerate(zip(layout.parts, weighed, strict=True))]
    grouped_edges = run.shuffle([run.submit(components.edges_by_group, g, B) for g in graphs], B)
    template = run.submit(scoring.template_features, weighed[0])
    linked = [run.submit(linkage.link, run.config, with_stories, offsets, template, rows, edges)
              for rows, edges in zip(run.shuffle(grouped_rows, B), grouped_edges, strict=True)]
    del labels, grouped_rows, grouped_edges, template
    assigned = run.shuffle(linked, P, "assigned")
    finished = [run.submit(linkage.finish, f, layout.offset(k), run.config, with_stories,
                           keys[k], *assigned[k]) for k, f in enumerate(layout.parts)]
    return linked, finished


def _cluster(run: Run, job: _Job) -> ClusterResult:
    layout = _read(run, job)
    if layout.n == 0:
        from dedup.pipeline import cluster as local_cluster

        result = local_cluster([], run.config, with_stories=job.with_stories)
        result.rejected = layout.rejected
        result.stats.update(layout.noted)
        return result
    # The client lets go of every future it no longer needs, stage by stage: a result
    # stays on its worker while the client holds its future, and at a million articles
    # the finished candidate stage alone was several GB of spill per worker.
    with run.stage("normalize"):
        prepared, keys, groups, ties, distinct = _normalize(run, layout)
    with run.stage("features"):
        weighed = _features(run, layout, prepared, groups, distinct)
        del prepared
    with run.stage("candidates"):
        found = _candidates(run, layout, weighed)
        # Signatures (2 KB an article) are done with: held to the end, they were a third
        # of a worker's state at a million articles.
        weighed = [run.submit(stages.features_only, w) for w in weighed]
    with run.stage("refine"):
        pair_codes = [run.pick(u, "codes") for u in found.unions] if job.with_pairs else []
        scored, waves = _refine(run, layout, weighed, found)
        found = _Candidates([], found.sizes, found.oversized)
    with run.stage("cluster"):
        scored += [run.submit(stages.copy_edges, groups, layout.offset(k),
                              int(layout.lengths[k]), layout.count)
                   for k in range(layout.count)]
        scored.append(ties)
        del ties
        graphs, rounds = _components(run, scored, layout.count)
        del scored
        linked, finished = _link(run, layout, graphs, weighed, groups, keys, job.with_stories)
        del keys
        del graphs, weighed
        stats = {
            "copy_pairs": sum(s[1] for s in found.sizes),
            "event_pairs": sum(s[2] for s in found.sizes),
            "oversized_buckets": found.oversized,
            "copies_collapsed": layout.n - distinct,
            "partitions": layout.count,
            "workers": layout.workers,
            "component_rounds": rounds,
            "pair_waves": waves,
        }
        if job.output is not None:
            return _written(run, job, layout, found, finished, linked, stats)
        parts: list[Finished] = run.gather(finished)
        gathered: list[Linked] = run.gather([run.submit(_without_assigned, x) for x in linked])
    return _gathered(run, layout, found, parts, gathered, pair_codes, stats)


def _without_assigned(linked: Linked) -> Linked:
    """A linkage result's clusters and stories, for the client (assignments went on)."""
    return Linked([], linked.clusters, linked.stories)


def _gathered(run: Run, layout: _Layout, found: _Candidates, parts: list[Finished],
              linked: list[Linked], pair_codes: list[Any], stats: dict[str, Any]
              ) -> ClusterResult:
    """The result assembled on the client: clusters and stories in cluster-id order."""
    clusters = [c for p in parts for c in p.clusters] + [c for x in linked for c in x.clusters]
    stories = [s for p in parts for s in p.stories] + [s for x in linked for s in x.stories]
    clusters.sort(key=lambda c: c.cluster_id)
    stories.sort(key=lambda s: s.cluster_id)
    pairs = np.empty((0, 2), dtype=np.int64)
    n = layout.n
    if pair_codes:
        codes = np.sort(np.concatenate(run.gather(pair_codes)))
        pairs = np.stack([codes // n, codes % n], axis=1)
    return ClusterResult(
        assignments=_concat([p.frame for p in parts]),
        clusters=clusters,
        stories=stories,
        rejected=layout.rejected,
        timings=run.timings,
        candidate_pairs=found.pairs,
        pairs=pairs,
        stats={"articles": n, "clusters": len(clusters),
               "largest_cluster": max((c.size for c in clusters), default=0), **stats,
               **layout.noted},
    )


def _written(run: Run, job: _Job, layout: _Layout, found: _Candidates, finished: list[Any],
             linked: list[Any], stats: dict[str, Any]) -> ClusterResult:
    """The result when the workers wrote the outputs: counts, timings and rejected rows."""
    assert job.output is not None
    written = _write_on_workers(run, job, finished, linked,
                                layout.rejected if job.skip_bad_rows else None)
    return ClusterResult(
        assignments=pl.DataFrame(), clusters=[], stories=[], rejected=layout.rejected,
        timings=run.timings, candidate_pairs=found.pairs,
        stats={"articles": layout.n, "clusters": sum(w[0] for w in written),
               "largest_cluster": max((w[1] for w in written), default=0), **stats,
               "output": str(job.output), **layout.noted},
    )


def _write_on_workers(run: Run, job: _Job, finished: list[Any], linked: list[Any],
                      rejected: list[Rejected] | None) -> list[tuple[int, int]]:
    """Workers write their parts into a staging folder; this process merges the sorted
    cluster and story parts, then publishes everything as one set (``dedup.outputs``)."""
    from dedup import __version__

    assert job.output is not None
    with run.stage("write"), outputs.staged(job.output) as staging:
        folder = str(staging.path)
        tasks = [run.submit(_write_partition, folder, f"{k:05d}", job.output_format, f)
                 for k, f in enumerate(finished)]
        tasks += [run.submit(_write_linked, folder, f"l{b:05d}", x)
                  for b, x in enumerate(linked)]
        written: list[tuple[int, int]] = run.gather(tasks)
        parts = staging.path / _PARTS
        for kind in ("clusters", "stories"):
            files = sorted(parts.glob(f"{kind}-*.txt"))
            if files:
                io.merge_sorted_parts(files, staging.path / f"{kind}.jsonl")
        shutil.rmtree(parts)
        if rejected is not None:
            io.write_rejected(staging.path / "rejected.jsonl", rejected)
        staging.commit(job.output_options, __version__)
    return written


def _write_partition(staging: str, name: str, fmt: io.TableFormat, finished: Finished
                     ) -> tuple[int, int]:
    folder = Path(staging) / "assignments"
    folder.mkdir(parents=True, exist_ok=True)
    io.write_frame(folder / f"part-{name}.{fmt}", finished.frame, fmt)
    return _write_parts(staging, name, finished.clusters, finished.stories)


def _write_linked(staging: str, name: str, linked: Linked) -> tuple[int, int]:
    return _write_parts(staging, name, linked.clusters, linked.stories)


def _write_parts(staging: str, name: str, clusters: list[Cluster], stories: list[Story]
                 ) -> tuple[int, int]:
    """Sorted part files of clusters and stories; returns (clusters, largest size)."""
    parts = Path(staging) / _PARTS
    parts.mkdir(parents=True, exist_ok=True)
    io.write_sorted_part(parts / f"clusters-{name}.txt",
                         ((c.cluster_id, c.to_dict()) for c in clusters))
    if stories:
        io.write_sorted_part(parts / f"stories-{name}.txt",
                             ((s.cluster_id, story_to_dict(s)) for s in stories))
    return len(clusters), max((c.size for c in clusters), default=0)


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    try:
        return pl.concat(frames, how="vertical")
    except pl.exceptions.PolarsError:  # extra columns typed differently across files
        return pl.concat(frames, how="diagonal_relaxed")


@contextmanager
def _engine_errors(scheduler: str | None) -> Iterator[None]:
    """Lost workers and an unreachable scheduler as one ``DaskEngineError`` each."""
    module = distributed()
    from distributed.comm.core import CommClosedError

    try:
        yield
    except (module.KilledWorker, CommClosedError) as err:
        raise DaskEngineError(
            f"the Dask cluster lost this run ({type(err).__name__}: {err}); no output was "
            "written. A worker that keeps dying is usually out of memory: give workers "
            "more memory or use more partitions"
        ) from err
    except OSError as err:  # connecting to the scheduler timed out or was refused
        raise DaskEngineError(
            f"cannot reach the Dask scheduler at {scheduler or 'the local cluster'} ({err}); "
            "start one with `dask scheduler` and `dask worker ADDRESS`, or check the address"
        ) from err


def cluster_dask(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]] | str | Path | Sequence[str],
    config: Config | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    with_stories: bool = True,
    with_pairs: bool = False,
    columns: io.Columns | None = None,
    fmt: str | None = None,
    skip_bad_rows: bool = False,
    output: str | Path | None = None,
    output_format: io.TableFormat = "parquet",
    output_options: Mapping[str, Any] | None = None,
    coerce_ids: bool = False,
    tuning: DaskTuning | None = None,
) -> ClusterResult:
    """Cluster articles by event on a Dask cluster; the same result as ``dedup.cluster``.

    Args:
        articles: what ``dedup.cluster`` accepts (a polars DataFrame, dicts, ``Article``
            records), or a path, glob or list of them (Parquet, JSONL, CSV, .txt folders),
            which the workers read themselves: Parquet sliced by rows, others a file each.
        config: thresholds for every stage, as for ``dedup.cluster``.
        client: a ``distributed.Client`` to run on (left open).
        scheduler: address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
            Without client or scheduler a ``LocalCluster`` of this machine is started.
        partitions: partitions of the input (default: one per 10,000 articles, at least
            one per worker for in-memory input). Results do not depend on it.
        with_stories: merge each cluster into a story, as ``dedup.cluster``.
        with_pairs: also return the candidate pairs (``result.pairs``); they are gathered to
            the client, about 20 per article, so off by default.
        columns, fmt, skip_bad_rows, coerce_ids: how files are read, as ``io.read_articles``.
        output: a folder the workers write the results to (storage every worker and this
            process reach): ``assignments/part-NNNNN.parquet`` (one part per input
            partition, rows in input order), ``clusters.jsonl`` and ``stories.jsonl``,
            byte for byte what the local engine writes, published as one set with a
            ``manifest.json`` (``dedup.outputs``; ``rejected.jsonl`` with
            ``skip_bad_rows``). Nothing is gathered: the result holds only ``stats``,
            ``timings`` and ``rejected``.
        output_format: ``parquet`` or ``jsonl`` for the assignment parts.
        output_options: what the manifest records as the run's options.
        tuning: partition, chunk and wave sizes (``dedup.tuning.DaskTuning``); they bound
            memory and never change a result.

    Raises:
        ImportError: dask.distributed is not installed (``pip install 'dedup[dask]'``).
        DaskEngineError: the cluster lost the run (a worker died too often, say).

    Example:
        >>> r = cluster_dask([{"id": "a", "text": "Quake hits Lima"}])  # doctest: +SKIP
        >>> r.assignments.height  # doctest: +SKIP
        1
    """
    job = _Job(articles, partitions, with_stories, with_pairs, columns or io.Columns(), fmt,
               skip_bad_rows, Path(output) if output is not None else None, output_format,
               dict(output_options or {}), coerce_ids)
    with _engine_errors(scheduler), connect(client, scheduler) as connected:
        return _cluster(Run(connected, config or Config(), tuning or DaskTuning()), job)


def cluster_dataset(
    path_glob: str | Path | Sequence[str | Path],
    config: Config | None = None,
    **options: Any,
) -> ClusterResult:
    """Cluster the articles in files the workers read lazily (Parquet, JSONL, ...).

    Keyword options are those of ``cluster_dask`` (``scheduler=``, ``partitions=``, ...).

    Example:
        >>> cluster_dataset("feed/2024-*.parquet", scheduler="tcp://h:8786")  # doctest: +SKIP
    """
    return cluster_dask([str(p) for p in ([path_glob] if isinstance(path_glob, (str, Path))
                                          else path_glob)], config, **options)


def _sign_partition(frame: pl.DataFrame, ngram: int) -> tuple[SignedChunk, RowColumns]:
    """One partition's keys, signatures and the columns the keep rule needs (a worker)."""
    cols = RowColumns()
    return sign(cols.add(frame), ngram=ngram, workers=1), cols


def dedupe_dask(
    articles: pl.DataFrame | Iterable[Article | Mapping[str, Any]] | str | Path | Sequence[str],
    threshold: float = 0.8,
    ngram: int = 5,
    keep: str = "first",
    *,
    client: Any = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    columns: io.Columns | None = None,
    fmt: str | None = None,
    skip_bad_rows: bool = False,
    coerce_ids: bool = False,
    max_bucket_size: int = 100,
) -> DedupeResult:
    """``dedup.dedupe`` on a Dask cluster: the same groups, kept rows and output bytes.

    The workers read the partitions (as ``cluster_dask`` does: bad rows and duplicate ids
    across partitions by its rules) and sign them, the costly part; the signatures come to
    this process, where the copy groups (LSH over the whole corpus, components) and the
    keep rule run as in ``dedupe``. Then the partitions come here in order for
    ``DedupeResult.write_kept``: this process holds what the local engine holds. Rows a
    reader set aside (``skip_bad_rows``) are ``result.rejected``.

    Raises:
        ImportError: dask.distributed is not installed (``pip install 'dedup[dask]'``).
        DaskEngineError: the cluster lost the run.
    """
    check_options(threshold, ngram, keep)
    job = _Job(articles, partitions, False, False, dedupe_columns(columns), fmt, skip_bad_rows,
               coerce_ids=coerce_ids)
    with _engine_errors(scheduler), connect(client, scheduler) as connected:
        run = Run(connected, Config(), DaskTuning())
        layout = _read(run, job)
        with run.stage("signatures"):
            signed = run.gather([run.submit(_sign_partition, p, ngram) for p in layout.parts])
        frames: list[pl.DataFrame] = run.gather(layout.parts)
    cols = RowColumns()
    for _, part in signed:
        cols.ids += part.ids
        cols.published += part.published
        cols.lengths += part.lengths
    chunks = [chunk for chunk, _ in signed]
    together = (SignedChunk(np.concatenate([c.keys for c in chunks]),
                            np.concatenate([c.signatures for c in chunks]),
                            np.concatenate([c.present for c in chunks])) if chunks
                else sign(pl.Series("text", [], dtype=pl.String)))
    if not frames:
        frames = [articles_frame([])]
    result = grouped(together, cols, lambda: iter(frames), threshold, keep, max_bucket_size,
                     run)
    result.rejected.extend(layout.rejected)
    result.stats.update(layout.noted)
    return result
