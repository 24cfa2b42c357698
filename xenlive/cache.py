"""The stage cache: each stage's output lives under CACHE/<stage>/<key>/ with a manifest beside it.

A key is the sha256 of the canonical JSON of everything the stage reads: its settings, content
digests of the files it uses, the keys of the stages it builds on, tool versions and a stage version.
An entry is built in CACHE/tmp/ and renamed into place only when complete, so an interrupted build
never leaves a half-written entry; `last.json` per stage remembers the inputs of the newest entry
so that a rerun can say what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.errors import BuildError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_file(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content (any hashlib algorithm)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return hash_file(path, "sha256")


@contextlib.contextmanager
def atomic_path(final: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside `final` that replaces it, with `mode`, only if the block succeeds."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(mode)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def digest_tree(root: Path) -> dict[str, str]:
    """Content digest of every file, symlink and directory under root (relative path -> digest).

    File modes are part of the digest (an executable bit matters in an overlay); owners and
    timestamps are not (a fresh checkout must give the same key).
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(path)
            else:
                kind = "x" if st.st_mode & 0o111 else "-"
                out[rel] = f"{kind}:{sha256_file(path)}"
    return out


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads. `files` maps a label to a {relative path: digest} table."""

    stage: str
    version: int
    settings: Mapping[str, Any]
    files: Mapping[str, Mapping[str, str]]
    upstream: Mapping[str, str]  # stage name -> key

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "version": self.version,
            "settings": dict(self.settings),
            "files": {k: dict(v) for k, v in self.files.items()},
            "upstream": dict(self.upstream),
        }

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.as_json()).encode()).hexdigest()[:24]


def explain_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """One line saying why a stage's key changed, from the inputs of its previous entry."""
    if old is None:
        return "no cached entry for this stage"
    reasons: list[str] = []
    if old.get("version") != new["version"]:
        reasons.append(f"stage version {old.get('version')} -> {new['version']}")
    for name, value in new["settings"].items():
        if old.get("settings", {}).get(name) != value:
            reasons.append(f"setting '{name}' changed")
    for label, table in new["files"].items():
        before = old.get("files", {}).get(label, {})
        changed = sorted(p for p in set(table) | set(before) if table.get(p) != before.get(p))
        if changed:
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            reasons.append(f"{label}: {shown}")
    for name, key in new["upstream"].items():
        if old.get("upstream", {}).get(name) != key:
            reasons.append(f"{name} was rebuilt")
    return "; ".join(reasons) or "inputs differ"


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def entry(self, inputs: StageInputs) -> Path:
        return self.root / inputs.stage / inputs.key

    def lookup(self, inputs: StageInputs) -> Path | None:
        path = self.entry(inputs)
        return path if (path / MANIFEST).is_file() else None

    def previous_inputs(self, stage: str) -> dict[str, Any] | None:
        last = self.root / stage / "last.json"
        try:
            data: dict[str, Any] = json.loads(last.read_text())
            return data
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def building(self, inputs: StageInputs, extra: Mapping[str, Any] | None = None) -> Iterator[Path]:
        """Yield an empty directory to build the stage in; on success it becomes the cache entry."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{inputs.stage}-", dir=self.tmp))
        work.chmod(0o755)  # apt inside mmdebstrap downloads as user _apt
        try:
            yield work
            manifest = {"inputs": inputs.as_json(), "key": inputs.key, **(extra or {})}
            (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            final = self.entry(inputs)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                remove_tree(final)
            os.rename(work, final)
            self.remember(inputs)
        finally:
            if work.exists():
                remove_tree(work)

    def remember(self, inputs: StageInputs) -> None:
        last = self.root / inputs.stage / "last.json"
        last.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(last) as tmp:
            tmp.write_text(canonical_json(inputs.as_json()))

    def sweep(self) -> None:
        """Remove what an interrupted build left in CACHE/tmp (releasing any mounts under it first)."""
        if self.tmp.is_dir():
            for leftover in self.tmp.iterdir():
                log.info("removing leftover %s from an interrupted build", leftover)
                remove_tree(leftover)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below path, deepest first."""
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything below path and never crosses into a mount it cannot release."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", str(point)], check=False, stdin=subprocess.DEVNULL)
    remaining = mounts_under(path)
    if remaining:
        raise BuildError(f"cannot remove {path}: {remaining[0]} is still mounted; unmount it and retry")
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
