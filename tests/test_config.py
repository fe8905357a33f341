"""Settings from TOML (``--config``, ``dedup config``) and progress bars on the CLI (#20)."""

from __future__ import annotations

import dataclasses
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dedup import cluster
from dedup.cli import main, progress_bar
from dedup.config import ClusterConfig, Config, IndexConfig, RefineConfig
from dedup.configfile import ConfigError, config_from_mapping, config_to_toml, load_config
from dedup.index import StoryIndex
from tests.conftest import SEEDS, read_seeds

# Thresholds no pair of the seeds reaches: with them the two seeds stay apart.
STRICT = "[clustering]\nlink_threshold = 0.9\nedge_threshold = 0.9\n"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _file(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_dedup_config_prints_the_defaults_and_reads_back_equal(tmp_path: Path) -> None:
    result = run("config")
    assert result.exit_code == 0, result.output
    assert config_from_mapping(tomllib.loads(result.stdout)) == Config()
    assert load_config(_file(tmp_path / "d.toml", result.stdout)) == Config()
    assert run("config", "--config", str(tmp_path / "d.toml")).stdout == result.stdout
    lines = result.stdout.splitlines()
    # Comments come from dedup/config.py: the block above a field, the one beside it, and
    # the class docstring under its table.
    at = lines.index("align_threshold = 0.5")
    assert lines[at - 1] == ("# Two sentences state the same claim when their token cosine "
                             "reaches this.")
    assert "num_perm = 128  # datasketch's default; estimation error ~ 1/sqrt(128) = 0.09" in lines
    assert lines[lines.index("[clustering]") + 1] == "# Graph clustering without chaining."
    assert 'join_threshold = "none"' in lines and 'story_refresh = "read"' in lines


def test_every_setting_round_trips_through_toml() -> None:
    changed = Config(
        refine=RefineConfig(sublinear_tf=False, date_window_days=None, idf_power=3.0),
        clustering=ClusterConfig(link_threshold=0.2, max_component_size=7),
        index=IndexConfig(join_threshold=0.25, events_candidates=None, story_refresh="add"),
    )
    for config in (changed, Config()):
        for comments in (True, False):
            text = config_to_toml(config, comments=comments)
            assert config_from_mapping(tomllib.loads(text)) == config
    # A file may set only what it changes; integers are accepted for float settings.
    partial = config_from_mapping({"clustering": {"link_threshold": 1}})
    assert partial == dataclasses.replace(Config(), clustering=ClusterConfig(link_threshold=1.0))
    assert isinstance(partial.clustering.link_threshold, float)


@pytest.mark.parametrize(("text", "message"), [
    ("[clustering]\nlink_treshold = 0.2\n", "unknown key 'clustering.link_treshold'"),
    ("threshold = 0.2\n", "unknown key 'threshold'"),
    ("[clusters]\nlink_threshold = 0.2\n", "unknown key 'clusters'"),
    ('[clustering]\nlink_threshold = "0.2"\n',
     'clustering.link_threshold must be a number, not the string "0.2"'),
    ("[signatures]\nnum_perm = 64.5\n", "signatures.num_perm must be an integer"),
    ("[refine]\nsublinear_tf = 1\n", "refine.sublinear_tf must be true or false"),
    ('[index]\nstory_refresh = "now"\n', 'index.story_refresh must be "read" or "add"'),
    ("clustering = 0.2\n", "clustering must be a table"),
    ("[clustering\n", "not valid TOML"),
    ("[signatures]\nnum_perm = 0\n", "signatures.num_perm must be between 2 and 4,096, not 0"),
    ("[signatures]\nnum_perm = 100000\n", "num_perm must be between 2 and 4,096, not 100000"),
    ("[signatures]\nseed = -1\n", "seed must be between 0 and 4,294,967,295, not -1"),
    # Each in range, unusable together: one line, not datasketch's or scipy's traceback.
    ("[signatures]\nnum_perm = 3\n", "candidates.copies_threshold = 0.5 with "
     "signatures.num_perm = 3 leaves LSH fewer than 2 bands"),
    ("[candidates]\nevents_threshold = 1.0\n", "candidates.events_threshold = 1.0 with"),
    ("[refine]\ntext_weight = 0\nnames_weight = 0\ntitle_weight = 0\nnumbers_weight = 0\n",
     "are all 0: every pair would score 0"),
    ("[clustering]\nlink_threshold = 5\n", "link_threshold must be between 0 and 1, not 5"),
    ("[candidates]\ncopies_threshold = 0\n", "copies_threshold must be above 0 and at most 1"),
])
def test_bad_settings_are_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _file(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=r"bad\.toml: "):
        load_config(path)
    for args in (["cluster", str(SEEDS), "-o", str(tmp_path / "out")],
                 ["index", "add", str(tmp_path / "i.db"), str(SEEDS)], []):
        result = run(*(args or ["config"]), "--config", path)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: {path}: ")
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "i.db").exists()


def test_a_missing_settings_file_is_one_line(tmp_path: Path) -> None:
    result = run("cluster", str(SEEDS), "-o", str(tmp_path), "--config", "nowhere.toml")
    assert result.exit_code == 2
    assert result.stderr == "Error: nowhere.toml: cannot read (No such file or directory)\n"


def test_cluster_uses_the_settings_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("cluster", str(SEEDS), "-o", str(out), "--no-stories").exit_code == 0
    assert len((out / "clusters.jsonl").read_text().splitlines()) == 1
    strict = _file(tmp_path / "strict.toml", STRICT)
    result = run("cluster", str(SEEDS), "-o", str(out), "--no-stories", "--config", strict)
    assert result.exit_code == 0, result.output
    assert len((out / "clusters.jsonl").read_text().splitlines()) == 2


def test_index_keeps_the_settings_it_was_created_with(tmp_path: Path) -> None:
    """A new index stores its settings; later adds and reads use them, and an add with
    other settings stops instead of mixing two clusterings in one index."""
    first, second = (_file(tmp_path / f"{i}.jsonl", json.dumps(row) + "\n")
                     for i, row in enumerate(read_seeds()))
    strict = _file(tmp_path / "strict.toml", STRICT)
    db = str(tmp_path / "i.db")
    assert run("index", "add", db, first, "--config", strict).exit_code == 0
    stored = StoryIndex.read_config(db)
    assert stored == load_config(strict) and stored.clustering.link_threshold == 0.9
    result = run("index", "add", db, second)  # no --config: the index's own settings
    assert result.exit_code == 0, result.output
    assert "  into new ids           1" in result.stderr  # defaults would join the seeds
    assert "  new ids                1" in result.stderr
    with StoryIndex.open(db, stored) as index:
        assert index.stats()["clusters"] == 2

    defaults = _file(tmp_path / "d.toml", run("config").stdout)
    result = run("index", "add", db, second, "--config", defaults, "--skip-bad-rows")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {db}: created with clustering.link_threshold = 0.9, but {defaults} says "
        "0.13 (and 1 more); an index keeps the settings it was created with: drop --config "
        "to use them, or build a new index with these\n")
    # The same settings, or only a different wait for the write lock, are accepted.
    waits = _file(tmp_path / "w.toml", STRICT + "[index]\nbusy_timeout = 5\n")
    for path in (strict, waits):
        result = run("index", "add", db, second, "--config", path, "--skip-bad-rows")
        assert result.exit_code == 0, result.output
    # Defaults for a new index, stored too.
    assert run("index", "add", str(tmp_path / "j.db"), first).exit_code == 0
    assert StoryIndex.read_config(tmp_path / "j.db") == Config()
    assert StoryIndex.read_config(tmp_path / "missing.db") is None


def test_a_bad_stored_config_is_one_clear_line(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "i.db"
    StoryIndex.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '{\"clustering\": {\"x\": 1}}' WHERE key = 'config'")
    result = run("index", "stats", str(db))
    assert result.exit_code == 2
    assert "its stored settings): unknown key 'clustering.x'" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    # CliRunner's stderr is not a terminal: not one byte of progress.
    result = run("cluster", str(SEEDS), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert result.stderr.startswith("articles read") and "\r" not in result.stderr
    result = run("index", "add", str(tmp_path / "i.db"), str(SEEDS))
    assert result.exit_code == 0
    assert result.stderr.startswith("articles added") and "\r" not in result.stderr
    with progress_bar(io.StringIO()) as progress:
        assert progress is None
    # On a terminal: one click bar per stage, each ending at its total.
    screen = _Terminal()
    with progress_bar(screen) as progress:
        assert progress is not None
        cluster(read_seeds(), progress=progress)
        with StoryIndex.open(tmp_path / "j.db") as index:
            index.add(read_seeds(), progress=progress)
    shown = screen.getvalue()
    assert "normalize" in shown and "merge" in shown and "2/2" in shown
    assert "add         [##############################]  2/2" in shown


def test_every_default_lies_in_its_range() -> None:
    # The ranges sit on the fields' types (config.Share, Count, ...); a default outside
    # its own range would make `dedup config`'s printed file unreadable.
    from dedup.configfile import setting_range

    checked = 0
    for section in dataclasses.fields(Config):
        defaults = getattr(Config(), section.name)
        for f in dataclasses.fields(defaults):
            bounds = setting_range(type(defaults), f.name)
            value = getattr(defaults, f.name)
            if bounds is not None and value is not None:
                assert bounds.low <= value <= bounds.high, (section.name, f.name)
                checked += 1
    assert checked >= 35
