"""How time and memory grow with corpus size: the synthetic corpus at 10k, 100k and 1M.

    python -m benchmarks.scale                       # 10k, 100k, 1M; dedup and datasketch
    python -m benchmarks.scale --sizes 1000,10000 --systems dedup,datasketch,rensa

Each (size, system) runs in a fresh process (see benchmarks/measure.py), so the memory
figure is that system's own peak RSS increase. Writes ``scale.{md,json,png}`` under
``--out-dir``; the synthetic corpora are cached as Parquet under ``<out-dir>/cache``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.measure import Measurement, describe_machine, measure_isolated
from benchmarks.run import CACHE_DIR, RESULTS_DIR, SYNTHETIC, corpus_spec
from benchmarks.synthetic import DEFAULT_SEED
from benchmarks.systems import pick

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_SYSTEMS = ("dedup", "datasketch")


def run_scale(
    sizes: Sequence[int] = DEFAULT_SIZES,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    seed: int = DEFAULT_SEED,
    timeout: float | None = None,
    cache_dir: Path = CACHE_DIR,
) -> list[Measurement]:
    """One isolated measurement per (size, system), smallest size first."""
    systems = pick(systems)
    rows: list[Measurement] = []
    for size in sorted(sizes):
        t0 = time.perf_counter()
        spec = corpus_spec(SYNTHETIC, size, seed, cache_dir)
        print(f"[{size:,}] corpus ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for name in systems:
            print(f"[{size:,}] running {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            row = measure_isolated(name, spec, timeout)
            print(
                f"[{size:,}] {name}: {row.status}, {row.seconds or 0:.1f} s, "
                f"ARI {row.ari if row.ari is not None else float('nan'):.3f}, "
                f"peak ΔRSS {row.peak_rss_increase_mib or 0:,.0f} MiB "
                f"({time.perf_counter() - t0:.1f} s with loading)",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    return rows


def format_scale_table(rows: Sequence[Measurement]) -> str:
    """Markdown table: one line per (size, system)."""
    cols = ["docs", "system", "status", "F1", "B³ F1", "ARI", "cand. pairs", "total s",
            "docs/s", "peak ΔRSS MiB", "peak RSS MiB"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        ok = r.status == "ok"

        def f(x: float | None, fmt: str, ok: bool = ok) -> str:
            return format(x, fmt) if ok and x is not None else "-"

        lines.append(
            "| "
            + " | ".join(
                [
                    f"{r.docs:,}",
                    r.system,
                    r.status.replace("|", "/"),
                    f(r.f1, ".3f"),
                    f(r.bcubed_f1, ".3f"),
                    f(r.ari, ".3f"),
                    f(r.candidate_pairs, ","),
                    f(r.seconds, ".1f"),
                    f(r.docs_per_second, ",.0f"),
                    f(r.peak_rss_increase_mib, ",.0f"),
                    f(r.peak_rss_mib, ",.0f"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Measurement], path: Path) -> Path:
    """Seconds and peak memory against corpus size, one line per system (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for system in dict.fromkeys(r.system for r in rows):
        ok = [r for r in rows if r.system == system and r.status == "ok"]
        if not ok:
            continue
        docs = [r.docs for r in ok]
        ax_t.plot(docs, [r.seconds for r in ok], marker="o", label=system)
        ax_m.plot(docs, [r.peak_rss_increase_mib for r in ok], marker="o", label=system)
    for ax, ylabel in ((ax_t, "wall seconds"), (ax_m, "peak RSS increase (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("articles")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle("dedup vs baselines on the synthetic corpus")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> list[Measurement]:
    """CLI entry point: run every size, print the table, write md/json/png."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated corpus sizes",
    )
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    rows = run_scale(sizes, systems, args.seed, args.timeout, args.out_dir / "cache")
    table = format_scale_table(rows)
    print(table)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.md").write_text(table, encoding="utf-8")
    payload = {
        "seed": args.seed,
        "machine": describe_machine(),
        "rows": [r.to_dict() for r in rows],
    }
    (out / "scale.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    png = plot(rows, out / "scale.png")
    print(f"wrote {out / 'scale.md'}, {out / 'scale.json'} and {png}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
