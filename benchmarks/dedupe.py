"""Near-duplicate removal head to head (#21): dedup, datasketch, rensa and an exact hash.

Gold: the synthetic feed's copy groups (``synthetic.copy_group``): a story's original, its
verbatim syndication under other outlets' furniture and its light edits are one group,
every rewrite or lede its own; the heavy tail of mass syndication is included. Metric:
precision, recall and F1 of copy pairs (two articles in one predicted group, against the
gold pairs), from ``dedup.evaluate.score``.

Each system runs in a fresh spawned process (``--in-process`` for tests), in the same
run, so ratios compare like with like on a noisy machine:

- ``dedup``: ``dedup dedupe`` end to end: read the Parquet file in batches, dedupe on
  every core, write the kept rows and the groups (Parquet);
- ``datasketch``: the ``MinHashLSH`` recipe: word 5-gram MinHash (128 perms) per text,
  LSH at the threshold, connected components of the query results;
- ``rensa``: ``RMinHash.from_token_sets`` on the same shingles, ``RMinHashLSH`` at the
  threshold (bands x rows = 128), connected components;
- ``exact-hash``: BLAKE2b of each text, lower-cased and whitespace-collapsed.

The baselines are timed from texts already in memory (their signatures and LSH alone);
dedup's time includes reading and writing. Peak RSS is the fresh process's (and its
workers') high-water mark, whatever it held.

    flock /tmp/dedup-bench.lock python -m benchmarks.dedupe --docs 100000
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.measure import RssSampler, describe_machine
from benchmarks.synthetic import DEFAULT_SEED, GENERATOR_VERSION, iter_synthetic
from benchmarks.systems import NUM_PERM, components, rensa_bands, word_shingles

RESULTS_DIR = Path(__file__).parent / "results"
CACHE_DIR = RESULTS_DIR / "cache"
SYSTEM_NAMES = ("dedup", "datasketch", "rensa", "exact-hash")
THRESHOLD = 0.8
MIB = 1024 * 1024
DESCRIPTIONS = {
    "dedup": "dedup dedupe end to end (Parquet read in batches, every core, write kept + "
             "groups)",
    "datasketch": "datasketch MinHash 5-gram, 128 perms, MinHashLSH, connected components",
    "rensa": "rensa RMinHash 5-gram, 128 perms, RMinHashLSH, connected components",
    "exact-hash": "BLAKE2b of the lower-cased, whitespace-collapsed text",
}


@dataclass
class Row:
    """One system's line of the table."""

    system: str
    status: str = "ok"
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    groups: int | None = None
    seconds: float | None = None
    peak_rss_mib: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def corpus_path(docs: int, seed: int = DEFAULT_SEED, cache_dir: Path = CACHE_DIR) -> Path:
    """The synthetic corpus with its gold ``copy_group`` column, written once (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = cache_dir / f"dedupe-{docs}-seed{seed}-v{GENERATOR_VERSION}.parquet"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.string()), ("title", pa.string()),
                        ("text", pa.large_string()), ("published", pa.timestamp("us")),
                        ("source", pa.string()), ("copy_group", pa.string())])
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for chunk in iter_synthetic(docs, seed):
            cols: dict[str, list[Any]] = {k: [a[k] for a in chunk.articles]
                                          for k in ("id", "title", "text", "published",
                                                    "source")}
            cols["copy_group"] = chunk.copy_groups
            writer.write_table(pa.table(cols, schema=schema))
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- systems


def run_dedup(path: Path, threshold: float) -> tuple[np.ndarray, dict[str, float]]:
    """``dedup dedupe`` as the CLI runs it on a Parquet file: read it in batches while
    signing them, dedupe on every core, write (reading the file again)."""
    from dedup import io
    from dedup.dedupe import dedupe, dedupe_parquet

    result = dedupe_parquet([str(path)], threshold=threshold, workers=0)
    if result is None:  # pragma: no cover - the benchmark corpus is a clean table
        result = dedupe(io.read_articles([str(path)]).frame, threshold=threshold, workers=0)
    timings = {"read+signatures": result.timings["signatures"],
               **{k: v for k, v in result.timings.items() if k not in ("signatures", "read")}}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dedupe-bench-") as folder:
        result.write_kept(Path(folder) / "kept.parquet", "parquet")
        io.write_frame(Path(folder) / "groups.parquet", result.groups, "parquet")
    timings["write"] = time.perf_counter() - t0
    labels = result.groups["copy_group"].to_numpy()
    return labels, timings


def run_datasketch(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, dict[str, float]]:
    """The MinHashLSH recipe: signatures, LSH insert + query, connected components."""
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    signatures = []
    for text in texts:
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in word_shingles(text)])
        signatures.append(m)
    t1 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i, m in enumerate(signatures):
        lsh.insert(i, m, check_duplication=False)
    labels = _components(len(texts), (lsh.query(m) for m in signatures))
    return labels, {"signatures": t1 - t0, "lsh+components": time.perf_counter() - t1}


def run_rensa(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, dict[str, float]]:
    """rensa: ``RMinHash.from_token_sets``, ``RMinHashLSH`` insert + query, components."""
    from rensa import RMinHash, RMinHashLSH

    t0 = time.perf_counter()
    signatures = RMinHash.from_token_sets((word_shingles(t) for t in texts), NUM_PERM, 42)
    t1 = time.perf_counter()
    lsh = RMinHashLSH(threshold, NUM_PERM, rensa_bands(threshold, NUM_PERM))
    lsh.insert_many(signatures)
    found = lsh.query_all(signatures)
    t2 = time.perf_counter()
    labels = _components(len(texts), found)
    return labels, {"signatures": t1 - t0, "lsh": t2 - t1,
                    "components": time.perf_counter() - t2}


def run_exact(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, dict[str, float]]:
    """Exact duplicates only: a hash of each lower-cased, whitespace-collapsed text."""
    t0 = time.perf_counter()
    keys = [hashlib.blake2b(" ".join(t.lower().split()).encode(), digest_size=16).digest()
            for t in texts]
    labels = np.unique(np.array(keys, dtype=object), return_inverse=True)[1]
    return labels, {"hash": time.perf_counter() - t0}


def _components(n: int, neighbours: Any) -> np.ndarray:
    left: list[int] = []
    right: list[int] = []
    for i, found in enumerate(neighbours):
        for j in found:
            if j != i:
                left.append(i)
                right.append(int(j))
    return components(n, np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64))


BASELINES: dict[str, Callable[[Sequence[str], float], tuple[np.ndarray, dict[str, float]]]] = {
    "datasketch": run_datasketch,
    "rensa": run_rensa,
    "exact-hash": run_exact,
}


# --------------------------------------------------------------------------- measuring


def measure(system: str, path: Path, threshold: float) -> Row:
    """Run one system on the corpus at ``path`` in this process and score it."""
    from dedup.evaluate import score

    gold = pl.read_parquet(path, columns=["copy_group"])["copy_group"].to_list()
    texts = None if system == "dedup" else pl.read_parquet(path, columns=["text"])["text"]
    text_list = texts.to_list() if texts is not None else []
    del texts
    try:
        with RssSampler() as sampler:
            t0 = time.perf_counter()
            if system == "dedup":
                labels, timings = run_dedup(path, threshold)
            else:
                labels, timings = BASELINES[system](text_list, threshold)
            seconds = time.perf_counter() - t0
    except ImportError as exc:
        return Row(system, status=f"not available: {exc}")
    peak = max(sampler.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    s = score(gold, labels.tolist())
    return Row(system, "ok", s.precision, s.recall, s.f1, len(set(labels.tolist())), seconds,
               peak / MIB, {k: float(v) for k, v in timings.items()})


def _child(system: str, path: str, threshold: float, conn: Any) -> None:
    try:
        conn.send(asdict(measure(system, Path(path), threshold)))
    except BaseException as exc:  # the parent must get an answer, whatever happened
        conn.send(asdict(Row(system, status=f"error: {type(exc).__name__}: {exc}")))
    finally:
        conn.close()


def measure_fresh(system: str, path: Path, threshold: float, timeout: float | None) -> Row:
    """``measure`` in a fresh spawned process: nothing another system left behind counts."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(system, str(path), threshold, child))
    proc.start()
    child.close()
    if parent.poll(timeout):
        try:
            row = Row(**parent.recv())
        except EOFError:
            row = Row(system, status="error: process died")
    else:
        proc.kill()
        row = Row(system, status=f"error: timed out after {timeout} s")
    proc.join()
    return row


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_table(rows: Sequence[Row], docs: int, threshold: float) -> str:
    """The one Markdown table: quality of copy pairs, time, memory, ratio to dedup."""
    base = next((r.seconds for r in rows if r.system == "dedup" and r.seconds), None)
    machine = describe_machine()
    lines = [
        f"Near-duplicate removal, synthetic corpus of {docs:,} articles (gold copy groups: "
        f"original + syndication + light edits), threshold {threshold}. Python "
        f"{machine['python']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB; each "
        f"system in a fresh process. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| system | status | P | R | F1 | groups | seconds by stage | total s | x dedup time "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r.timings.items()) or "-"
        ratio = (f"{r.seconds / base:.1f}" if base and r.seconds else "-")
        lines.append(
            f"| {r.system} | {r.status} | {_num(r.precision, '.3f')} | {_num(r.recall, '.3f')} "
            f"| {_num(r.f1, '.3f')} | {_num(r.groups, ',')} | {stages} "
            f"| {_num(r.seconds, '.2f')} | {ratio} | {_num(r.peak_rss_mib, ',.0f')} |"
        )
    lines += ["", *(f"- {name}: {DESCRIPTIONS[name]}" for name in SYSTEM_NAMES
                    if any(r.system == name for r in rows))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Row]:
    """CLI: run the systems, print the table, write it to results/dedupe-DOCS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedupe",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--systems", default=",".join(SYSTEM_NAMES),
                        help=f"comma-separated, from {', '.join(SYSTEM_NAMES)}")
    parser.add_argument("--in-process", action="store_true",
                        help="run every system in this process (tests; memory less exact)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per system")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in SYSTEM_NAMES]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; choose from {list(SYSTEM_NAMES)}")
    path = corpus_path(args.docs, args.seed, args.cache_dir)
    rows = []
    for system in systems:
        print(f"running {system} ...", file=sys.stderr, flush=True)
        rows.append(measure(system, path, args.threshold) if args.in_process
                    else measure_fresh(system, path, args.threshold, args.timeout))
    table = format_table(rows, args.docs, args.threshold)
    print(table, end="")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"dedupe-{args.docs}.md").write_text(table, encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
