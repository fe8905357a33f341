"""Worker processes change speed, never results."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from dedup import Config, cli, cluster, io, pipeline, refine
from dedup.cli import main
from dedup.merge import story_to_dict
from dedup.parallel import Background, WorkerPool, guided_size, resolve_workers, thread_map
from dedup.tuning import BatchTuning


def _recorded(sent: list[Any], tasks: Iterable[Any]) -> Iterator[Any]:
    """``tasks``, each appended to ``sent`` as it is handed out."""
    for task in tasks:
        sent.append(task)
        yield task


def _square(x: int) -> int:
    return x * x


@pytest.fixture(scope="module")
def articles(ecbplus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": r["doc_id"], "title": r["title"], "text": r["text"]} for r in ecbplus]


def test_thread_map_keeps_task_order_and_bounds_tasks_in_flight() -> None:
    submitted: list[int] = []

    def tasks() -> Iterator[int]:
        for x in range(30):
            submitted.append(x)
            yield x

    results = thread_map(_square, tasks(), 3, ahead=2)
    first = next(results)
    assert first == 0 and len(submitted) <= 3 * 2 + 1  # not all 30 at once
    assert [first, *results] == [x * x for x in range(30)]
    assert list(thread_map(_square, range(5), 1)) == [0, 1, 4, 9, 16]


def test_pool_map_keeps_task_order_with_more_tasks_than_in_flight() -> None:
    with WorkerPool(2) as pool:
        assert list(pool.map(_square, range(40), ahead=1)) == [x * x for x in range(40)]
        assert list(pool.map(_square, [], ahead=1)) == []


def test_warm_pool_starts_processes_that_map_then_uses() -> None:
    with WorkerPool(2) as pool:
        pool.warm(pipeline.ready)
        started = pool._pool
        assert started is not None
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
        assert pool._pool is started  # the same processes, not a second pool
    with WorkerPool(1) as inline:
        inline.warm(pipeline.ready)
        assert inline._pool is None  # one worker runs inline: nothing to start


def test_resolve_workers() -> None:
    assert resolve_workers(3) == 3
    assert resolve_workers(0) >= 1
    assert resolve_workers(None) == resolve_workers(0)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        resolve_workers(-1)


def test_two_workers_give_byte_identical_results(
    articles: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small tasks so ecbplus-dev's 509 articles span several normalize, linkage and merge
    # tasks; linkage tasks are counted to show they ran on the workers.
    # Workers restart for the merge (stop_idle_workers_from=0).
    tuning = BatchTuning(chunk=100, link_task_articles=40, merge_task_articles=60,
                         stop_idle_workers_from=0)
    sent: list[object] = []
    original_map = WorkerPool.map

    def counting_map(self: WorkerPool, func: Any, tasks: Any, **kw: Any) -> Any:
        if func is pipeline.link_task and self.workers > 1:
            tasks = _recorded(sent, tasks)
        return original_map(self, func, tasks, **kw)

    monkeypatch.setattr(WorkerPool, "map", counting_map)
    runs = []
    for workers in (1, 2):
        result = cluster(articles, Config(), workers=workers, tuning=tuning)
        runs.append((
            result.assignments.write_ndjson(),
            [json.dumps(story_to_dict(s), sort_keys=True) for s in result.stories],
        ))
    assert len(runs[0][1]) > 1
    assert len(sent) > 1
    assert runs[0] == runs[1]


def test_pairs_scored_on_the_workers_give_the_scores_of_one_process(
    articles: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [pipeline.prepare(a["text"], a["title"] or "", frozenset()).terms for a in articles]
    features = dataclasses.replace(refine.build_features(docs, Config().refine),
                                   salient=refine.Salient.empty())
    rng = np.random.default_rng(4)
    pairs = np.unique(np.sort(rng.integers(0, len(articles), (3000, 2)), axis=1), axis=0)
    sent: list[object] = []
    original_map = WorkerPool.map

    def counting_map(self: WorkerPool, func: Any, tasks: Any, **kw: Any) -> Any:
        tasks = _recorded(sent, tasks)
        return original_map(self, func, tasks, **kw)

    monkeypatch.setattr(WorkerPool, "map", counting_map)
    with WorkerPool(2) as pool:
        on_workers = pipeline.pair_scores(features, pairs, pool, task_pairs=500)
    assert len(sent) == -(-len(pairs) // 500)
    np.testing.assert_array_equal(on_workers, refine.pair_scores(features, pairs))
    assert (on_workers > 0).sum() > 100


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def test_background_tasks_run_in_order_and_stop_keeps_what_finished() -> None:
    with WorkerPool(2) as pool:
        background = Background(pool, _square, range(6))
        background._thread.join()
        assert background.stop() == [0, 1, 4, 9, 16, 25]
        # A failing task ends the run quietly: the caller computes the rest itself.
        failing = Background(pool, _fail_on_three, range(6))
        failing._thread.join()
        assert failing.stop() == [0, 1, 4]
        # Stopped at once: nothing, or a prefix of the results.
        early = Background(pool, _square, range(1000))
        got = early.stop()
        assert got == [x * x for x in range(len(got))]
    with pytest.raises(RuntimeError, match="worker processes"):
        WorkerPool(1).submit(_square, 2)


def test_shutting_the_pool_down_stops_its_background_run() -> None:
    """A run that fails before the merge leaves no background run restarting processes."""
    pool = WorkerPool(2)
    background = Background(pool, _square, range(10_000))
    pool.shutdown()
    background._thread.join(timeout=60)
    assert not background._thread.is_alive()
    assert pool._pool is None


@pytest.mark.parametrize("finish", [True, False])
def test_texts_cleaned_ahead_give_the_same_stories(
    articles: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, finish: bool
) -> None:
    """However many texts a worker cleaned ahead of the merge (all, or none), the stories
    are the one-process stories."""
    tuning = BatchTuning(chunk=100, text_task_articles=50, merge_task_articles=60)
    original_stop = Background.stop
    taken: list[int] = []

    def stop(self: Background[Any, Any]) -> list[Any]:
        if finish:
            self._thread.join()
        results = original_stop(self)
        if not finish:
            results = []  # as if the merge came before any task finished
        taken.append(sum(len(part) for part in results))
        return results

    monkeypatch.setattr(Background, "stop", stop)
    runs = []
    for workers in (1, 2):
        result = cluster(articles, Config(), workers=workers, tuning=tuning)
        runs.append((result.assignments.write_ndjson(),
                     [json.dumps(story_to_dict(s), sort_keys=True) for s in result.stories]))
    assert taken == [len(articles) if finish else 0]
    assert runs[0] == runs[1]


def test_streamed_stories_equal_returned_stories(articles: list[dict[str, Any]]) -> None:
    streamed: list[str] = []
    kept = cluster(articles[:120], Config())
    result = cluster(articles[:120], Config(),
                     on_story=lambda s: streamed.append(story_to_dict(s)["cluster_id"]))
    assert result.stories == []
    assert streamed == [s.cluster_id for s in kept.stories] == sorted(streamed)
    assert result.assignments.equals(kept.assignments)


def test_story_lines_are_the_stories_jsonl_lines(
    articles: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = cluster(articles[:200], Config())
    chunks: list[str] = []
    result = cluster(articles[:200], Config(), workers=2, on_story_lines=chunks.append,
                     tuning=BatchTuning(merge_task_articles=40))  # several tasks, two workers
    assert len(chunks) > 1 and all(c.endswith("\n") for c in chunks)
    assert "".join(chunks) == "".join(io.json_line(story_to_dict(s)) for s in kept.stories)
    assert result.stories == []
    assert result.assignments.equals(kept.assignments)  # the same canonical articles
    with pytest.raises(ValueError, match="not both"):
        cluster(articles[:5], Config(), on_story=print, on_story_lines=print)


def test_cli_workers_option_gives_identical_files(
    articles: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several chunks and merge tasks: the CLI's ``cluster`` with smaller tasks.
    monkeypatch.setattr(cli.batch, "cluster", functools.partial(
        cluster, tuning=BatchTuning(chunk=150, merge_task_articles=100)))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(a, default=str) + "\n" for a in articles[:300]))
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        result = CliRunner().invoke(main, ["cluster", str(source), "-o", str(out),
                                           "-j", workers, "--output-format", "jsonl"])
        assert result.exit_code == 0, result.output
        outputs.append([(out / name).read_bytes()
                        for name in ("assignments.jsonl", "clusters.jsonl", "stories.jsonl")])
    assert outputs[0] == outputs[1]
    assert outputs[0][2].count(b"\n") == outputs[0][1].count(b"\n")


def _pool_inside_daemon(queue: Any) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with WorkerPool(2) as pool:
            queue.put((list(pool.map(_square, range(5))), [str(w.message) for w in caught]))


def test_daemonic_process_runs_inline_with_a_warning() -> None:
    import multiprocessing as mp

    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_pool_inside_daemon, args=(queue,), daemon=True)
    process.start()
    values, warned = queue.get(timeout=60)
    process.join(timeout=60)
    assert values == [0, 1, 4, 9, 16]
    assert any("daemonic" in w for w in warned)


def _die(x: int) -> int:
    import os

    if x == 3:
        os._exit(1)  # as the kernel's OOM killer would end it
    return x


def test_a_dead_worker_is_one_clear_error() -> None:
    from dedup.parallel import WorkerDied

    with WorkerPool(2) as pool, pytest.raises(WorkerDied, match="worker process died"):
        list(pool.map(_die, range(8)))


def test_a_script_without_a_main_guard_is_told_about_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text("from dedup.parallel import WorkerPool\n"
                      "print(list(WorkerPool(2).map(abs, range(4))))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "WorkerDied" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr.splitlines()[-1]


@pytest.mark.parametrize(("total", "largest", "workers"),
                         [(100_000, 5_000, 2), (7_000, 5_000, 4), (3, 5_000, 2), (10, 1, 8)])
def test_guided_sizes_cover_everything_and_shrink_at_the_end(
    total: int, largest: int, workers: int
) -> None:
    sizes, left = [], total
    while left:
        sizes.append(guided_size(left, largest, workers))
        left -= sizes[-1]
    assert sum(sizes) == total
    assert all(1 <= s <= largest for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    if total >= 4 * workers * largest:
        assert sizes[0] == largest and sizes[-2] < largest // 2


def _gc_settings(_: int) -> tuple[int, int]:
    import gc

    return gc.get_threshold()[0], gc.get_freeze_count()


def test_worker_processes_collect_garbage_less_often() -> None:
    import gc

    from dedup import parallel

    before = gc.get_threshold()
    with WorkerPool(2) as pool:
        settings = list(pool.map(_gc_settings, range(4)))
    assert all(threshold == parallel._WORKER_GC_THRESHOLD and frozen > 10_000
               for threshold, frozen in settings)
    assert gc.get_threshold() == before  # the caller's process is left as it was
