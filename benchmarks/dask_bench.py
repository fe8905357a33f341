"""Wall time and peak memory per worker of the Dask engine on a synthetic corpus.

    python -m benchmarks.dask_bench                          # 100k articles, 1 and 2 workers
    python -m benchmarks.dask_bench --docs 20000 --workers 1,2 --no-stories

Each worker count gets a fresh ``distributed.LocalCluster`` (1 thread per worker, so the
figures are per core), reading the same cached Parquet corpus lazily. "peak RSS / worker"
is the largest ``ru_maxrss`` (kernel high-water mark of a worker process since it started),
"transfer MiB" the bytes workers sent each other (the shuffles). ``--local`` adds the local
engine (``dedup.cluster`` on every core, as the CLI runs it) as the reference.

Every run writes its outputs as ``dedup cluster -o OUTDIR`` does (the Dask workers write
theirs; nothing is gathered into this process) to a scratch folder. "output sha1" is a
hash of the assignments (id, cluster, canonical flag, similarity), ``clusters.jsonl`` and
``stories.jsonl``; "same as first" compares it with the first run's. The outputs are
deleted after hashing.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import CACHE_DIR, RESULTS_DIR, SYNTHETIC, corpus_spec
from benchmarks.synthetic import DEFAULT_SEED
from dedup.config import Config


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sent_bytes(dask_worker: Any) -> int:
    return int(getattr(dask_worker, "transfer_outgoing_bytes_total", 0))


def corpus(docs: int, seed: int, cache_dir: Path) -> Path:
    """The synthetic corpus as Parquet: the same cached file the other benchmarks read."""
    path = corpus_spec(SYNTHETIC, docs, seed, cache_dir).parquet
    assert path is not None
    return Path(path)


def fingerprint(outdir: Path) -> str:
    """SHA-1 of what a run wrote: assignments (in input order), clusters and stories."""
    import polars as pl

    parts = sorted((outdir / "assignments").glob("part-*.parquet"))
    frame = pl.read_parquet(parts if parts else outdir / "assignments.parquet")
    digest = hashlib.sha1(
        frame.select("id", "cluster_id", "is_canonical", "similarity").write_csv().encode())
    for name in ("clusters.jsonl", "stories.jsonl"):
        if (outdir / name).exists():
            with open(outdir / name, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def run_workers(path: Path, workers: int, memory_limit: str, partitions: int | None,
                with_stories: bool, scratch: Path) -> dict[str, Any]:
    """One run on a fresh LocalCluster of ``workers`` single-threaded processes."""
    import distributed

    from dedup.engine_dask import cluster_dataset

    with (
        distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                 memory_limit=memory_limit, dashboard_address=None) as local,
        distributed.Client(local) as client,
    ):
        start = time.perf_counter()
        outdir = scratch / f"dask-{workers}"
        result = cluster_dataset(str(path), Config(), client=client, partitions=partitions,
                                 with_stories=with_stories, output=outdir)
        seconds = time.perf_counter() - start
        peaks = client.run(_peak_rss_mib)
        sent = client.run(_sent_bytes)
    digest = fingerprint(outdir)
    shutil.rmtree(outdir)
    return {
        "system": f"dask x{workers}",
        "seconds": seconds,
        "peak_worker_mib": max(peaks.values()),
        "transfer_mib": sum(sent.values()) / 2**20,
        "result": result,
        "sha1": digest,
    }


def run_local(path: Path, with_stories: bool, scratch: Path) -> dict[str, Any]:
    """The local engine on the same file, as the CLI runs it (every core), as reference.
    Peak RSS is this process's: the merge and normalize workers are not counted."""
    import polars as pl

    from dedup import cluster
    from dedup.cli import write_outputs

    frame = pl.read_parquet(path).drop("gold", "hard_negative_of")
    before = _peak_rss_mib()
    start = time.perf_counter()
    result = cluster(frame, Config(), with_stories=with_stories, workers=0)
    seconds = time.perf_counter() - start
    outdir = scratch / "local"
    write_outputs(outdir, result, "parquet", rejected_file=False)
    digest = fingerprint(outdir)
    shutil.rmtree(outdir)
    return {"system": "local", "seconds": seconds,
            "peak_worker_mib": _peak_rss_mib(), "peak_increase_mib": _peak_rss_mib() - before,
            "transfer_mib": 0.0, "result": result, "sha1": digest}


def table(rows: list[dict[str, Any]], docs: int) -> str:
    """Markdown table, one line per run."""
    stages = list(rows[0]["result"].timings)
    out = [f"synthetic corpus, {docs:,} articles",
           "| system | partitions | total s | docs/s | peak RSS / worker MiB | transfer MiB | "
           "output sha1 | same as first | " + " | ".join(f"{s} s" for s in stages) + " |",
           "|---" * (8 + len(stages)) + "|"]
    for row in rows:
        r = row["result"]
        out.append(
            f"| {row['system']} | {r.stats.get('partitions', 1)} | {row['seconds']:.1f} | "
            f"{docs / row['seconds']:,.0f} | {row['peak_worker_mib']:,.0f} | "
            f"{row['transfer_mib']:,.0f} | {row['sha1'][:12]} | "
            f"{row['sha1'] == rows[0]['sha1']} | "
            + " | ".join(f"{r.timings.get(s, 0.0):.1f}" for s in stages) + " |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """CLI: time the Dask engine for each worker count and print one table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic articles")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--partitions", type=int, default=None,
                        help="input partitions (default: one per 50,000 articles)")
    parser.add_argument("--memory-limit", default="4GB", help="memory limit per worker")
    parser.add_argument("--no-stories", action="store_true", help="skip the merge stage")
    parser.add_argument("--local", action="store_true", help="also run the local engine")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR,
                        help="where the table is written as dask-DOCS-wWORKERS.md")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for each run's outputs (default: a temporary one)")
    args = parser.parse_args(argv)
    path = corpus(args.docs, args.seed, args.cache_dir)
    rows = []
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        scratch = Path(tmp)
        if args.local:
            rows.append(run_local(path, not args.no_stories, scratch))
            print(f"local: {rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(run_workers(path, workers, args.memory_limit, args.partitions,
                                    not args.no_stories, scratch))
            print(f"{workers} workers: {rows[-1]['seconds']:.1f} s", file=sys.stderr,
                  flush=True)
    text = table(rows, args.docs)
    print(text)
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        out = args.out_dir / f"dask-{args.docs}-w{args.workers.replace(',', '_')}.md"
        tmp = out.with_suffix(".md.tmp")
        tmp.write_text(f"`python -m benchmarks.dask_bench {' '.join(argv or sys.argv[1:])}`"
                       f"\n\n{text}\n")
        tmp.replace(out)
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
