"""The Dask engine gives the local engine's result, whatever the partitions or workers.

Needs dask.distributed (the ``test`` extra): without it these tests fail, never skip.
Clusters here are small (2 workers x 1 thread) so the file stays well under a minute.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import distributed
import numpy as np
import polars as pl
import pytest

from benchmarks.synthetic import generate
from dedup import cluster, dedupe, io, pipeline, refine
from dedup.cli import write_outputs
from dedup.config import Config
from dedup.dedupe import dedupe_columns
from dedup.engine_dask import (
    DaskEngineError,
    cluster_dask,
    cluster_dataset,
    dedupe_dask,
    scoring,
    stages,
)
from dedup.engine_dask.scoring import waves
from dedup.engine_dask.stages import prepare_partition
from dedup.pipeline import ClusterResult
from dedup.prepare import articles_frame
from dedup.tuning import DaskTuning
from tests.conftest import DISTRACTORS, ROOT, read_ecbplus, read_seeds
from tests.test_copies import copies_600, dated_copies
from tests.test_excerpts import _lede_corpus, spanned_lede_corpus

PER_WORKER = DaskTuning().wave_pairs_per_worker

WORKER_MEMORY = "1.5GB"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 memory_limit=WORKER_MEMORY, dashboard_address=None) as local,
        distributed.Client(local) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def ecb_articles() -> list[dict[str, Any]]:
    return [{"id": r["doc_id"], "title": r["title"], "text": r["text"]} for r in read_ecbplus()]


@pytest.fixture(scope="module")
def ecb_local(ecb_articles: list[dict[str, Any]]) -> ClusterResult:
    return cluster(ecb_articles, with_stories=False)


def assert_same(got: ClusterResult, want: ClusterResult) -> None:
    assert got.assignments.equals(want.assignments)
    assert got.clusters == want.clusters
    assert got.stories == want.stories
    assert got.candidate_pairs == want.candidate_pairs
    for key in ("articles", "clusters", "largest_cluster", "copy_pairs", "event_pairs",
                "oversized_buckets"):
        assert got.stats[key] == want.stats[key], key


def test_importing_dedup_does_not_import_dask() -> None:
    code = ("import sys, dedup, dedup.engine_dask, dedup.cli; "
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'dedup\[dask\]'"):
        cluster_dask([{"id": "a", "text": "x"}])


@pytest.mark.parametrize("partitions", [1, 3])  # 2: on the multi-process cluster below
def test_ecbplus_equals_local_engine(
    client: Any, ecb_articles: list[dict[str, Any]], ecb_local: ClusterResult, partitions: int
) -> None:
    got = cluster_dask(ecb_articles, client=client, partitions=partitions, with_stories=False,
                       with_pairs=True)
    assert_same(got, ecb_local)
    assert (got.pairs == ecb_local.pairs).all() and got.pairs.shape == ecb_local.pairs.shape
    assert got.stats["partitions"] == partitions


@pytest.fixture(scope="module")
def synthetic_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClusterResult]:
    """2,000 synthetic articles (dates, sources, boilerplate templates) as one Parquet file."""
    corpus = generate(2000)
    path = tmp_path_factory.mktemp("synthetic") / "articles.parquet"
    pl.DataFrame(corpus.articles).write_parquet(path)
    local = cluster(io.read_articles([str(path)]).frame, with_stories=False)
    return path, local


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_synthetic_parquet_read_by_workers_equals_local(
    client: Any, synthetic_parquet: tuple[Path, ClusterResult], partitions: int
) -> None:
    path, local = synthetic_parquet
    got = cluster_dataset(str(path.parent / "*.parquet"), client=client, partitions=partitions,
                          with_stories=False)
    assert got.stats["partitions"] == partitions
    assert_same(got, local)


def test_pairs_scored_in_waves_equal_local(
    client: Any, synthetic_parquet: tuple[Path, ClusterResult]
) -> None:
    """Bounding the rows in flight must not change a single edge."""
    path, local = synthetic_parquet
    got = cluster_dataset(str(path.parent / "*.parquet"), client=client, partitions=3,
                          with_stories=False, tuning=DaskTuning(wave_pairs_per_worker=50))
    assert got.stats["pair_waves"] == 3
    assert_same(got, local)


def test_waves_cover_every_partition_once() -> None:
    for partitions, pairs, workers in ((1, 0, 1), (7, 10**7, 2), (100, 13_600_000, 2), (5, 10, 1)):
        planned = waves(partitions, pairs, workers, PER_WORKER)
        assert [p for lo, hi in planned for p in range(lo, hi)] == list(range(partitions))
    # 13.6M pairs over 2 workers: 14 waves wanted, so 8 partitions a wave, so 13 waves
    assert len(waves(100, 13_600_000, 2, PER_WORKER)) == 13
    assert len(waves(100, 400_000, 2, PER_WORKER)) == 1


def test_stories_and_canonicals_equal_local(client: Any) -> None:
    articles = DISTRACTORS + read_seeds()
    local = cluster(articles)
    assert local.stories
    for partitions in (2, 3):
        assert_same(cluster_dask(articles, client=client, partitions=partitions), local)


def test_jsonl_read_by_workers_maps_columns_and_rejects_duplicates(
    client: Any, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"doc_id": "x", "text": "Quake hits Lima."}\nnot json\n')
    second.write_text('{"doc_id": "y", "text": "Quake hits Lima."}\n'
                      '{"doc_id": "x", "text": "Again."}\n')
    columns = io.Columns(id="doc_id")
    paths = [str(first), str(second)]
    want = io.read_articles(paths, columns=columns, skip_bad_rows=True)
    got = cluster_dask(paths, client=client, columns=columns, skip_bad_rows=True)
    assert got.rejected == want.rejected
    assert_same(got, cluster(want.frame))
    third, fourth = tmp_path / "c.jsonl", tmp_path / "d.jsonl"
    third.write_text('{"doc_id": "x", "text": "One."}\n')
    fourth.write_text('{"doc_id": "z", "text": "Two."}\n{"doc_id": "x", "text": "Three."}\n')
    with pytest.raises(io.InputError, match=r"d.jsonl:2 \(id 'x'\): duplicate id, first seen at "
                       r".*c.jsonl:1"):
        cluster_dask([str(third), str(fourth)], client=client, columns=columns)



def test_the_workers_read_notes_what_the_local_read_notes(client: Any, tmp_path: Path) -> None:
    # Renamed and JSON-text columns are counted over every partition, as one local read does.
    src = tmp_path / "a.jsonl"
    src.write_text("".join(
        json.dumps({"id": str(k), "text": "Quake hits Lima.", "cluster_id": "x",
                    "tags": [1] if k % 2 else 1}) + "\n" for k in range(6)))
    want = io.read_articles([str(src)]).notes
    assert len(want) == 2
    got = cluster_dask(str(src), client=client, partitions=3)
    assert got.stats["notes"] == want
    # dedupe writes no cluster_id: only the JSON-text note, as its local read says.
    local = io.read_articles([str(src)], columns=dedupe_columns(None)).notes
    assert len(local) == 1 and "'tags' kept as JSON text" in local[0]
    assert dedupe_dask(str(src), client=client, partitions=3).stats["notes"] == local


# ------------------------------------------------------- a real multi-process cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes, as a user would start them."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [*dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--memory-limit", WORKER_MEMORY, "--no-dashboard", "--death-timeout", "30"],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=30) as probe:
            probe.wait_for_workers(2, timeout=30)
        yield address
    finally:
        for proc in procs:
            proc.kill()  # nothing to flush: a test cluster holds no state worth saving
        for proc in procs:
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def ecb_parquet(tmp_path_factory: pytest.TempPathFactory,
                ecb_articles: list[dict[str, Any]]) -> Path:
    path = tmp_path_factory.mktemp("ecb") / "ecb.parquet"
    pl.DataFrame(ecb_articles).write_parquet(path)
    return path


def test_scheduler_address_runs_on_separate_worker_processes(
    scheduler_address: str, ecb_parquet: Path, ecb_local: ClusterResult
) -> None:
    got = cluster_dataset(str(ecb_parquet), scheduler=scheduler_address, partitions=2,
                          with_stories=False)
    assert got.stats["workers"] == 2
    assert_same(got, ecb_local)


def test_killed_worker_completes_or_fails_clearly(
    scheduler_address: str, ecb_parquet: Path, ecb_local: ClusterResult, tmp_path: Path
) -> None:
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            result = cluster_dataset(str(ecb_parquet), scheduler=scheduler_address,
                                     partitions=4, with_stories=False)
            write_outputs(tmp_path / "out", result, "parquet", False)
            outcome["result"] = result
        except DaskEngineError as err:
            outcome["error"] = err

    with distributed.Client(scheduler_address) as admin:
        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not admin.processing():
            time.sleep(0.05)  # wait until tasks are running
        time.sleep(0.5)
        victim = sorted(admin.scheduler_info()["workers"])[0]
        with contextlib.suppress(Exception):  # the worker process dies mid-run
            admin.run(os._exit, 1, workers=[victim])
        thread.join(timeout=60)
    assert not thread.is_alive()
    if "error" in outcome:
        assert "no output was written" in str(outcome["error"])
        assert not (tmp_path / "out").exists()
    else:
        assert_same(outcome["result"], ecb_local)
        written = pl.read_parquet(tmp_path / "out" / "assignments.parquet")
        assert written.equals(ecb_local.assignments)


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(DaskEngineError, match="cannot reach the Dask scheduler"),
    ):
        cluster_dask([{"id": "a", "text": "x"}], scheduler=f"tcp://127.0.0.1:{_free_port()}")


def test_cli_with_scheduler_writes_what_the_local_engine_writes(
    scheduler_address: str, ecb_parquet: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from dedup.cli import main

    runner = CliRunner()
    base = [str(ecb_parquet), "--no-stories"]
    local = runner.invoke(main, ["cluster", *base, "-o", str(tmp_path / "local")])
    remote = runner.invoke(main, ["cluster", *base, "-o", str(tmp_path / "dask"),
                                  "--scheduler", scheduler_address, "--partitions", "3"])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert (tmp_path / "local" / "clusters.jsonl").read_bytes() == (
        tmp_path / "dask" / "clusters.jsonl").read_bytes()
    parts = sorted((tmp_path / "dask" / "assignments").glob("part-*.parquet"))
    assert len(parts) == 3
    assert pl.concat([pl.read_parquet(p) for p in parts]).equals(
        pl.read_parquet(tmp_path / "local" / "assignments.parquet"))
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()
                  if not p.name.startswith(".")) == ["assignments", "clusters.jsonl",
                                                     "manifest.json"]


def test_workers_write_partitioned_outputs_equal_to_local_files(
    client: Any, tmp_path: Path
) -> None:
    from dedup.cli import write_outputs

    articles = DISTRACTORS + read_seeds()
    local = cluster(articles)
    write_outputs(tmp_path / "local", local, "jsonl", False)
    out = tmp_path / "dask"
    (out / "assignments.jsonl").parent.mkdir()
    (out / "assignments.jsonl").write_text("stale\n")  # an earlier local run's file
    got = cluster_dask(articles, client=client, partitions=3, output=out,
                       output_format="jsonl")
    assert got.stats["clusters"] == len(local.clusters)
    assert got.stats["largest_cluster"] == 2
    for name in ("clusters.jsonl", "stories.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    parts = sorted((out / "assignments").glob("part-*.jsonl"))
    assert b"".join(p.read_bytes() for p in parts) == (
        tmp_path / "local" / "assignments.jsonl").read_bytes()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "assignments", "clusters.jsonl", "manifest.json", "stories.jsonl"]


def test_dask_knows_the_size_of_held_partitions() -> None:
    """Results Dask takes for ~100 bytes are never spilled to disk: a worker holding a
    million articles' frames was killed instead."""
    from dask.sizeof import sizeof

    frame = pl.DataFrame(generate(300).articles)
    assert sizeof(frame) >= frame["text"].str.len_bytes().sum()
    prepared = prepare_partition(frame, Config(), 5_000)
    signature_bytes = prepared.copy_sigs.nbytes
    assert sizeof(prepared) > signature_bytes + prepared.counts.body.data.nbytes


def test_600_copies_are_one_cluster_equal_to_local(client: Any) -> None:
    """#18: 300 verbatim copies of each seed are one cluster on Dask too, as locally."""
    articles = copies_600()
    local = cluster(articles)
    got = cluster_dask(articles, client=client, partitions=3)
    assert len(got.clusters) == 1 and got.clusters[0].size == 600
    assert_same(got, local)
    assert got.stats["copies_collapsed"] == local.stats["copies_collapsed"] == 598


def test_the_story_quotes_the_earliest_copy_as_in_the_local_engine(client: Any) -> None:
    articles, earliest = dated_copies()
    got = cluster_dask(articles[::-1], client=client, partitions=3)
    assert_same(got, cluster(articles[::-1]))
    assert earliest in (got.stories[0].base, *got.stories[0].copies)


def _dask_pair_scores(frame: pl.DataFrame, config: Config, cuts: list[int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's score as the Dask engine computes it: its stage tasks run in this
    process on partitions ``cuts``, each pair scored where its right document lives."""
    parts = [frame.slice(a, b - a) for a, b in itertools.pairwise(cuts)]
    count, offsets, n = len(parts), np.array(cuts, dtype=np.int64), cuts[-1]
    lines = [stages.template_lines(p, config.normalize, count) for p in parts]
    templates = [stages.templates(config.normalize, *[c[b] for c in lines])
                 for b in range(count)]
    prepared = [stages.prepare_partition(p, config, 100, *templates) for p in parts]
    groups = stages.copy_groups(*[stages.copy_keys(p) for p in prepared])
    totals = stages.add(*[stages.frequencies(p, groups, cuts[k])
                          for k, p in enumerate(prepared)])
    weighed = [stages.weigh(p, totals, stages.count_representatives(groups), config, groups,
                            cuts[k]) for k, p in enumerate(prepared)]
    low, high = np.triu_indices(n, 1)
    codes = low * n + high
    got: list[Any] = []
    for d in range(count):
        payloads = [scoring.left_rows(w, cuts[k], n, offsets, d, d + 1,
                                      codes[(low >= cuts[k]) & (low < cuts[k + 1])])[0]
                    for k, w in enumerate(weighed)]
        edges = scoring.score(weighed[d], cuts[d], n, -np.inf, 1, *payloads)[0]
        one_way = edges.src < edges.dst
        got.append(np.stack([edges.src[one_way], edges.dst[one_way], edges.score[one_way]], 1))
    table = np.concatenate(got)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    return table[:, :2].astype(np.int64), table[:, 2]


def test_batch_and_dask_give_the_same_score_for_the_same_pair() -> None:
    """The drivers share the stage functions, so each pair's score is the same float:
    batch (``pipeline.features`` + ``refine.pair_scores``) against the Dask engine's tasks
    on three partitions, with dates, sources' templates and copy groups in play."""
    frame = articles_frame(generate(240).articles)
    config = Config()
    pairs, dask_scores = _dask_pair_scores(frame, config, [0, 80, 170, 240])
    low, high = np.triu_indices(240, 1)
    assert np.array_equal(pairs, np.stack([low, high], 1))  # every pair, once
    batch_scores = refine.pair_scores(pipeline.features(frame, config), pairs)
    assert (batch_scores > config.clustering.edge_threshold).sum() > 200
    assert np.array_equal(dask_scores, batch_scores)
def test_excerpts_join_their_story_as_in_the_local_engine(client: Any) -> None:
    articles = _lede_corpus()
    local = cluster(articles, with_stories=True)
    got = cluster_dask(articles, client=client, partitions=2, with_stories=True)
    assert_same(got, local)
    cluster_of = dict(zip(got.assignments["id"], got.assignments["cluster_id"], strict=True))
    assert cluster_of["lede"] == cluster_of["full"] != cluster_of["late-lede"]


def test_a_copy_group_spans_its_members_days_as_in_the_local_engine(client: Any) -> None:
    articles = spanned_lede_corpus()
    got = cluster_dask(articles, client=client, partitions=3, with_stories=False)
    assert_same(got, cluster(articles, with_stories=False))
    cluster_of = dict(zip(got.assignments["id"], got.assignments["cluster_id"], strict=True))
    assert cluster_of["late-lede"] == cluster_of["full"]


def test_dedupe_on_dask_writes_the_local_engines_bytes(client: Any, tmp_path: Path) -> None:
    """``dedupe_dask`` over 1 and 3 partitions of a Parquet file and a JSONL file: the kept
    rows and the groups byte for byte what the local engine writes (#21)."""
    rows = []
    for k in range(60):  # 15 stories: an original, a copy, two with a word changed
        words = [f"s{k // 4}w{i}" for i in range(120)]
        if k % 4 > 1:
            words[40 + k % 4] = f"edit{k}"
        rows.append({"id": f"a{k}", "text": " ".join(words), "extra": k,
                     "published": f"2024-01-{1 + (k * 7) % 23:02d}"})
    parquet, jsonl = tmp_path / "in.parquet", tmp_path / "in.jsonl"
    pl.DataFrame(rows).write_parquet(parquet)
    jsonl.write_text("".join(io.json_line(r) for r in rows), encoding="utf-8")
    for source in (parquet, jsonl):
        local = dedupe(io.read_articles([str(source)]).frame, keep="earliest")
        assert 15 <= local.stats["kept"] < 30
        want = tmp_path / "local.jsonl", tmp_path / "local.parquet"
        local.write_kept(want[0], "jsonl")
        local.write_kept(want[1], "parquet")
        for partitions in (1, 3):
            got = dedupe_dask(str(source), keep="earliest", client=client,
                              partitions=partitions)
            got.write_kept(tmp_path / "dask.jsonl", "jsonl")
            got.write_kept(tmp_path / "dask.parquet", "parquet")
            assert (tmp_path / "dask.jsonl").read_bytes() == want[0].read_bytes()
            assert (tmp_path / "dask.parquet").read_bytes() == want[1].read_bytes()
            assert got.groups.equals(local.groups) and got.stats == local.stats


def test_a_table_without_the_id_column_is_the_local_one_line_error(client: Any,
                                                                   tmp_path: Path) -> None:
    # Even skipping bad rows: a wrong mapping is one error, not every row rejected.
    src = tmp_path / "noid.parquet"
    pl.DataFrame({"doc": ["a", "b"], "text": ["x y", "x y"]}).write_parquet(src)
    want = f"{src}: no column 'id' (columns: doc, text): map it with --id-col"
    with pytest.raises(io.InputError, match=re.escape(want)):
        io.read_articles([str(src)], skip_bad_rows=True)
    with pytest.raises(io.DedupInputError, match=re.escape(want)):
        dedupe_dask(str(src), client=client, skip_bad_rows=True)
