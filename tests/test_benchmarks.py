"""Smoke tests for benchmarks/: the generator's ground truth, the baselines and the runner.

Kept small (a few hundred articles) so each test takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run as bench_run
from benchmarks import scale as bench_scale
from benchmarks.corpora import ecbplus_dir, load_ecbplus_dev
from benchmarks.measure import Measurement, RssSampler, big_event_recall
from benchmarks.synthetic import (
    BIG_EVENT,
    TAIL_SIZES,
    Generator,
    SyntheticCorpus,
    generate,
    iter_synthetic,
)
from benchmarks.synthetic_files import read_parquet, write_parquet
from benchmarks.systems import (
    SYSTEMS,
    pick,
    rensa_bands,
    run_datasketch,
    run_tfidf,
    word_shingles,
)

CHEAP = ["datasketch", "tfidf-0.30", "rensa"]
KINDS = {"number", "date", "name", "sentence"}


@pytest.fixture(scope="module")
def corpus_600() -> SyntheticCorpus:
    return generate(600, seed=7)


# --------------------------------------------------------------------------- generator


def test_generator_is_deterministic(corpus_600: SyntheticCorpus) -> None:
    again = generate(600, seed=7)
    assert again.articles == corpus_600.articles
    assert again.gold == corpus_600.gold
    assert again.differences == corpus_600.differences
    assert again.hard_negatives == corpus_600.hard_negatives
    other = generate(600, seed=8)
    assert [a["id"] for a in other.articles] != [a["id"] for a in corpus_600.articles]


def test_generator_makes_exactly_n_docs_in_bounded_chunks() -> None:
    chunks = list(iter_synthetic(1234, seed=3, chunk_size=100))
    assert all(len(c.articles) <= 100 for c in chunks)
    assert sum(len(c.articles) for c in chunks) == 1234
    streamed = {a["id"]: g for c in chunks for a, g in zip(c.articles, c.gold, strict=True)}
    whole = generate(1234, seed=3)  # another chunk size: same articles, other order
    assert streamed == dict(zip((a["id"] for a in whole.articles), whole.gold, strict=True))


def test_articles_have_the_shape_dedup_takes(corpus_600: SyntheticCorpus) -> None:
    ids = [a["id"] for a in corpus_600.articles]
    assert len(set(ids)) == len(ids)
    for a in corpus_600.articles:
        assert set(a) == {"id", "title", "text", "published", "source"}
        assert a["text"].strip() and a["title"].strip() and a["source"]
        assert a["published"] is not None


def test_cluster_sizes_vary(corpus_600: SyntheticCorpus) -> None:
    sizes = Counter(Counter(corpus_600.gold).values())
    singletons = sizes[1]
    small = sum(n for size, n in sizes.items() if 2 <= size <= 10)
    large = sum(n for size, n in sizes.items() if size > 10)
    assert singletons > 50 and small > 50 and large >= 1


def test_hard_negatives_are_separate_events_with_shared_names(corpus_600: SyntheticCorpus) -> None:
    assert corpus_600.hard_negatives, "expected some hard negatives in 600 articles"
    by_gold: dict[str, list[str]] = {}
    for a, g in zip(corpus_600.articles, corpus_600.gold, strict=True):
        by_gold.setdefault(g, []).append(a["text"])
    shared = 0
    for label, look_alike in corpus_600.hard_negatives.items():
        assert label != look_alike
        one, other = by_gold[label][0], by_gold[look_alike][0]
        capitalised = {w for w in one.split() if w[:1].isupper()}
        shared += bool(capitalised & {w for w in other.split() if w[:1].isupper()})
    assert shared >= len(corpus_600.hard_negatives) // 2


def test_differences_are_consistent_with_gold(corpus_600: SyntheticCorpus) -> None:
    gold_of = {a["id"]: g for a, g in zip(corpus_600.articles, corpus_600.gold, strict=True)}
    text_of = {a["id"]: a["text"] for a in corpus_600.articles}
    assert corpus_600.differences
    assert {d["kind"] for d in corpus_600.differences} == KINDS
    for d in corpus_600.differences:
        assert d["kind"] in KINDS and d["context"]
        assert len(d["variants"]) >= 2, d
        ids = [i for members in d["variants"].values() for i in members]
        assert len(ids) == len(set(ids)), "an article carries one variant"
        assert {gold_of[i] for i in ids} == {d["gold"]}
        if d["kind"] == "sentence":
            assert set(d["variants"]) == {"present", "absent"}
        else:
            for value, members in d["variants"].items():
                assert all(value in text_of[i] for i in members), (value, d)


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "syn.parquet", 250, seed=11, chunk_size=64)
    loaded = read_parquet(path, with_differences=True)
    original = generate(250, seed=11)
    assert sorted(loaded.gold) == sorted(original.gold)
    assert {a["id"] for a in loaded.articles} == {a["id"] for a in original.articles}
    assert sorted(map(json.dumps, loaded.differences)) == sorted(
        map(json.dumps, original.differences)
    )


# --------------------------------------------------------------------------- baselines


def test_baselines_link_copies_and_not_strangers() -> None:
    story = " ".join(f"word{i}" for i in range(60))
    articles: list[dict[str, Any]] = [
        {"id": "a", "text": story, "title": "", "published": None, "source": "x"},
        {"id": "b", "text": "Share.\n" + story, "title": "", "published": None, "source": "y"},
        {"id": "c", "text": " ".join(f"other{i}" for i in range(60)), "title": ""},
    ]
    for run in (run_datasketch, run_tfidf):
        labels = run(articles).labels
        assert labels[0] == labels[1] != labels[2]


def test_word_shingles() -> None:
    assert word_shingles("A b c d e F") == ["a b c d e", "b c d e f"]
    assert word_shingles("too short") == ["too short"]
    assert rensa_bands() * (128 // rensa_bands()) == 128


def test_unknown_system_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown system"):
        pick(["datasketch", "nope"])


# --------------------------------------------------------------------------- runner


def _check_rows(report: bench_run.Report, systems: list[str]) -> None:
    assert [r.system for r in report.rows] == systems
    table = bench_run.format_table(report)
    for r in report.rows:
        assert r.system in table
        if r.system == "rensa" and r.status.startswith("not available"):
            continue
        assert r.status == "ok", r.status
        for value in (r.precision, r.recall, r.f1, r.bcubed_f1):
            assert value is not None and 0.0 <= value <= 1.0
        assert r.ari is not None and -1.0 <= r.ari <= 1.0
        assert r.candidate_pairs is not None and r.candidate_pairs >= 0
        assert r.seconds is not None and r.seconds > 0
        assert r.docs_per_second is not None and r.docs_per_second > 0
        assert r.timings and all(v >= 0 for v in r.timings.values())
        assert r.peak_rss_increase_mib is not None and r.peak_rss_increase_mib >= 0


def test_runner_on_synthetic_cheap_baselines(tmp_path: Path) -> None:
    report = bench_run.run_benchmark("synthetic", 300, CHEAP, isolate=False, quiet=True)
    assert report.docs == 300
    _check_rows(report, CHEAP)
    md, js = bench_run.write_report(report, tmp_path)
    assert md.read_text().count("\n| ") == len(CHEAP) + 1  # header row + one per system
    assert [r["system"] for r in json.loads(js.read_text())["rows"]] == CHEAP


def test_runner_on_ecbplus_dev_cheap_baselines() -> None:
    assert (ecbplus_dir() / "articles.jsonl").exists()
    report = bench_run.run_benchmark("ecbplus-dev", None, CHEAP, isolate=False, quiet=True)
    assert report.docs == len(load_ecbplus_dev().articles) == 509
    assert report.gold_clusters == 44
    _check_rows(report, CHEAP)
    rows = {r.system: r for r in report.rows}
    # The reference point in the corpus README: TF-IDF single link at 0.30, ARI about 0.78.
    assert rows["tfidf-0.30"].ari == pytest.approx(0.78, abs=0.03)
    # 5-gram MinHash finds few rewrites: precise, low recall.
    datasketch = rows["datasketch"]
    assert datasketch.precision is not None and datasketch.recall is not None
    assert datasketch.precision > 0.9 and datasketch.recall < 0.2


def test_runner_isolates_each_system_in_a_fresh_process(tmp_path: Path) -> None:
    report = bench_run.run_benchmark(
        "synthetic", 200, ["datasketch"], isolate=True, cache_dir=tmp_path, quiet=True
    )
    _check_rows(report, ["datasketch"])
    assert report.rows[0].memory_method.startswith("fresh process")
    assert list(tmp_path.glob("synthetic-200-*.parquet"))


def test_tfidf_is_skipped_visibly_above_its_limit() -> None:
    report = bench_run.run_benchmark(
        "synthetic", 120, ["tfidf-0.30"], isolate=False, tfidf_max_docs=100, quiet=True
    )
    assert report.rows[0].status.startswith("skipped: all-pairs")
    assert "skipped: all-pairs" in bench_run.format_table(report)


def test_cli_prints_one_table_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_run.main(
        ["--corpus", "synthetic", "--docs", "150", "--systems", "datasketch,tfidf-0.30",
         "--in-process", "--quiet", "--out-dir", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("| system |") == 1
    assert (tmp_path / "synthetic-150.md").exists()
    assert (tmp_path / "synthetic-150.json").exists()


def test_scale_writes_table_json_and_plot(tmp_path: Path) -> None:
    rows = bench_scale.main(
        ["--sizes", "120,240", "--systems", "datasketch", "--out-dir", str(tmp_path)]
    )
    assert [(r.docs, r.system, r.status) for r in rows] == [
        (120, "datasketch", "ok"),
        (240, "datasketch", "ok"),
    ]
    assert (tmp_path / "scale.png").stat().st_size > 1000
    assert "| 240 | datasketch | ok |" in (tmp_path / "scale.md").read_text()
    payload = json.loads((tmp_path / "scale.json").read_text())
    assert len(payload["rows"]) == 2


def test_plot_tolerates_failed_rows(tmp_path: Path) -> None:
    rows = [Measurement("dedup", "", "error: boom", docs=10)]
    assert bench_scale.plot(rows, tmp_path / "p.png").exists()


# --------------------------------------------------------------------------- dedup


def test_dedup_runs_in_the_benchmark() -> None:
    from dedup import Config, cluster  # noqa: F401 - the API under test must import plainly

    assert "dedup" in SYSTEMS
    report = bench_run.run_benchmark("synthetic", 300, ["dedup"], isolate=False, quiet=True)
    _check_rows(report, ["dedup"])


def test_dask_bench_runs_and_writes_its_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import dask_bench

    dask_bench.main(["--docs", "300", "--workers", "1", "--partitions", "2", "--local",
                     "--no-stories", "--cache-dir", str(tmp_path), "--out-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| local") or
            line.startswith("| dask x1")]
    assert len(rows) == 2
    assert rows[1].split("|")[8].strip() == "True"  # same outputs as the local engine
    assert (tmp_path / "dask-300-w1.md").read_text().count("| dask x1 |") == 1


def test_pair_spread_counts_rows_shipped_per_destination() -> None:
    import numpy as np

    from benchmarks.pair_spread import spread

    # 4 articles in partitions {0, 1} and {2, 3}; each pair is scored in its higher
    # article's partition and the lower article's row is shipped there once.
    pairs = np.array([[0, 1], [0, 3], [1, 2], [2, 3], [0, 2]])
    shipped, remote, crossing = spread(pairs, n=4, partitions=2)
    # (low, destination): (0,0) (0,1) (1,1) (2,1), (0,1) again -> 4 rows for 4 articles.
    assert shipped == 1.0
    assert remote == 0.5  # (0,1) and (1,1) leave their partition
    assert crossing == 3 / 5
    assert spread(pairs, n=4, partitions=1)[1:] == (0.0, 0.0)


def test_rss_sampler_counts_a_child_started_after_it() -> None:
    """Children are listed every ``rescan`` seconds, not at every sample: a worker that
    starts later must still be counted."""
    grow = "import time; block = bytearray(200 * 2**20); time.sleep(1.5)"
    with RssSampler(rescan=0.1) as sampler:
        time.sleep(0.2)
        child = subprocess.Popen([sys.executable, "-c", grow])
        child.wait(timeout=60)
    assert sampler.peak - sampler.baseline > 150 * 2**20


def test_no_tail_reproduces_generator_version_2() -> None:
    """``tail=False`` writes the corpus of generator version 2 (commit 7104bde) exactly, so
    old and new figures can be compared; the digest was taken from that commit."""
    c = generate(600, seed=7, tail=False)
    blob = json.dumps([c.articles, c.gold, c.differences], default=str, sort_keys=True)
    assert hashlib.sha256(blob.encode()).hexdigest()[:16] == "1db8c48bb8f6db44"


def test_tail_draws_rare_big_events_and_mostly_small_stories() -> None:
    gen = Generator(13)
    sizes = [gen.cluster_size() for _ in range(20_000)]
    big = [s for s in sizes if s >= BIG_EVENT]
    assert 5 <= len(big) <= 50  # about one story in 1,000
    assert min(big) >= TAIL_SIZES[0] and max(big) <= TAIL_SIZES[1]
    assert sum(s <= 5 for s in sizes) / len(sizes) > 0.85
    flat = Generator(13, tail=False)
    assert max(flat.cluster_size() for _ in range(20_000)) <= 40


def test_big_event_recall_is_the_worst_big_events_pair_recall() -> None:
    gold = ["a"] * 4 + ["b"] * 3 + ["c"]
    predicted = ["x", "x", "x", "y", "z", "z", "z", "w"]
    assert big_event_recall(gold, predicted, size=3) == (2, 0.5)  # a: 3 of 6 pairs; b: all
    assert big_event_recall(gold, predicted, size=5) == (0, None)


def test_index_quality_compares_the_index_with_the_batch(capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """``benchmarks.index_quality`` prints one table; on a small feed the index agrees
    with the batch (ARI near 1), and the row names what it measures."""
    from benchmarks import index_quality

    index_quality.main(["--docs", "300", "--batch", "50"])
    cells = [[c.strip() for c in line.strip("|").split("|")]
             for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {label: value for label, value in cells}
    assert rows["articles"] == "300"
    assert float(rows["ARI index vs batch"]) >= 0.9
    assert 0.0 < float(rows["B-cubed F1 index vs batch"]) <= 1.0


def test_index_tail_prints_the_cache_at_both_sizes(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    from benchmarks import index_tail

    index_tail.main(["--copies", "150", "--versions", "20"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[4].strip() for r in rows][:2] == ["1", "1"]  # the copies: one cluster
    assert [r[7].strip() for r in rows] == ["-", "same", "-", "same"]
