"""An output folder published as one set: every file of a run appears at once, or none.

Why: ``dedup cluster -o OUTDIR`` writes several files that only mean something together
(assignments, clusters, stories, rejected rows). Replacing them one by one let a killed run
leave new assignments beside old stories, and files an earlier run wrote but this one does
not (``rejected.jsonl``, ``assignments.parquet`` after switching to JSONL) lived on beside
the new ones.

How (the layout of a versioned folder swapped by one rename, as a database swaps a
snapshot; POSIX ``rename`` of a symlink is atomic):

- a run writes into ``OUTDIR/.staging-XXXX``; ``commit`` writes ``manifest.json`` there
  last (each file's path, rows, bytes and sha256, the run's options and the dedup
  version), renames the folder to ``OUTDIR/.set-XXXX`` and then atomically replaces the
  symlink ``OUTDIR/.current`` with one pointing at it: that rename is the commit point;
- the names users open (``OUTDIR/assignments.parquet``, ``OUTDIR/stories.jsonl``,
  ``OUTDIR/manifest.json``, ...) are fixed relative symlinks ``NAME -> .current/NAME``, so
  they all switch to the new set at the same instant; a name the new set lacks dangles
  (is absent) from that instant and its link is then removed;
- one run at a time holds ``OUTDIR/.lock`` (``flock``; released by the kernel when a run
  is killed), and a starting run removes what killed runs left: staging folders, sets
  no link points at, dangling links.

A reader resolves ``.current`` once (``open_set``) and reads every file from that set's
folder, so even a commit in the middle of its reading does not mix two sets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one run at a time
    fcntl = None  # type: ignore[assignment]

__all__ = ["MANIFEST", "OUTPUT_NAMES", "OutputError", "OutputSet", "Staging", "open_set",
           "staged"]

MANIFEST = "manifest.json"
FORMAT = "dedup.outputs"
FORMAT_VERSION = 1
# Every top-level name a run may publish; a legacy (pre-manifest) file with one of these
# names is replaced or removed when a set is published over it.
OUTPUT_NAMES = ("assignments", "assignments.jsonl", "assignments.parquet", "clusters.jsonl",
                "stories.jsonl", "rejected.jsonl", MANIFEST)
_CURRENT = ".current"
_SET = ".set-"
_STAGING = ".staging-"
_TRASH = ".trash-"
_LOCK = ".lock"
# What ``staged`` names its folders (a 12-hex-digit token): only these are ever removed, so
# a user's own ``.set-mine`` in the folder is left alone.
_OURS = re.compile(r"\.(?:set|staging|trash)-[0-9a-f]{12}")


class OutputError(Exception):
    """An output folder that cannot be written or read as a set; one line naming it."""


@dataclass(frozen=True)
class OutputSet:
    """One published set: the folder its files are read from and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    def path(self, name: str) -> Path | None:
        """The file ``name`` of this set, or None when the set does not hold it."""
        listed = {f["path"] for f in self.manifest.get("files", [])}
        return self.folder / name if name in listed else None

    def entry(self, name: str) -> dict[str, Any] | None:
        """The manifest record (rows, bytes, sha256) of file ``name``."""
        return next((f for f in self.manifest.get("files", []) if f["path"] == name), None)


class Staging:
    """A run's private folder inside OUTDIR; ``commit`` publishes it as the new set."""

    def __init__(self, outdir: Path, folder: Path) -> None:
        self.outdir = outdir
        self.path = folder
        self.committed = False

    def commit(self, options: Mapping[str, Any], version: str) -> dict[str, Any]:
        """Write the manifest (last), then make this set OUTDIR's outputs in one rename."""
        files = []
        for item in sorted(p for p in self.path.rglob("*") if p.is_file()):
            name = item.relative_to(self.path).as_posix()
            if name == MANIFEST:
                continue
            files.append({"path": name, **_describe(item)})
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "dedup_version": version,
                    "options": dict(options), "files": files}
        target = self.path / MANIFEST
        with open(target, "w", encoding="utf-8", newline="\n") as out:
            out.write(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
            _sync(out)
        _sync_dir(self.path)
        suffix = self.path.name[len(_STAGING):]
        folder = self.outdir / f"{_SET}{suffix}"
        os.rename(self.path, folder)
        self.path = folder
        names = {f["path"].split("/", 1)[0] for f in files} | {MANIFEST}
        trash = self.outdir / f"{_TRASH}{suffix}"
        for name in sorted(names):
            _link_through_current(self.outdir, name, trash)
        link = self.outdir / f"{_CURRENT}.{suffix}"
        os.symlink(folder.name, link)
        os.replace(link, self.outdir / _CURRENT)  # the commit point
        _sync_dir(self.outdir)
        self.committed = True
        for name in OUTPUT_NAMES:
            if name not in names:
                _remove_stale(self.outdir / name, trash)
        _clean(self.outdir, keep=folder.name)
        return manifest


@contextlib.contextmanager
def staged(outdir: Path) -> Iterator[Staging]:
    """A staging folder in ``outdir`` while holding its lock; removed unless committed.

    Cleans what killed runs left first. A folder this call created is removed again when
    the run fails, so a failed first run leaves no trace.
    """
    created = not outdir.exists()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        lock = open(outdir / _LOCK, "a+b")  # noqa: SIM115
    except OSError as err:
        raise OutputError(f"{outdir}: cannot write the outputs ({err.strerror or err}); "
                          "pick another -o folder") from None
    staging: Staging | None = None
    try:
        try:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"{outdir}: another dedup run is writing this folder; wait for "
                              "it or pick another -o folder") from None
        _refuse_foreign(outdir)  # before any cleaning: a refused run removes nothing
        _clean(outdir, keep=_current_target(outdir))
        folder = outdir / f"{_STAGING}{secrets.token_hex(6)}"
        folder.mkdir()
        staging = Staging(outdir, folder)
        yield staging
        if not staging.committed:  # a caller that chose not to publish
            shutil.rmtree(staging.path, ignore_errors=True)
    except BaseException:
        if staging is not None and not staging.committed:
            shutil.rmtree(staging.path, ignore_errors=True)
        if created and (staging is None or not staging.committed):
            lock.close()
            shutil.rmtree(outdir, ignore_errors=True)
        raise
    finally:
        lock.close()


def open_set(outdir: Path | str) -> OutputSet:
    """The set OUTDIR holds now, read through its manifest; OutputError without one.

    ``.current`` is resolved once, so the files read from ``OutputSet.folder`` all belong
    to this set even if another run commits meanwhile. A folder copied with its links
    followed (``cp -rL``) holds the manifest itself and is read in place.
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise OutputError(f"{outdir}: no such output folder; run `dedup cluster INPUT -o "
                          f"{outdir}` first")
    for _ in range(5):  # a commit may retire the set between readlink and open
        target = _current_target(outdir)
        folder = outdir / target if target else outdir
        try:
            text = (folder / MANIFEST).read_text(encoding="utf-8")
        except FileNotFoundError:
            if target and _current_target(outdir) != target:
                continue
            raise OutputError(
                f"{outdir}: no {MANIFEST}, so not a complete `dedup cluster` output (an "
                f"older dedup or a run that did not finish wrote it); run `dedup cluster "
                f"INPUT -o {outdir}` again") from None
        except (OSError, UnicodeDecodeError) as err:
            raise OutputError(f"{outdir / MANIFEST}: cannot read ({err})") from None
        try:
            manifest = json.loads(text)
            if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), list):
                raise ValueError("not a dedup output manifest")
        except (ValueError, AttributeError) as err:
            raise OutputError(f"{outdir / MANIFEST}: damaged manifest ({err}); run `dedup "
                              f"cluster INPUT -o {outdir}` again") from None
        return OutputSet(folder, manifest)
    raise OutputError(f"{outdir}: its outputs kept changing while being read; try again")


class HashingReader:
    """Lines of a set's file, hashed as read, so a reader checks them against the manifest
    without reading the file twice."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for line in self.handle:
            self.digest.update(line)
            yield line

    def hexdigest(self) -> str:
        """sha256 of every byte read so far (the remainder is read first)."""
        for chunk in iter(lambda: self.handle.read(1 << 20), b""):
            self.digest.update(chunk)
        return self.digest.hexdigest()


def _describe(path: Path) -> dict[str, Any]:
    """Rows, bytes and sha256 of one output file (rows: lines, or Parquet rows)."""
    digest = hashlib.sha256()
    lines = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            lines += chunk.count(b"\n")
        os.fsync(handle.fileno())
    rows = lines
    if path.suffix == ".parquet":
        import polars as pl

        rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _sync(handle: IO[Any]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (a power cut, not a kill, needs this)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_foreign(outdir: Path) -> None:
    """An ``OutputError`` when a file with an output name is not ours to replace.

    A set's names are our links; a folder an older dedup wrote (before manifests) holds
    plain files, always with an assignments table among them, and those are replaced. A
    ``stories.jsonl`` of the user's own, alone in the folder, is neither.
    """
    plain = [n for n in OUTPUT_NAMES
             if (outdir / n).exists() and not (outdir / n).is_symlink()]
    legacy = any(n.startswith("assignments") for n in plain)
    if plain and not legacy and _current_target(outdir) is None:
        raise OutputError(f"{outdir / plain[0]}: not written by dedup (no manifest, no "
                          "assignments beside it): move it away or pick another -o folder")


def _current_target(outdir: Path) -> str | None:
    try:
        target = os.readlink(outdir / _CURRENT)
    except OSError:
        return None
    return target if target.startswith(_SET) and "/" not in target else None


def _is_our_link(path: Path) -> bool:
    try:
        return os.readlink(path) == f"{_CURRENT}/{path.name}"
    except OSError:
        return False


def _link_through_current(outdir: Path, name: str, trash: Path) -> None:
    """Make ``outdir/name`` the link ``.current/name`` (what it shows switches with it)."""
    path = outdir / name
    if _is_our_link(path):
        return
    if path.is_dir() and not path.is_symlink():  # a folder from an older dedup
        trash.mkdir(exist_ok=True)
        path.rename(trash / name)
    link = outdir / f".{name}.link-{secrets.token_hex(4)}"
    os.symlink(f"{_CURRENT}/{name}", link)
    os.replace(link, path)


def _remove_stale(path: Path, trash: Path) -> None:
    """Remove an output name the new set does not hold (its link now dangles)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        trash.mkdir(exist_ok=True)
        path.rename(trash / path.name)


def _clean(outdir: Path, keep: str | None) -> None:
    """Remove what runs left behind: staging and trash folders, sets other than ``keep``
    (by their names, ``_OURS``), half-made links, and output links that point at nothing."""
    for item in outdir.iterdir():
        name = item.name
        if _OURS.fullmatch(name) and name != keep:
            shutil.rmtree(item, ignore_errors=True)
        elif (name.startswith(f"{_CURRENT}.") or (name.startswith(".") and ".link-" in name)
              or (name in OUTPUT_NAMES and _is_our_link(item) and not item.exists())):
            item.unlink(missing_ok=True)
