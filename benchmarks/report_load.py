"""How fast a report of many stories opens in a real browser.

Why: ``dedup stories OUTDIR --format html`` writes every story into one page that opens
with an index. A page of hundreds of stories must still open quickly and jump to a story
from the index at once; only a browser can say so. This measures it in headless Chromium
(playwright driving the system's ``chromium``; see ``tests/test_browser.py``).

Reports (each rendered with ``dedup.render.render_html``):
- ``clusters``: ``dedup.cluster`` of ecbplus-dev (its stories, with their differences);
- ``articles``: every ecbplus-dev article as a story of its own (509 stories);
- ``articles x4``: those 509 four times over (2,036 stories, ids made unique).

Columns: stories, page size, seconds to render in Python, then from the browser's
Performance API (``performance.getEntriesByType``), median of ``--repeat`` fresh page loads:
DOMContentLoaded and load event (ms from the start of navigation), first paint and first
contentful paint (ms), and the ms from clicking the index's last link until the last story
is on screen (two animation frames after the click).

Run: ``python -m benchmarks.report_load [--repeat 5] [--chromium PATH]``
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.corpora import load_ecbplus_dev
from dedup import cluster
from dedup.merge import merge
from dedup.records import Article, Story
from dedup.render import render_html

_TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map(p => [p.name, p.startTime]));
  return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
          fp: paint['first-paint'] ?? NaN, fcp: paint['first-contentful-paint'] ?? NaN};
}"""

_JUMP = """async () => {
  const links = document.querySelectorAll('nav.index a');
  const last = links[links.length - 1];
  const target = document.getElementById(decodeURIComponent(last.hash.slice(1)));
  const start = performance.now();
  last.click();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const top = target.getBoundingClientRect().top;
  return {ms: performance.now() - start, onScreen: top >= -2 && top < innerHeight};
}"""


def reports() -> list[tuple[str, list[Story]]]:
    """The three reports: ecbplus-dev's clusters, its articles, and the articles x4."""
    corpus = load_ecbplus_dev()
    clustered = cluster(list(corpus.articles)).stories
    single = [
        merge([Article(a["id"], a["text"], a["title"])]) for a in corpus.articles
    ]
    many = [
        dataclasses.replace(s, cluster_id=f"{s.cluster_id}-{k}") for k in range(4) for s in single
    ]
    return [("clusters", clustered), ("articles", single), ("articles x4", many)]


def measure(browser: Any, stories: Sequence[Story], repeat: int, folder: Path) -> dict[str, float]:
    """Render the report, open it ``repeat`` times in fresh pages; medians of the timings."""
    start = time.perf_counter()
    page_html = render_html(stories)
    render_s = time.perf_counter() - start
    path = folder / f"report-{len(stories)}.html"
    path.write_text(page_html, encoding="utf-8")
    rows: list[dict[str, float]] = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_timeout(50)  # paint entries are recorded after the first frame
        timings = page.evaluate(_TIMINGS)
        jump = page.evaluate(_JUMP)
        if not jump["onScreen"]:
            raise RuntimeError(f"the index's last link did not bring its story on screen: {path}")
        rows.append({**timings, "jump": jump["ms"]})
        context.close()
    out = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    return {"stories": len(stories), "mib": len(page_html.encode()) / 2**20,
            "render_s": render_s, **out}


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="page loads per report")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    built = reports()
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        results = [(name, measure(browser, stories, args.repeat, Path(tmp)))
                   for name, stories in built]
        version = browser.version
        browser.close()
    print(f"HTML report load in headless Chromium {version}, median of {args.repeat} loads")
    print("| report | stories | MiB | render s | DOMContentLoaded ms | load ms | first paint ms "
          "| first contentful paint ms | index -> last story ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results:
        print(f"| {name} | {r['stories']:.0f} | {r['mib']:.2f} | {r['render_s']:.2f} "
              f"| {r['dcl']:.0f} | {r['load']:.0f} | {r['fp']:.0f} | {r['fcp']:.0f} "
              f"| {r['jump']:.1f} |")


if __name__ == "__main__":
    main()
