"""A clone on its own has everything the tests and benchmarks read (#20)."""

from __future__ import annotations

import json

from benchmarks.corpora import ecbplus_dir
from tests.conftest import ECBPLUS, ROOT

# Spelled in pieces so that this file does not match itself.
_OUTSIDE = (".." + "/shared", "DEDUP_" + "SHARED", "/work/" + "shared", '"shared"' + ' / "data"')
_SKIP_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
              ".hypothesis", "build", "dist", "out", "data"}


def test_the_ecbplus_dev_split_ships_with_its_licence() -> None:
    folder = ecbplus_dir()
    assert folder == ROOT / "benchmarks" / "data" / "ecbplus-dev" == ECBPLUS.parent
    assert {p.name for p in folder.iterdir()} == {
        "articles.jsonl", "README.md", "LICENSEDATA.TXT", "COPYING-CC.TXT"}
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 3.0" in readme and "Cybulska and Vossen" in readme
    assert "Attribution 3.0 Unported" in (folder / "COPYING-CC.TXT").read_text("latin-1")
    rows = [json.loads(line) for line in ECBPLUS.open(encoding="utf-8")]
    assert len(rows) == 509 and len({r["cluster"] for r in rows}) == 44


def test_nothing_reads_outside_the_repository() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if (not path.is_file() or set(rel.parts[:-1]) & _SKIP_DIRS
                or rel.parts[0].endswith(".egg-info")
                or path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ""}):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{rel}: {word}" for word in _OUTSIDE if word in text]
    assert not offenders, offenders

