"""Hostile input, killed runs and live readers (issue #22): a table of check, trials, failures.

    python -m benchmarks.fuzz --examples 2000 --kills 50 --readers 200

Checks:

- ``fuzz <reader>``: ``dedup cluster``, ``index add`` and ``dedupe`` on generated inputs
  (JSONL, CSV, Parquet, .txt folders, stdin, and ``stories.jsonl`` for ``dedup stories``)
  with mixed-type and deeply nested columns, output names as input columns, lone
  surrogates, byte-order marks, quoted newlines, bytes that are not UTF-8, non-string ids.
  A trial fails on a traceback, an exit code other than 0 or 2, an error of more than one
  line, or (exit 0, ``--skip-bad-rows``) when clustered + rejected (dedupe: kept + dropped
  + rejected, and the rows written) differs from the rows the input holds.
- ``kill cluster``: ``dedup cluster`` killed (SIGKILL) at a random time while replacing an
  earlier set: OUTDIR must then hold exactly the old set or exactly the new one (every
  visible output byte for byte), and the next run must leave no staging behind.
- ``kill commit step``: the publish killed at each of its file-system steps in turn.
- ``kill index add``: ``dedup index add`` killed at a random time: the index must pass
  SQLite's integrity check and hold all of the batch or none of it.
- ``readers during adds``: ``StoryIndex.stories()`` called while another process adds
  batches: every call must see one committed state (no article twice, the article count
  of one commit).
- ``reopen == long-lived``: ecbplus-dev added ten at a time, reopening the index for each
  add versus one open index: identical assignments.

Each check runs with hypothesis (``fuzz``) or its own random seed; ``--seed`` fixes it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import io as _io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

READERS = ("jsonl", "csv", "parquet", "txt", "stdin", "stories")

# -------------------------------------------------------------------- generated inputs

_TEXTS = st.sampled_from([
    "Storm hits the city; 12 dead.", "A storm hit the city on Monday, killing 12.",
    "Quake shakes Lima.", "", "   ", "caf\u00e9 \u00fcber na\u00efve", "line one\nline two",
    'quotes " and , commas', "Storm \ud800 hits", "\ud83d\ude00 emoji",
])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=False), st.text(max_size=8), _TEXTS)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)
_IDS = st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 50).map(str),
                 st.integers(0, 50), st.none(), st.just(""), st.floats(0, 5),
                 st.lists(st.integers(), max_size=2), st.just("\ud800x"))
_EXTRA_NAMES = st.sampled_from(["tags", "coords", "meta", "cluster_id", "similarity",
                                "is_canonical", "title", "lang", "score"])


@st.composite
def rows(draw: Any) -> list[dict[str, Any]]:
    """Records as an export might hold them, hostile ones included."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        row: dict[str, Any] = {}
        if draw(st.integers(0, 9)):
            row["id"] = draw(_IDS)
        if draw(st.integers(0, 9)):
            row["text"] = draw(st.one_of(_TEXTS, _TEXTS, st.integers(), st.none()))
        for name in draw(st.lists(_EXTRA_NAMES, max_size=3, unique=True)):
            row[name] = draw(_VALUES)
        if draw(st.integers(0, 20)) == 0:
            deep = draw(st.integers(40, 100_000))
            row["deep"] = json.loads("[" * min(deep, 500) + "]" * min(deep, 500)) \
                if deep < 900 else _Deep(deep)
        if draw(st.integers(0, 5)) == 0:
            row["published"] = draw(st.sampled_from(["2024-03-22", "yesterday", 5, None,
                                                     "2024-03-22T18:00:00+02:00"]))
        out.append(row)
    return out


class _Deep:
    """A list nested ``depth`` levels (written as text: Python cannot build it)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _json_line(row: dict[str, Any]) -> str:
    parts = []
    for key, value in row.items():
        text = ("[" * value.depth + "]" * value.depth if isinstance(value, _Deep)
                else json.dumps(value))
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


@dataclass
class Input:
    """One generated input: where it is, how to name it on the command line, how many
    rows (records) it holds, and stdin bytes for ``-``."""

    args: list[str]
    rows: int
    stdin: bytes | None = None


@st.composite
def inputs(draw: Any, kind: str, folder: Path) -> Input:
    """An input of reader ``kind`` written under ``folder``."""
    records = draw(rows())
    bom = draw(st.booleans())
    garbage = draw(st.sampled_from([b"", b"", b"not json\n", b"\xff\xfe bad bytes\n",
                                    b"[1, 2]\n", b"\n"]))
    if kind in ("jsonl", "stdin"):
        lines = [_json_line(r).encode("utf-8", "surrogatepass") + b"\n" for r in records]
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, garbage)
        data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(lines)
        count = sum(1 for line in b"".join(lines).split(b"\n") if line.strip())
        if kind == "stdin":
            return Input(["-"], count, data)
        path = folder / "in.jsonl"
        path.write_bytes(data)
        return Input([str(path)], count)
    if kind == "csv":
        names = list(dict.fromkeys(k for r in records for k in r)) or ["id", "text"]
        buffer = _io.StringIO()
        # "\r\n": the writer then quotes fields holding \r or \n, so the records are the
        # rows written (a bare \r ends a record for CSV readers).
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(names)
        for r in records:
            writer.writerow(["" if r.get(n) is None else r[n] if isinstance(r.get(n), str)
                             else _json_line({"v": r[n]})[6:-1] for n in names])
        data = buffer.getvalue().encode("utf-8", "surrogatepass")
        if garbage.startswith(b"\xff") and records:
            data = data.replace(b"\n", b"\n\xff", 1) if draw(st.booleans()) else data
        path = folder / "in.csv"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        return Input([str(path)], len(records))
    if kind == "parquet":
        import polars as pl

        clean = [{k: v for k, v in r.items() if not isinstance(v, _Deep)} for r in records]
        try:
            frame = pl.DataFrame(clean, infer_schema_length=None) if clean else pl.DataFrame(
                {"id": [], "text": []}, schema={"id": pl.String, "text": pl.String})
            path = folder / "in.parquet"
            frame.write_parquet(path)
        except Exception:  # not a table polars can hold: write the JSONL form instead
            return draw(inputs("jsonl", folder))
        return Input([str(path)], frame.height)
    # txt: a folder of files, some not UTF-8
    path = folder / "txt"
    path.mkdir()
    count = draw(st.integers(0, 4))
    for k in range(count):
        body = draw(_TEXTS).encode("utf-8", "surrogatepass")
        if draw(st.integers(0, 4)) == 0:
            body += b"\xff"
        if bom and k == 0:
            body = b"\xef\xbb\xbf" + body
        (path / f"doc{k}.txt").write_bytes(body)
    return Input([str(path)], count)


# -------------------------------------------------------------------- one trial


@dataclass
class Outcome:
    """What a trial found wrong, or None."""

    problem: str | None


def _one_line_error(result: Any) -> str | None:
    if result.exit_code not in (0, 2):
        return f"exit {result.exit_code}: {result.output[-300:]!r} {result.exception!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"exception {result.exception!r}"
    if "Traceback" in result.output:
        return "traceback in output"
    if result.exit_code == 2 and len(result.stderr.strip().splitlines()) != 1:
        return f"error of {len(result.stderr.strip().splitlines())} lines: {result.stderr!r}"
    return None


def cluster_trial(data: Input, folder: Path, command: str = "cluster",
                  skips: tuple[bool, ...] = (False, True)) -> Outcome:
    """Run ``dedup cluster`` (or ``dedup index add``, ``dedup dedupe``) without and with
    --skip-bad-rows."""
    import polars as pl
    from click.testing import CliRunner

    from dedup import outputs
    from dedup.cli import main

    runner = CliRunner()
    for skip in skips:
        out = folder / f"out-{skip}"
        flags = ["--skip-bad-rows"] if skip else []
        if command == "cluster":
            args = ["cluster", *data.args, "-o", str(out), "-j", "1", *flags]
        elif command == "dedupe":
            args = ["dedupe", *data.args, "-o", str(folder / f"dd-{skip}.jsonl"), "-j", "1",
                    *flags]
        else:
            args = ["index", "add", str(folder / f"ix-{skip}.db"), *data.args, *flags]
        result = runner.invoke(main, args, input=data.stdin)
        problem = _one_line_error(result)
        if problem:
            return Outcome(f"{command} {' '.join(flags)}: {problem}")
        if not skip or result.exit_code != 0:
            continue
        if command == "cluster":
            found = outputs.open_set(out)
            assignments = found.path("assignments.jsonl") or found.path("assignments.parquet")
            if assignments is None:
                return Outcome("cluster: no assignments in the set")
            clustered = (pl.read_parquet(assignments).height if assignments.suffix == ".parquet"
                         else sum(1 for _ in assignments.open("rb")))
            rejected_path = found.path("rejected.jsonl")
            rejected = sum(1 for _ in rejected_path.open("rb")) if rejected_path else 0
        elif command == "dedupe":
            problem = _dedupe_accounts(result.stderr, folder / f"dd-{skip}.jsonl", data.rows)
            if problem:
                return Outcome(f"dedupe: {problem}")
            continue
        else:
            counts = {line.split()[0]: int(line.split()[-1].replace(",", ""))
                      for line in result.stderr.splitlines()
                      if line.strip().startswith(("articles added", "rejected"))}
            clustered, rejected = counts["articles"], counts["rejected"]
        if clustered + rejected != data.rows:
            return Outcome(f"{command}: {clustered} clustered + {rejected} rejected != "
                           f"{data.rows} rows")
    return Outcome(None)


def _dedupe_accounts(summary: str, out: Path, rows_in: int) -> str | None:
    """What is wrong with a ``dedup dedupe`` run's accounting: the input's rows = read =
    kept + dropped + rejected on its summary, kept = rows written, and their ``copies`` sum
    to kept + dropped."""
    counts = {}
    for line in summary.split("seconds per stage")[0].splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("read", "kept", "dropped", "rejected"):
            counts[words[0]] = int(words[1].replace(",", ""))
        elif words[:2] == ["articles", "read"]:
            counts["read"] = int(words[2].replace(",", ""))
    if set(counts) != {"read", "kept", "dropped", "rejected"}:
        return f"no accounting in the summary: {summary[-300:]!r}"
    if not rows_in == counts["read"] == counts["kept"] + counts["dropped"] + counts["rejected"]:
        return f"{rows_in} rows in, {counts} do not add up"
    rows = [json.loads(line) for line in out.open("rb")]
    if len(rows) != counts["kept"] or sum(r["copies"] for r in rows) != (
            counts["kept"] + counts["dropped"]):
        return f"{len(rows)} rows written for {counts}"
    return None


@st.composite
def story_folders(draw: Any, folder: Path) -> Path:
    """An OUTDIR for ``dedup stories``: a real set, damaged after, or none at all."""
    from dedup import outputs

    out = folder / "stories-out"
    lines = draw(st.lists(st.one_of(
        st.just(b'{"cluster_id": "c1", "members": ["a"], "base": "a", "title": "<b>x</b>",'
                b' "text": "t", "sentences": [], "differences": []}\n'),
        st.just(b"\xff\xfe\n"), st.just(b"{}\n"), st.just(b"[1]\n"), st.just(b"null\n"),
        st.just(b'{"cluster_id": 5}\n'), st.just(b"\n"),
        st.just(b"[" * 5000 + b"]" * 5000 + b"\n")), max_size=4))
    how = draw(st.sampled_from(["set", "no manifest", "edited"]))
    if how == "no manifest":
        out.mkdir()
        (out / "stories.jsonl").write_bytes(b"".join(lines))
        return out
    with outputs.staged(out) as staging:
        (staging.path / "stories.jsonl").write_bytes(b"".join(lines))
        staging.commit({}, "fuzz")
    if how == "edited":
        target = out / os.readlink(out / ".current") / "stories.jsonl"
        target.write_bytes(target.read_bytes() + b"\n")
    return out


def stories_trial(out: Path) -> Outcome:
    from click.testing import CliRunner

    from dedup.cli import main

    for fmt in ("md", "html", "json"):
        result = CliRunner().invoke(main, ["stories", str(out), "--format", fmt])
        problem = _one_line_error(result)
        if problem:
            return Outcome(f"stories --format {fmt}: {problem}")
    return Outcome(None)


@contextlib.contextmanager
def cached_lsh_params() -> Iterator[None]:
    """datasketch's band/row optimisation (0.1 s a run) computed once per threshold: the
    same numbers, so that a trial costs what reading and writing cost."""
    from dedup import candidates

    original = candidates.lsh_params
    candidates.lsh_params = functools.cache(original)
    try:
        yield
    finally:
        candidates.lsh_params = original


def fuzz(kind: str, examples: int, record: Callable[[Outcome], None],
         thorough: bool = True) -> None:
    """Run ``examples`` generated inputs of reader ``kind`` through the CLI: ``dedup
    cluster`` with and without --skip-bad-rows, then ``dedup index add`` and ``dedup
    dedupe`` likewise (not ``thorough``: one of the six, drawn, for a quick run in the test
    suite)."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def trial(data: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if kind == "stories":
                record(stories_trial(data.draw(story_folders(folder))))
                return
            made = data.draw(inputs(kind, folder))
            if thorough:
                outcome = cluster_trial(made, folder)
                for command in ("index", "dedupe"):
                    if outcome.problem is None:
                        outcome = cluster_trial(made, folder, command=command)
            else:
                command = data.draw(st.sampled_from(["cluster", "cluster", "index", "dedupe"]))
                outcome = cluster_trial(made, folder, command, (data.draw(st.booleans()),))
            record(outcome)

    with cached_lsh_params():
        trial()


# -------------------------------------------------------------------- kills


def _snapshot(out: Path) -> dict[str, bytes | None]:
    """Every output name as a reader sees it (through the links), None when absent."""
    from dedup.outputs import OUTPUT_NAMES

    seen: dict[str, bytes | None] = {}
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            seen[name] = b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
        else:
            seen[name] = path.read_bytes() if path.is_file() else None
    return seen


def _dedup(*args: str) -> list[str]:
    return [sys.executable, "-c", "from dedup.cli import main; main()", *args]


def kill_cluster_trials(trials: int, folder: Path, articles: int, seed: int) -> list[str]:
    """SIGKILL ``dedup cluster`` at random times while it replaces an earlier set."""
    from click.testing import CliRunner

    from benchmarks.synthetic import generate
    from dedup.cli import main

    rng = random.Random(seed)
    corpus = generate(articles, seed=seed).articles
    old_in, new_in = folder / "old.jsonl", folder / "new.jsonl"
    old_in.write_text("".join(json.dumps(a, default=str) + "\n" for a in corpus[: articles // 2]))
    new_in.write_text("".join(json.dumps(a, default=str) + "\n" for a in corpus))
    flags = ["-j", "1", "--skip-bad-rows"]
    runs = {"old": [str(old_in), *flags], "new": [str(new_in), *flags, "--no-stories"]}
    reference = {}
    duration = 0.0
    for name, args in runs.items():
        out = folder / f"ref-{name}"
        # In this process, same arguments as the killed runs: the same bytes, manifest too.
        start = time.perf_counter()
        assert CliRunner().invoke(main, ["cluster", *args, "-o", str(out)]).exit_code == 0
        duration = time.perf_counter() - start  # the "new" run's, last
        reference[name] = _snapshot(out)
    failures = []
    landed: Counter[str] = Counter()
    for trial in range(trials):
        out = folder / f"trial-{trial}"
        shutil.copytree(folder / "ref-old", out, symlinks=True)
        proc = subprocess.Popen(_dedup("cluster", *runs["new"], "-o", str(out)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill between the staging folder's creation (after the read) and a little past
        # the run's end, so kills land in the clustering, the writing and the publish.
        deadline = time.monotonic() + 120
        while (proc.poll() is None and time.monotonic() < deadline
               and not any(p.name.startswith(".staging-") for p in out.iterdir())):
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 1.1) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen = _snapshot(out)
        if seen not in (reference["old"], reference["new"]):
            failures.append(f"trial {trial}: OUTDIR is neither the old nor the new set")
            continue
        left_by_kill = [p.name for p in out.iterdir()
                        if p.name.startswith((".staging-", ".trash-"))]
        landed["new set" if seen == reference["new"] else
               "old set, staging left" if left_by_kill else "old set"] += 1
        result = CliRunner().invoke(main, ["cluster", *runs["new"], "-o", str(out)])
        left = [p.name for p in out.iterdir() if p.name.startswith((".staging-", ".trash-"))]
        sets = [p.name for p in out.iterdir() if p.name.startswith(".set-")]
        if result.exit_code or left or len(sets) != 1 or _snapshot(out) != reference["new"]:
            failures.append(f"trial {trial}: the next run left {left + sets}")
        shutil.rmtree(out)
    print(f"  kill cluster: after the kill OUTDIR held {dict(sorted(landed.items()))}",
          flush=True)
    return failures


_COMMIT_CHILD = r"""
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("outputs", sys.argv[1])
outputs = importlib.util.module_from_spec(spec)
sys.modules["outputs"] = outputs
spec.loader.exec_module(outputs)
kill_at, calls = int(sys.argv[3]), [0]
def counted(func):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return func(*args, **kwargs)
    return wrapper
for name in ("rename", "replace", "symlink", "unlink", "mkdir"):
    setattr(outputs.os, name, counted(getattr(os, name)))
outputs.shutil.rmtree = counted(outputs.shutil.rmtree)
outputs.Path.unlink = counted(outputs.Path.unlink)
outputs.Path.rename = counted(outputs.Path.rename)
from pathlib import Path
with outputs.staged(Path(sys.argv[2])) as staging:
    for name, text in (("assignments.jsonl", "new a\n"), ("clusters.jsonl", "new c\n")):
        (staging.path / name).write_text(text)
    staging.commit({"run": "new"}, "test")
print("done", calls[0])
"""


def kill_commit_steps(folder: Path, limit: int = 60) -> tuple[int, list[str]]:
    """Kill the publish at its first, second, ... file-system call until one completes."""
    import dedup.outputs as outputs

    failures: list[str] = []
    old = folder / "commit-old"
    with outputs.staged(old) as staging:
        import polars as pl

        pl.DataFrame({"id": ["old"]}).write_parquet(staging.path / "assignments.parquet")
        for name, text in (("clusters.jsonl", "old c\n"), ("stories.jsonl", "old s\n"),
                           ("rejected.jsonl", "old r\n")):
            (staging.path / name).write_text(text)
        staging.commit({"run": "old"}, "test")
    old_seen = _snapshot(old)
    seen_after: list[tuple[int, dict[str, bytes | None]]] = []
    new_seen: dict[str, bytes | None] | None = None
    for step in range(1, limit):
        out = folder / f"commit-{step}"
        shutil.copytree(old, out, symlinks=True)
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _COMMIT_CHILD,
                               outputs.__file__, str(out), str(step)],
                              capture_output=True, text=True)
        seen_after.append((step, _snapshot(out)))
        shutil.rmtree(out)
        if done.returncode not in (0, -signal.SIGKILL):
            return len(seen_after), [f"step {step}: the publish failed: {done.stderr[-300:]}"]
        if done.returncode == 0:  # the step count ran past the last call: it completed
            new_seen = seen_after[-1][1]
            break
    failures = [f"step {step}: neither the old nor the new set"
                for step, seen in seen_after if seen not in (old_seen, new_seen)]
    if new_seen is None:
        failures.append(f"the publish did not complete within {limit} calls")
    return len(seen_after), failures


def kill_index_trials(trials: int, folder: Path, seed: int) -> list[str]:
    """SIGKILL ``dedup index add`` at random times: the index holds the batch or not."""
    from benchmarks.synthetic import generate

    rng = random.Random(seed)
    corpus = generate(600, seed=seed).articles
    base, batch = folder / "base.jsonl", folder / "batch.jsonl"
    base.write_text("".join(json.dumps(a, default=str) + "\n" for a in corpus[:400]))
    batch.write_text("".join(json.dumps(a, default=str) + "\n" for a in corpus[400:]))
    db = folder / "base.db"
    subprocess.run(_dedup("index", "add", str(db), str(base)), check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(_dedup("index", "add", str(folder / "timing.db"), str(base)), check=True,
                   capture_output=True)
    duration = time.perf_counter() - start
    failures = []
    for trial in range(trials):
        copy = folder / f"ix-{trial}.db"
        shutil.copy(db, copy)
        proc = subprocess.Popen(_dedup("index", "add", str(copy), str(batch)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.0) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        conn = sqlite3.connect(copy)
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        clusters = conn.execute("SELECT coalesce(sum(size), 0) FROM clusters").fetchone()[0]
        conn.close()
        if ok != "ok" or count not in (400, 600) or clusters != count:
            failures.append(f"trial {trial}: integrity {ok}, {count} articles, "
                            f"cluster sizes sum {clusters}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return failures


_WRITER = r"""
import json, sys
from dedup import StoryIndex
rows = [json.loads(line) for line in open(sys.argv[2])]
size = int(sys.argv[3])
for start in range(0, len(rows), size):
    with StoryIndex.open(sys.argv[1]) as index:
        index.add(rows[start:start + size])
"""


def reader_trials(calls: int, folder: Path, seed: int) -> tuple[int, list[str]]:
    """``stories()`` while another process adds batches: each call one committed state."""
    from benchmarks.synthetic import generate
    from dedup import StoryIndex

    corpus = generate(2200, seed=seed).articles
    db = folder / "live.db"
    with StoryIndex.open(db) as index:
        index.add(corpus[:200])
    feed = folder / "feed.jsonl"
    feed.write_text("".join(json.dumps(a, default=str) + "\n" for a in corpus[200:]))
    size = 10
    counts = {200 + size * k for k in range(0, 2000 // size + 1)}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(feed), str(size)])
    failures: list[str] = []
    made = concurrent = 0
    try:
        with StoryIndex.open(db, create=False) as index:
            while made < calls:
                running = writer.poll() is None
                stories = index.stories()
                made += 1
                concurrent += running
                members = [m for s in stories for m in s.members]
                if len(members) != len(set(members)) or len(members) not in counts:
                    failures.append(f"call {made}: {len(members)} members, "
                                    f"{len(members) - len(set(members))} twice")
    finally:
        writer.kill()
        writer.wait()
    return concurrent, failures


def reopen_trial(articles: Sequence[dict[str, Any]], size: int, folder: Path) -> list[str]:
    """Assignments of one open index vs. an index reopened for every add."""
    from dedup import StoryIndex

    with StoryIndex.open(folder / "long.db") as index:
        for start in range(0, len(articles), size):
            index.add(articles[start : start + size])
        long_lived = index.assignments()
    for start in range(0, len(articles), size):
        with StoryIndex.open(folder / "reopened.db") as index:
            index.add(articles[start : start + size])
    with StoryIndex.open(folder / "reopened.db") as index:
        reopened = index.assignments()
    differ = [k for k in long_lived if long_lived[k] != reopened.get(k)]
    return [f"{len(differ)} of {len(long_lived)} articles placed differently"] if differ else []


# -------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000,
                        help="generated inputs in all (split over the readers)")
    parser.add_argument("--kills", type=int, default=50,
                        help="kills of dedup cluster and of dedup index add")
    parser.add_argument("--readers", type=int, default=200, help="stories() calls")
    parser.add_argument("--kill-articles", type=int, default=3000,
                        help="synthetic articles in the killed dedup cluster runs")
    parser.add_argument("--reopen-docs", type=int, default=0,
                        help="also compare reopen-per-add with a long-lived index on this "
                             "many synthetic articles (0: ecbplus-dev only)")
    parser.add_argument("--reopen-batch", type=int, default=500,
                        help="articles per add in the synthetic reopen check")
    parser.add_argument("--only", default="",
                        help="comma-separated check groups to run: fuzz, kill, readers, "
                             "reopen (default all)")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    table: list[tuple[str, int, int, str]] = []

    def row(check: str, trials: int, failures: list[str]) -> None:
        table.append((check, trials, len(failures), failures[0][:120] if failures else ""))
        print(f"{check:<28} {trials:>7} {len(failures):>9}  {table[-1][3]}", flush=True)

    print(f"{'check':<28} {'trials':>7} {'failures':>9}", flush=True)
    groups = set(args.only.split(",")) if args.only else {"fuzz", "kill", "readers", "reopen"}
    per_reader = max(1, args.examples // len(READERS))
    for kind in READERS if "fuzz" in groups else ():
        outcomes: list[Outcome] = []
        fuzz(kind, per_reader, outcomes.append)
        row(f"fuzz {kind}", len(outcomes), [o.problem for o in outcomes if o.problem])
    if "kill" in groups:
        with tempfile.TemporaryDirectory() as tmp:
            trials, failures = kill_commit_steps(Path(tmp))
            row("kill commit step", trials, failures)
        with tempfile.TemporaryDirectory() as tmp:
            row("kill cluster", args.kills,
                kill_cluster_trials(args.kills, Path(tmp), args.kill_articles, args.seed))
        with tempfile.TemporaryDirectory() as tmp:
            row("kill index add", args.kills,
                kill_index_trials(args.kills, Path(tmp), args.seed))
    if "readers" in groups:
        with tempfile.TemporaryDirectory() as tmp:
            made, failures = reader_trials(args.readers, Path(tmp), args.seed)
            row("readers during adds", made, failures)  # calls made while the writer ran
    if "reopen" in groups:
        from benchmarks.corpora import load_ecbplus_dev

        ecb = [{"id": a["id"], "title": a["title"], "text": a["text"]}
               for a in load_ecbplus_dev().articles]
        with tempfile.TemporaryDirectory() as tmp:
            row("reopen == long-lived (ecb)", len(ecb), reopen_trial(ecb, 10, Path(tmp)))
        if args.reopen_docs:
            from benchmarks.synthetic import generate

            synthetic = generate(args.reopen_docs, seed=args.seed).articles
            with tempfile.TemporaryDirectory() as tmp:
                row(f"reopen == long-lived ({args.reopen_docs:,})", len(synthetic),
                    reopen_trial(synthetic, args.reopen_batch, Path(tmp)))
    digest = hashlib.sha256(json.dumps(table).encode()).hexdigest()[:12]
    print(f"table digest {digest}")


if __name__ == "__main__":
    main()
