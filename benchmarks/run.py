"""Quality and speed of ``dedup`` against baselines on one corpus, as one table.

    python -m benchmarks.run --corpus ecbplus-dev
    python -m benchmarks.run --corpus synthetic --docs 100000

Prints a Markdown table and writes it as ``benchmarks/results/<corpus>[-<docs>].{md,json}``.
Every system runs on the same corpus in the same run; see benchmarks/README.md for what
each column means and how memory is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.corpora import ECBPLUS_DEV, Corpus, load_ecbplus_dev
from benchmarks.measure import (
    CorpusSpec,
    Measurement,
    describe_machine,
    measure,
    measure_isolated,
)
from benchmarks.synthetic import DEFAULT_SEED, GENERATOR_VERSION, generate
from benchmarks.synthetic_files import write_parquet
from benchmarks.systems import DESCRIPTIONS, SYSTEMS, pick

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = RESULTS_DIR / "cache"
SYNTHETIC = "synthetic"
TFIDF_MAX_DOCS = 50_000


@dataclass
class Report:
    """A finished benchmark: context plus one ``Measurement`` per system."""

    corpus: str
    docs: int
    gold_clusters: int
    seed: int | None
    isolation: str
    machine: dict[str, Any]
    started: str
    rows: list[Measurement] = field(default_factory=list)
    tail: bool | None = None  # synthetic: big events drawn (False: generator version 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in vars(self).items() if k != "rows"},
            "rows": [r.to_dict() for r in self.rows],
        }

    def stem(self) -> str:
        if self.corpus == ECBPLUS_DEV:
            return self.corpus
        return f"{self.corpus}-{self.docs}" + ("-notail" if self.tail is False else "")


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_table(report: Report) -> str:
    """The results as one Markdown table, with a header line saying what was measured."""
    head = (
        f"Corpus `{report.corpus}`: {report.docs:,} articles, {report.gold_clusters:,} gold "
        f"clusters"
        + (f", seed {report.seed}" if report.seed is not None else "")
        + (", no big events (generator v2)" if report.tail is False else "")
        + f". Python {report.machine['python']}, {report.machine['cpus']} CPUs, "
        f"{report.machine['memory_gib']} GiB; memory: {report.isolation}. {report.started}."
    )
    cols = [
        "system",
        "P",
        "R",
        "F1",
        "B³ F1",
        "ARI",
        "big-event R (min, n)",
        "clusters",
        "cand. pairs",
        "cand. recall",
        "seconds by stage",
        "total s",
        "docs/s",
        "peak ΔRSS MiB",
    ]
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in report.rows:
        if r.status != "ok":
            cells = [r.system, r.status.replace("|", "/"), *["-"] * (len(cols) - 2)]
        else:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r.timings.items())
            pairs = _num(r.candidate_pairs, ",")
            if r.note:
                pairs += f" ({r.note})"
            cells = [
                r.system,
                _num(r.precision, ".3f"),
                _num(r.recall, ".3f"),
                _num(r.f1, ".3f"),
                _num(r.bcubed_f1, ".3f"),
                _num(r.ari, ".3f"),
                "-" if not r.big_events else f"{_num(r.big_event_recall, '.3f')} ({r.big_events})",
                _num(r.clusters, ","),
                pairs,
                _num(r.candidate_recall, ".3f"),
                stages,
                _num(r.seconds, ".2f"),
                _num(r.docs_per_second, ",.0f"),
                _num(r.peak_rss_increase_mib, ",.0f"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def corpus_spec(
    corpus: str, docs: int | None, seed: int, cache_dir: Path = CACHE_DIR, quiet: bool = False,
    tail: bool = True,
) -> CorpusSpec:
    """Where subprocesses find the corpus; a synthetic one is written to Parquet once."""
    if corpus == ECBPLUS_DEV:
        return CorpusSpec(ECBPLUS_DEV)
    version = GENERATOR_VERSION if tail else 2  # without the tail: version 2's corpus
    path = cache_dir / f"synthetic-{docs}-seed{seed}-v{version}.parquet"
    if not path.exists():
        if not quiet:
            print(f"writing synthetic corpus to {path}", file=sys.stderr, flush=True)
        write_parquet(path, docs or 0, seed, progress=not quiet, tail=tail)
    return CorpusSpec(SYNTHETIC, str(path))


def _gold_labels(spec: CorpusSpec) -> list[str]:
    if spec.parquet is None:
        return spec.load().gold
    import polars as pl

    return pl.read_parquet(spec.parquet, columns=["gold"])["gold"].to_list()


def load_corpus(corpus: str, docs: int | None, seed: int, tail: bool = True) -> Corpus:
    """The corpus in memory (for in-process runs)."""
    if corpus == ECBPLUS_DEV:
        c = load_ecbplus_dev()
        if docs is not None and docs < len(c.articles):
            c = Corpus(c.name, c.articles[:docs], c.gold[:docs])
        return c
    return generate(docs or 0, seed, tail=tail)


def run_benchmark(
    corpus: str = ECBPLUS_DEV,
    docs: int | None = None,
    systems: Sequence[str] = tuple(SYSTEMS),
    seed: int = DEFAULT_SEED,
    isolate: bool = True,
    tfidf_max_docs: int = TFIDF_MAX_DOCS,
    timeout: float | None = None,
    cache_dir: Path = CACHE_DIR,
    quiet: bool = False,
    tail: bool = True,
) -> Report:
    """Run every system on the same corpus and collect one ``Measurement`` each."""
    systems = pick(systems)
    if corpus not in (ECBPLUS_DEV, SYNTHETIC):
        raise ValueError(f"unknown corpus {corpus!r}; choose {ECBPLUS_DEV} or {SYNTHETIC}")
    if corpus == SYNTHETIC and not docs:
        docs = 10_000
    if isolate and corpus == ECBPLUS_DEV and docs is not None:
        isolate = False  # children load the whole file; a cut corpus runs in-process
    loaded: Corpus | None = None
    spec: CorpusSpec | None = None
    if isolate:  # the parent never holds a big corpus: only the children load it
        spec = corpus_spec(corpus, docs, seed, cache_dir, quiet, tail)
        gold = _gold_labels(spec)
    else:
        loaded = load_corpus(corpus, docs, seed, tail)
        gold = loaded.gold
    report = Report(
        corpus=corpus,
        docs=len(gold),
        gold_clusters=len(set(gold)),
        seed=seed if corpus == SYNTHETIC else None,
        isolation="peak RSS increase per system, each in a fresh process"
        if isolate
        else "peak RSS increase per system, sampled in one process",
        machine=describe_machine(),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        tail=tail if corpus == SYNTHETIC else None,
    )
    for name in systems:
        if name == "tfidf-0.30" and report.docs > tfidf_max_docs:
            report.rows.append(
                Measurement(
                    name,
                    DESCRIPTIONS[name],
                    f"skipped: all-pairs cosine grows as n²; {report.docs:,} docs > "
                    f"--tfidf-max-docs {tfidf_max_docs:,}",
                    docs=report.docs,
                )
            )
            continue
        if not quiet:
            print(f"running {name} on {report.docs:,} docs ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        if spec is not None:
            row = measure_isolated(name, spec, timeout)
        else:
            assert loaded is not None
            row = measure(name, loaded)
        if not quiet:
            print(
                f"  {name}: {row.status} ({time.perf_counter() - t0:.1f} s with loading)",
                file=sys.stderr,
                flush=True,
            )
        report.rows.append(row)
    return report


def write_report(report: Report, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write the table as Markdown and the full figures as JSON; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{report.stem()}.md"
    js = out_dir / f"{report.stem()}.json"
    md.write_text(format_table(report), encoding="utf-8")
    js.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return md, js


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", choices=(ECBPLUS_DEV, SYNTHETIC), default=ECBPLUS_DEV)
    parser.add_argument(
        "--docs",
        type=int,
        default=None,
        help="synthetic: corpus size (default 10000); ecbplus-dev: first N",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-tail", action="store_true",
                        help="synthetic: no big events (generator version 2's corpus)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run all systems in this process (faster; memory less exact)",
    )
    parser.add_argument(
        "--tfidf-max-docs",
        type=int,
        default=TFIDF_MAX_DOCS,
        help="skip the all-pairs TF-IDF baseline above this many docs",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per system before it is killed (isolated runs)",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: list[str] | None = None) -> Report:
    """CLI entry point: run, print the table, write it under ``--out-dir``."""
    args = build_parser().parse_args(argv)
    report = run_benchmark(
        corpus=args.corpus,
        docs=args.docs,
        systems=[s.strip() for s in args.systems.split(",") if s.strip()],
        seed=args.seed,
        isolate=not args.in_process,
        tfidf_max_docs=args.tfidf_max_docs,
        timeout=args.timeout,
        cache_dir=args.out_dir / "cache",
        quiet=args.quiet,
        tail=not args.no_tail,
    )
    print(format_table(report))
    md, js = write_report(report, args.out_dir)
    print(f"wrote {md} and {js}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
