"""What tying excerpts to their story costs on the tail: thousands of teasers of one story.

    python -m benchmarks.excerpts_tail                  # 2,000 and 10,000 teasers
    python -m benchmarks.excerpts_tail --teasers 500
    python -m benchmarks.excerpts_tail --stock 8000,20000   # one stock opening

``--stock N`` times ``excerpts.edges`` and ``excerpts.regroup`` alone on N short and N
long articles that all open with the same words (a stock first sentence), the long ones
published on the excerpts' day ("near") or a year later ("far"): the worst case of the
rule, since every excerpt may read every opener.

Each teaser is seed 000's headline and a line of its own (distinct texts: identical ones
are one copy group, one node). Every (teasers, rule) pair runs in a fresh process, so the
peak RSS is that run's own; the rule is ``clustering.excerpt_max_tokens`` (0 turns it off).
Prints one Markdown table: seconds, peak RSS, clusters, the largest, and the share of the
story's pairs kept in one cluster (pair recall; the story is the seed and its teasers).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import resource
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def corpus(teasers: int) -> list[dict[str, Any]]:
    """Both seeds and ``teasers`` distinct teasers of seed 000, within ten hours of it."""
    seeds = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        title = next(line.strip() for line in text.splitlines() if line.strip())
        seeds.append({"id": path.stem, "title": title, "text": text})
    when = datetime(2024, 3, 23)
    full = seeds[0]
    out = [{**s, "published": when} for s in seeds]
    out += [{"id": f"teaser-{i:05d}", "title": "", "published": when + timedelta(minutes=i % 600),
             "text": f"{full['title']}. Update {i} from desk {i * 7919 % 10007}."}
            for i in range(teasers)]
    return out


def _run(teasers: int, on: bool, conn: Any) -> None:
    from dedup import cluster
    from dedup.config import Config

    config = Config()
    if not on:
        config = dataclasses.replace(
            config, clustering=dataclasses.replace(config.clustering, excerpt_max_tokens=0))
    articles = corpus(teasers)
    start = time.perf_counter()
    result = cluster(articles, config, with_stories=False, workers=1)
    seconds = time.perf_counter() - start
    sizes = Counter(result.assignments["cluster_id"].to_list())
    story = Counter(c for i, c in zip(result.assignments["id"], result.assignments["cluster_id"],
                                      strict=True) if i == articles[0]["id"]
                    or i.startswith("teaser-"))
    n = teasers + 1
    kept = sum(k * (k - 1) for k in story.values()) / (n * (n - 1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send((seconds, peak, len(sizes), max(sizes.values()), kept))


def measure(teasers: int, on: bool) -> tuple[float, float, int, int, float]:
    """One run in a fresh process: (seconds, peak RSS MiB, clusters, largest, pair recall)."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_run,
                                                            args=(teasers, on, child))
    process.start()
    found = parent.recv()
    process.join()
    return found


def stock(n: int, far: bool) -> tuple[float, float]:
    """Seconds of ``excerpts.edges`` and ``excerpts.regroup`` on ``n`` excerpts (each a group
    of its own) and ``n`` longer articles (one group), all with one opening."""
    import numpy as np

    from dedup import excerpts

    keys = np.ones(2 * n, dtype=np.uint64)
    short = np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)]
    days = np.r_[np.full(n, 5.0), np.full(n, 370.0 if far else 5.0)]
    openings = excerpts.Openings(keys, short, days, days)
    start = time.perf_counter()
    excerpts.edges(openings, np.ones(2 * n, dtype=bool), 2.0)
    middle = time.perf_counter()
    excerpts.regroup([np.arange(n, 2 * n)] + [np.array([i]) for i in range(n)], openings, 2.0)
    return middle - start, time.perf_counter() - middle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teasers", default="2000,10000",
                        help="comma-separated numbers of teasers")
    parser.add_argument("--stock", default="",
                        help="comma-separated sizes of the one-stock-opening table")
    args = parser.parse_args(argv)
    if args.stock:
        print("| short + long articles, one opening | openers | edges s | regroup s |")
        print("|---|---|---|---|")
        for n in (int(t) for t in args.stock.split(",")):
            for far in (False, True):
                edges_s, regroup_s = stock(n, far)
                print(f"| {n:,} + {n:,} | {'a year later' if far else 'same day'} "
                      f"| {edges_s:.3f} | {regroup_s:.3f} |", flush=True)
        return
    print("| teasers | excerpt rule | seconds | peak RSS MiB | clusters | largest "
          "| story pair recall |")
    print("|---|---|---|---|---|---|---|")
    for teasers in (int(t) for t in args.teasers.split(",")):
        for on in (True, False):
            seconds, peak, clusters, largest, kept = measure(teasers, on)
            print(f"| {teasers:,} | {'on' if on else 'off'} | {seconds:.2f} | {peak:,.0f} "
                  f"| {clusters:,} | {largest:,} | {kept:.3f} |", flush=True)


if __name__ == "__main__":
    main()
