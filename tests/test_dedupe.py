"""``dedupe`` and ``dedup dedupe`` (#21): one guarantee per test, each cheap."""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from dedup import cluster, dedupe, io
from dedup.cli import main
from dedup.jit import NEVER, JitPolicy, using
from dedup.shingling import shingle_hashes
from dedup.signatures import MinHasher
from tests.conftest import SEED_IDS, read_seeds

# The module (``dedup.dedupe`` the attribute is the function, as ``dedup.cluster`` is).
dedupe_module = importlib.import_module("dedup.dedupe")
WORDS = [f"w{i}" for i in range(400)]


def _text(words: list[str]) -> str:
    return " ".join(words) + "."


def _jaccard(a: list[str], b: list[str], n: int = 5) -> float:
    sa = {tuple(a[i : i + n]) for i in range(len(a) - n + 1)}
    sb = {tuple(b[i : i + n]) for i in range(len(b) - n + 1)}
    return len(sa & sb) / len(sa | sb)


def _edited(base: list[str], edits: int) -> list[str]:
    """``base`` with ``edits`` words, evenly spread, replaced by fresh ones."""
    out = list(base)
    for k, at in enumerate(np.linspace(10, len(base) - 10, edits).astype(int).tolist()):
        out[at] = f"x{k}"
    return out


def test_exact_duplicates_are_always_one_group() -> None:
    """Equal normalized text (case, spacing, furniture lines aside) is one group at any
    threshold and n-gram size, short texts too."""
    body = "Rescuers pulled 12 people from the rubble\n\nThe quake struck at dawn."
    rows = [
        {"id": "a", "text": body},
        {"id": "b", "text": "Exit mobile version\n" + body.upper().replace(" ", "   ")},
        {"id": "c", "text": body + "\n\nShare.\nTags: quake, rescue"},
        {"id": "d", "text": "Two words"},
        {"id": "e", "text": "two  WORDS"},
        {"id": "f", "text": "Something else entirely happened in another town today."},
    ]
    for threshold, ngram in ((1.0, 5), (1.0, 50), (0.8, 1)):
        result = dedupe(rows, threshold=threshold, ngram=ngram)
        assert result.mapping() == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "d",
                                    "f": "f"}
        assert result.kept["id"].to_list() == ["a", "d", "f"]
        assert result.kept["copies"].to_list() == [3, 2, 1]


def test_threshold_is_respected_on_pairs_of_known_jaccard() -> None:
    base = WORDS[:300]
    near, far = _edited(base, 2), _edited(base, 12)
    assert 0.93 < _jaccard(base, near) < 0.94 and 0.65 < _jaccard(base, far) < 0.67
    rows = [{"id": "base", "text": _text(base)}, {"id": "near", "text": _text(near)},
            {"id": "far", "text": _text(far)}]
    assert dedupe(rows, threshold=0.8).mapping() == {"base": "base", "near": "base",
                                                     "far": "far"}
    assert dedupe(rows, threshold=0.5).mapping() == {"base": "base", "near": "base",
                                                     "far": "base"}
    assert dedupe(rows, threshold=0.97).mapping() == {"base": "base", "near": "near",
                                                      "far": "far"}


def test_keep_rules_and_their_tie_breaks() -> None:
    text = _text(WORDS[:60])
    rows: list[dict[str, Any]] = [
        {"id": "r0", "text": text, "published": None},
        {"id": "r1", "text": text + " And more words at the end of it.",
         "published": datetime(2024, 3, 2)},
        {"id": "r2", "text": text, "published": datetime(2024, 3, 1)},
        {"id": "r3", "text": text, "published": datetime(2024, 3, 1)},
        {"id": "r4", "text": text + " Also this and that.", "published": None},
    ]
    kept = {keep: dedupe(rows, threshold=0.8, keep=keep) for keep in ("first", "earliest",
                                                                      "longest")}
    assert {k: r.kept["id"].to_list() for k, r in kept.items()} == {
        "first": ["r0"], "earliest": ["r2"], "longest": ["r1"]}
    assert set(kept["earliest"].mapping().values()) == {"r2"}
    # Ties: the earlier row (undated rows only: the first of them).
    undated = [{**r, "published": None} for r in rows]
    assert dedupe(undated, keep="earliest").kept["id"].to_list() == ["r0"]
    same_length = [{**r, "text": text} for r in rows]
    assert dedupe(same_length, keep="longest").kept["id"].to_list() == ["r0"]
    with pytest.raises(ValueError, match="keep must be one of"):
        dedupe(rows, keep="last")


def test_three_hundred_copies_of_each_seed_leave_the_two_seeds() -> None:
    rows = []
    for seed in read_seeds():
        rows.append({"id": seed["id"], "text": seed["text"]})
        rows.extend({"id": f"{seed['id']}-copy{k}", "text": seed["text"]} for k in range(300))
    result = dedupe(rows)
    assert sorted(result.kept["id"].to_list()) == sorted(SEED_IDS)
    assert result.kept["copies"].to_list() == [301, 301]
    assert result.stats["exact_duplicates"] == 600


def test_compiled_and_python_shingling_agree() -> None:
    texts = [s["text"] for s in read_seeds()] + ["U.S. said IS-K -- a--b ok's é€—x ..", "",
                                                 "one two", "a b c d e"]
    texts += ["Share.\nA line\r\nA LINE\n\nExit mobile version\n“Quoted” do n't stop .\n"]
    encoded = [dedupe_module.light_text(t) for t in texts]
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    ends = np.cumsum([len(e) for e in encoded])
    compiled = shingle_hashes(buf, ends, 5, compiled=True)
    python = shingle_hashes(buf, ends, 5, compiled=False)
    for a, b in zip(compiled, python, strict=True):
        assert np.array_equal(a, b)
    # u.s, said, is-k, a, b, ok's, é€—x (non-ASCII bytes are word bytes); short texts.
    assert python[3].tolist()[2:] == [7, 0, 2, 5, 6]
    flat, shingle_ends = python[0], python[1]
    hasher = MinHasher(128, 1)
    for policy in (JitPolicy(0), JitPolicy(NEVER)):  # the compiled kernel and numpy
        with using(policy):
            assert np.array_equal(hasher.signatures_flat(flat, shingle_ends),
                                  hasher.signatures(np.split(flat, shingle_ends[:-1])))


# Lines that take each path of ``light_batch``: plain ASCII (kept, furniture, a byline that
# is a sentence, a repeat in another case), other lines (NFKC, curly quotes, tabs, double
# spaces, ß whose casefold is not its lower case), and marks that need the whole text.
_LIGHT_CASES = [
    "Quake hits Lima.\nShare.\nQuake hits LIMA.\n\nTags: quake, peru\nBy Ana Diaz\n"
    "by Tuesday, rescuers had pulled forty people from rubble\nby Tuesday, rescuers had "
    "pulled forty from rubble\n",
    "Straße  closed\nSTRASSE closed\n\t“Quoted”  text\nﬁnal ① word\n   padded line   \n",
    "A line\r\nA LINE\nExit mobile version\n",
    "The rate rose 2 % on Monday .\nSee also: other news\n``Yes , '' he said .\n",
    "", "\n\n", "one two", "©2024 Outlet\nPREV story\nprev story\nNext: more\n--\n",
    "By Monday, 12 were dead.\nBy noon, it was out.\nBy Ana Diaz and Tom Hale\n"
    "Reporting by Ana Diaz; Editing by Tom Hale\nListen to this story (2:31)\n"
    "By Jane Doe, Associated Press.\n(Reporting by Ahmed al-Sayed; Editing by Li Wei)\n",
    "Quake hits Lima.\nShare.\nQuake hits LIMA.\n",
]


def test_light_batch_gives_light_text_tokens() -> None:
    texts = pl.Series("text", _LIGHT_CASES * 3)
    buf, ends = dedupe_module.light_batch(texts)
    starts = np.concatenate(([0], ends[:-1]))
    got = [bytes(buf[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    # light_text joins lines with a space, light_batch follows each with one: same tokens.
    assert [g.split() for g in got] == [dedupe_module.light_text(t).split()
                                        for t in texts.to_list()]
    assert got[0].split(b" ")[:3] == [b"quake", b"hits", b"lima."]
    assert b"share" not in got[0] and b"ana" not in got[0]
    assert got[0].count(b"by tuesday") == 2  # a lower-case tail: a sentence, not a byline
    assert got[-2] == b"by monday, 12 were dead. by noon, it was out. "  # no furniture
    assert got[-1] == b"quake hits lima. "


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _corpus(tmp_path: Path) -> Path:
    rows = []
    for k in range(40):
        base = [f"s{k}w{i}" for i in range(300)]
        for copy in range(k % 4 + 1):
            rows.append({"id": f"a{k}-{copy}", "text": _text(_edited(base, copy)),
                         "source": f"outlet {copy}", "extra": k * 10 + copy})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_output_is_byte_identical_for_any_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.setattr(dedupe_module, "CHUNK", 16)  # several chunks, on the workers
    monkeypatch.setattr(dedupe_module, "BATCH", 50)  # several batches, normalized ahead
    source = _corpus(tmp_path)
    outputs = []
    for workers in ("1", "2"):
        out, groups = tmp_path / f"out{workers}.parquet", tmp_path / f"g{workers}.jsonl"
        result = _run("dedupe", str(source), "-o", str(out), "--groups", str(groups),
                      "-j", workers)
        assert result.exit_code == 0, result.output
        outputs.append((out.read_bytes(), groups.read_bytes()))
    assert outputs[0] == outputs[1]
    kept = pl.read_parquet(tmp_path / "out1.parquet")
    assert kept.height == 40 and kept["extra"].to_list() == [k * 10 for k in range(40)]


def test_parquet_streamed_in_batches_gives_the_whole_read_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.loads(line) for line in _corpus(tmp_path).read_text().splitlines()]
    for k, row in enumerate(rows):
        row["published"] = datetime(2024, 1, 1 + k % 5)
    source = tmp_path / "in.parquet"
    pl.DataFrame(rows).write_parquet(source)
    whole = dedupe(io.read_articles([str(source)]).frame, keep="earliest")
    streamed = dedupe_module.dedupe_parquet([str(source)], keep="earliest", batch_rows=7)
    assert streamed is not None
    monkeypatch.setattr(dedupe_module, "WRITE_ROWS", 9)  # several row groups
    for fmt in ("parquet", "jsonl"):
        a, b = tmp_path / f"whole.{fmt}", tmp_path / f"streamed.{fmt}"
        whole.write_kept(a, fmt)
        streamed.write_kept(str(b), fmt)  # a str path as well as a Path
        assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="fmt='csv': write 'parquet' or 'jsonl'"):
        whole.write_kept(tmp_path / "x.csv", "csv")  # type: ignore[arg-type]
    assert not (tmp_path / "x.csv").exists()
    assert streamed.groups.equals(whole.groups) and streamed.stats == {**whole.stats,
                                                                       "notes": []}
    assert pl.read_parquet(tmp_path / "streamed.parquet").height == 40
    # A repeated id sends the file to the row reader, which reports it.
    pl.DataFrame(rows + rows[:1]).write_parquet(source)
    assert dedupe_module.dedupe_parquet([str(source)], batch_rows=7) is None
    failed = _run("dedupe", str(source), "-o", str(tmp_path / "o.jsonl"))
    assert failed.exit_code == 2 and "duplicate id" in failed.stderr


def test_cli_accounts_for_every_row_and_rejects_bad_ones(tmp_path: Path) -> None:
    source = _corpus(tmp_path)
    with source.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "a0-0", "text": "a repeated id"}\n{"text": "no id"}\nnot json\n')
    lines = source.read_text().count("\n")
    out = tmp_path / "out.jsonl"
    failed = _run("dedupe", str(source), "-o", str(out))
    assert failed.exit_code == 2 and not out.exists()
    message = failed.stderr.strip()
    assert "\n" not in message and f"{source}:{lines - 2}" in message
    assert "--skip-bad-rows" in message and "Traceback" not in failed.output

    done = _run("dedupe", str(source), "-o", str(out), "--skip-bad-rows")
    assert done.exit_code == 0, done.output
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    rejected = (tmp_path / "out.jsonl.rejected.jsonl").read_text().splitlines()
    numbers = {line.split()[0]: int(line.split()[-1].replace(",", ""))
               for line in done.stderr.splitlines() if line.split() and
               line.split()[0] in ("kept", "rejected")}
    dropped = int(done.stderr.split("dropped")[1].split()[0].replace(",", ""))
    read = int(done.stderr.split("articles read")[1].split()[0].replace(",", ""))
    assert read == lines == len(kept) + dropped + len(rejected)
    assert numbers == {"kept": len(kept), "rejected": len(rejected)}
    assert len(kept) == 40 and len(rejected) == 3


def test_cli_usage_errors_are_one_line(tmp_path: Path) -> None:
    source = _corpus(tmp_path)
    for args, expected in (
        (["-o", str(tmp_path / "out.csv")], "name a .parquet or .jsonl file"),
        (["-", "-o", str(tmp_path / "o.jsonl"), "--engine", "dask"], "stdin (-) is not"),
    ):
        result = _run("dedupe", str(source), *args)
        assert result.exit_code == 2 and expected in result.stderr
        assert "Traceback" not in result.output


def test_cluster_assignments_carry_copy_groups() -> None:
    seeds = read_seeds()
    rows = [*seeds, {"id": "copy", "text": "Share.\n" + seeds[0]["text"]},
            {"id": "empty", "text": ""}]
    assignments = cluster(rows, with_stories=False).assignments
    assert assignments.columns[:5] == ["id", "cluster_id", "is_canonical", "similarity",
                                       "copy_group"]
    group = dict(zip(assignments["id"], assignments["copy_group"], strict=True))
    assert group["copy"] == group[seeds[0]["id"]] != group[seeds[1]["id"]]
    assert group["empty"] is None and len(group[seeds[1]["id"]]) == 16


def test_generator_labels_copy_groups_without_changing_texts() -> None:
    from benchmarks.synthetic import generate, iter_synthetic

    chunks = list(iter_synthetic(600, seed=7))
    articles = [a for c in chunks for a in c.articles]
    assert articles == generate(600, seed=7).articles  # labels beside the texts, not in
    labels = [g for c in chunks for g in c.copy_groups]
    gold = [g for c in chunks for g in c.gold]
    assert len(labels) == 600
    assert all(label.startswith(story + "/") for label, story in zip(labels, gold, strict=True))
    copies = [label for label in labels if label.endswith("/copies")]
    assert len(set(copies)) < len(copies) < 600  # copies share groups; rewrites stand alone


def test_benchmark_prints_one_table_on_a_tiny_corpus(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    from benchmarks import dedupe as bench

    rows = bench.main(["--docs", "200", "--in-process", "--out-dir", str(tmp_path),
                       "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("| system |") == 1
    assert [r.system for r in rows] == ["dedup", "datasketch", "rensa", "exact-hash"]
    for r in rows:  # rensa is a benchmark extra (`.[bench]`): CI's `.[test]` may lack it
        if r.system == "rensa" and r.status.startswith("not available"):
            continue
        assert r.status == "ok" and r.f1 is not None and 0 <= r.f1 <= 1, (r.system, r.status)
    by = {r.system: r for r in rows}
    dedup_f1, exact_f1 = by["dedup"].f1, by["exact-hash"].f1
    assert dedup_f1 is not None and exact_f1 is not None and dedup_f1 > exact_f1
    assert by["exact-hash"].precision == 1.0
    assert (tmp_path / "dedupe-200.md").read_text() == out


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_cli_writes_the_input_back_under_its_own_names(tmp_path: Path, suffix: str) -> None:
    # Kept rows can be joined back to the source: its id, text and date column names, its
    # own "copies" column kept as input_copies beside ours; groups keyed by its id column.
    seed = read_seeds()[0]
    # Columns that dedup cluster writes (cluster_id, ...) are not dedupe's outputs: kept.
    rows = [{"doc_id": f"d{k}", "body": seed["text"], "when": f"2024-03-2{k}",
             "copies": "mine", "cluster_id": "c1", "similarity": 0.5} for k in range(3)]
    src = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        pl.DataFrame(rows).write_parquet(src)
    else:
        src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out, groups = tmp_path / "kept.jsonl", tmp_path / "groups.jsonl"
    result = _run("dedupe", str(src), "-o", str(out), "--groups", str(groups), "--id-col",
                  "doc_id", "--text-col", "body", "--date-col", "when", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "carried as 'input_copies'" in result.stderr
    kept = [json.loads(line) for line in out.open()]
    assert [(r["doc_id"], r["body"], r["input_copies"], r["copies"]) for r in kept] == [
        ("d0", seed["text"], "mine", 3)]
    assert "id" not in kept[0] and "text" not in kept[0] and "when" in kept[0]
    assert (kept[0]["cluster_id"], kept[0]["similarity"]) == ("c1", 0.5)
    assert "input_cluster_id" not in result.stderr
    assert [json.loads(line)["doc_id"] for line in groups.open()] == ["d0", "d1", "d2"]


def test_cli_never_writes_over_an_input_or_keeps_stale_rejects(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "x"}\n')
    before = src.read_bytes()
    for args in (["-o", str(src)], ["-o", str(tmp_path / "o.jsonl"), "--groups", str(src)],
                 ["-o", str(tmp_path / "o.jsonl"), "--groups", str(tmp_path / "o.jsonl")]):
        result = _run("dedupe", str(src), *args)
        assert result.exit_code == 2 and "Error: " in result.output
    assert src.read_bytes() == before
    src.write_text('{"id": "a", "text": "x"}\n{"id": 5, "text": "y"}\n')
    out = tmp_path / "kept.jsonl"
    assert _run("dedupe", str(src), "-o", str(out), "--skip-bad-rows").exit_code == 0
    rejects = tmp_path / "kept.jsonl.rejected.jsonl"
    assert len(rejects.read_text().splitlines()) == 1
    src.write_text('{"id": "a", "text": "x"}\n')
    assert _run("dedupe", str(src), "-o", str(out)).exit_code == 0
    assert not rejects.exists()  # the earlier run's rejects do not describe this output


def test_an_id_column_called_copies_or_copy_group_keeps_its_values(tmp_path: Path) -> None:
    text = read_seeds()[0]["text"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"copies": f"d{k}", "text": text}) + "\n"
                           for k in range(3)))
    out = tmp_path / "kept.jsonl"
    assert _run("dedupe", str(src), "-o", str(out), "--id-col", "copies").exit_code == 0
    assert [(r["input_copies"], r["copies"]) for r in map(json.loads, out.open())] == [
        ("d0", 3)]
    src.write_text(src.read_text().replace('"copies"', '"copy_group"'))
    groups = tmp_path / "groups.jsonl"
    result = _run("dedupe", str(src), "-o", str(out), "--id-col", "copy_group", "--groups",
                  str(groups))
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in groups.open()][1] == {"id": "d1", "copy_group": "d0"}


def test_the_rejects_file_never_replaces_an_input(tmp_path: Path) -> None:
    src = tmp_path / "o.jsonl.rejected.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n')
    result = _run("dedupe", str(src), "-o", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and "rejects file" in result.output
    assert src.read_text() == '{"id": "a", "text": "x"}\n'


def test_an_output_that_cannot_be_written_is_refused_before_any_is_written(
        tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n')
    out = tmp_path / "o.jsonl"
    (tmp_path / "o.jsonl.rejected.jsonl").mkdir()
    result = _run("dedupe", str(src), "-o", str(out), "--skip-bad-rows")
    assert result.exit_code == 2 and "is a folder; pick another -o's rejects file" in result.output
    assert not out.exists()  # not a kept file beside an error
    assert _run("dedupe", str(src), "-o", str(out)).exit_code == 0  # no rejects: no matter
    for groups in (tmp_path, tmp_path / "o.jsonl" / "g.jsonl"):
        result = _run("dedupe", str(src), "-o", str(tmp_path / "p.jsonl"), "--groups", str(groups))
        assert result.exit_code == 2 and "--groups" in result.output
    assert not (tmp_path / "p.jsonl").exists()
