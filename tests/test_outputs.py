"""OUTDIR published as one set (issue #22): staging, manifest, stale files, killed runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from benchmarks import fuzz
from dedup import outputs
from dedup.cli import main
from tests.conftest import SEEDS


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _visible(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_manifest_lists_every_file_with_rows_and_sha256(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out), "-j", "1").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "dedup.outputs" and manifest["options"]["stories"] is True
    listed = {f["path"]: f for f in manifest["files"]}
    assert sorted(listed) == ["assignments.parquet", "clusters.jsonl", "stories.jsonl"]
    assert _visible(out) == [*sorted(listed)[:2], "manifest.json", "stories.jsonl"]
    for name, entry in listed.items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["bytes"] == len(data)
    assert listed["assignments.parquet"]["rows"] == pl.read_parquet(
        out / "assignments.parquet").height == 2


def test_stale_outputs_of_earlier_runs_go(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"id": "x", "text": "Storm"}\nnot json\n')
    assert run("cluster", str(bad), "-o", str(out), "--skip-bad-rows").exit_code == 0
    assert (out / "rejected.jsonl").exists() and (out / "assignments.parquet").exists()
    result = run("cluster", str(SEEDS), "-o", str(out), "--output-format", "jsonl",
                 "--no-stories")
    assert result.exit_code == 0, result.output
    assert _visible(out) == ["assignments.jsonl", "clusters.jsonl", "manifest.json"]
    sets = [p for p in out.iterdir() if p.name.startswith(".set-")]
    assert len(sets) == 1  # the old set went with the publish


def test_legacy_folder_is_replaced_and_refused_without_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stories.jsonl").write_text("{}\n")  # written by a dedup before manifests
    (out / "assignments").mkdir()
    (out / "assignments" / "part-00000.parquet").write_text("old")
    result = run("stories", str(out))
    assert result.exit_code == 2 and "no manifest.json" in result.stderr
    assert run("cluster", str(SEEDS), "-o", str(out), "--no-stories").exit_code == 0
    assert _visible(out) == ["assignments.parquet", "clusters.jsonl", "manifest.json"]


def test_leftovers_of_killed_runs_are_cleaned_at_the_next_start(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    (out / ".staging-0123456789ab").mkdir()  # named as staged() names its folders
    (out / ".staging-0123456789ab" / ".stories.jsonl.x").write_bytes(b"x" * 1000)
    (out / ".set-0123456789ab").mkdir()
    os.symlink(".current/rejected.jsonl", out / "rejected.jsonl")  # a dangling link
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert len(hidden) == 3 and hidden[:2] == [".current", ".lock"]
    assert hidden[2].startswith(".set-") and "rejected.jsonl" not in _visible(out)
    (out / ".staging-0123456789ab").mkdir()
    with outputs.staged(out) as staging:  # cleaned when a run starts, not only at commit
        assert not (out / ".staging-0123456789ab").exists() and staging.path.is_dir()
    assert not staging.path.exists()  # never committed: removed


def test_a_failed_run_keeps_the_earlier_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    before = fuzz._snapshot(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    assert run("cluster", str(bad), "-o", str(out)).exit_code == 2
    assert fuzz._snapshot(out) == before


def test_stories_refuses_a_file_changed_after_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    found = outputs.open_set(out)
    path = found.folder / "stories.jsonl"
    path.write_bytes(path.read_bytes().replace(b"143", b"999"))
    result = run("stories", str(out))
    assert result.exit_code == 2 and "does not match manifest.json" in result.stderr


def test_a_reader_keeps_its_set_while_another_run_commits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    found = outputs.open_set(out)
    first = (found.folder / "clusters.jsonl").read_bytes()
    assert run("cluster", str(SEEDS), "-o", str(out), "--no-stories").exit_code == 0
    assert outputs.open_set(out).path("stories.jsonl") is None
    with pytest.raises(FileNotFoundError):  # the old set's folder went at the publish
        (found.folder / "clusters.jsonl").read_bytes()
    assert (out / "clusters.jsonl").read_bytes() == first  # same clusters, new set


def test_killed_publish_leaves_the_old_or_the_new_set(tmp_path: Path) -> None:
    """The publish killed (SIGKILL) at each of its file-system calls in turn."""
    trials, failures = fuzz.kill_commit_steps(tmp_path)
    assert trials >= 10 and not failures, failures


def test_killed_cluster_run_leaves_the_old_or_the_new_set(tmp_path: Path) -> None:
    """``dedup cluster`` killed at random times (``python -m benchmarks.fuzz`` runs 50)."""
    assert fuzz.kill_cluster_trials(1, tmp_path, 300, seed=22) == []


def test_one_run_writes_a_folder_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with outputs.staged(out) as first:
        with (pytest.raises(outputs.OutputError, match="another dedup run is writing"),
              outputs.staged(out)):
            pass
        assert first.path.is_dir()  # the second run did not clean the first's staging


def test_a_users_own_file_with_an_output_name_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "stories.jsonl").write_text('{"mine": 1}\n')
    (out / ".set-mine").mkdir()  # a folder of the user's, named like ours
    (out / ".set-mine" / "data").write_text("mine")
    result = run("cluster", str(SEEDS), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {out / 'stories.jsonl'}: not written by dedup (no "
                             "manifest, no assignments beside it): move it away or pick "
                             "another -o folder\n")
    assert (out / "stories.jsonl").read_text() == '{"mine": 1}\n'
    assert not (out / "stories.jsonl").is_symlink()
    (out / "stories.jsonl").unlink()
    assert run("cluster", str(SEEDS), "-o", str(out)).exit_code == 0
    assert (out / ".set-mine" / "data").read_text() == "mine"  # refused or not: never removed


def test_open_set_takes_a_string(tmp_path: Path) -> None:
    assert run("cluster", str(SEEDS), "-o", str(tmp_path / "out")).exit_code == 0
    assert outputs.open_set(str(tmp_path / "out")).path("stories.jsonl") is not None
