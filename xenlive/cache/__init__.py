"""The stage cache: each stage's output lives under CACHE/<stage>/<key>/ with a manifest beside it.

A key is the sha256 of the canonical JSON of everything the stage reads: its settings, content
digests of the files it uses, the keys of the stages it builds on, tool versions and a stage version.
An entry is built in CACHE/tmp/ and renamed into place only when complete, so an interrupted build
never leaves a half-written entry; `last.json` per stage remembers the inputs of the newest entry
so that a rerun can say what changed.

Faults it survives:
- Two builds at once: each stage key has a lock file, CACHE/locks/<stage>.<key>.lock (flock), held
  while that entry is looked up and built; a second build waits for it and then reuses the entry.
  A build holds a shared flock on every entry directory it uses (and an exclusive one on its work
  directory), so `cache prune` and the sweep of CACHE/tmp leave them alone.
- Damage: the manifest records the size and sha256 of every file; lookup checks them and replaces a
  damaged entry with a fresh build, with a one-line warning.
- A full disk: the stage fails with one line naming the stage and the directory, and its work
  directory is removed, so nothing incomplete stays behind.

The keys are in cache/keys.py, an entry's manifest and its checks in cache/entries.py, the full-disk
message in cache/space.py and the locks in cache/locks.py; the Cache itself is here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.cache.entries import MANIFEST, check_entry, describe_files, file_signature, write_stamp
from xenlive.cache.keys import StageInputs, canonical_json, explain_change, key_of
from xenlive.cache.locks import flock
from xenlive.cache.space import full_disk_reported, space_error
from xenlive.errors import ToolError
from xenlive.fsutil import atomic_path, remove_tree, tree_bytes, walk_files
from xenlive.progress import note

__all__ = [
    "MANIFEST",
    "Cache",
    "EntryInfo",
    "PruneResult",
    "StageInputs",
    "canonical_json",
    "check_entry",
    "explain_change",
    "full_disk_reported",
    "key_of",
    "space_error",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntryInfo:
    """A cache entry as `cache list` shows it."""

    stage: str
    key: str
    path: Path
    size: int
    created: float  # when it was built (its manifest's mtime)
    last_used: float  # when a build last used it (its directory's mtime)


@dataclass(frozen=True)
class PruneResult:
    removed: list[EntryInfo]
    busy: list[EntryInfo]  # kept: a running build holds them


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.locks = root / "locks"
        self.downloads = root / "downloads"  # pinned files by digest (xenlive.download), not stage entries
        self.debs = root / "debs"  # Debian archive files apt downloaded (xenlive.debcache), not stage entries
        self._held: list[int] = []  # shared locks on the entries this build uses

    def require_own(self) -> None:
        """A build uses only a cache that belongs to whoever builds: root never uses entries a user wrote (a
        cache named by a preserved XDG_CACHE_HOME under sudo, say), and a user never another's. In a user's build
        (root of a user namespace) the user's own cache belongs to root."""
        try:
            owner = self.root.stat().st_uid
        except FileNotFoundError:
            return
        if owner != os.geteuid():
            raise ToolError(
                f"the cache {self.root} belongs to uid {owner}, not to this build's user: a build uses only a "
                "cache of its own (hint: give --cache-dir a directory of yours; under sudo, keep the caller's "
                "XDG_CACHE_HOME out, e.g. without -E)"
            )

    def close(self) -> None:
        """Release the entries this build used (so that `cache prune` may remove them)."""
        while self._held:
            os.close(self._held.pop())

    def entry(self, inputs: StageInputs) -> Path:
        return self.root / inputs.stage / inputs.key

    def lock_file(self, stage: str, key: str) -> Path:
        return self.locks / f"{stage}.{key}.lock"

    @contextlib.contextmanager
    def stage_lock(self, inputs: StageInputs) -> Iterator[bool]:
        """Hold the lock of this stage key (look it up and build it under it); yields whether we waited."""
        self.locks.mkdir(parents=True, exist_ok=True)
        path = self.lock_file(inputs.stage, inputs.key)
        fd = flock(path, fcntl.LOCK_EX, wait=False)
        waited = fd is None
        if fd is None:
            holder = path.read_text().strip() or "unknown"
            note(f"waiting for stage {inputs.stage} (key {inputs.key}), being built by pid {holder}")
            fd = flock(path, fcntl.LOCK_EX)
        assert fd is not None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield waited
        finally:
            os.close(fd)

    def lookup(self, inputs: StageInputs) -> Path | None:
        """The intact entry for these inputs, or None. A damaged entry is removed, with a warning.

        Call it under stage_lock(). The entry stays share-locked until close()."""
        path = self.entry(inputs)
        try:
            fd = flock(path, fcntl.LOCK_SH, directory=True)
        except FileNotFoundError:
            return None
        assert fd is not None
        problem = check_entry(path, inputs)
        if problem is None:
            self._held.append(fd)
            os.utime(path)  # last use, for `cache prune`
            return path
        os.close(fd)
        log.warning("warning: stage %s: cached entry %s is damaged (%s); rebuilding it", inputs.stage, path, problem)
        self.discard(path)
        return None

    def discard(self, entry: Path) -> None:
        """Move an entry out of the way, then delete it."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f"{entry.parent.name}-discarded-", dir=self.tmp))
        os.rename(entry, aside / entry.name)
        remove_tree(aside)

    def previous_inputs(self, stage: str) -> dict[str, Any] | None:
        last = self.root / stage / "last.json"
        try:
            data: dict[str, Any] = json.loads(last.read_text())
            return data
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def building(self, inputs: StageInputs, extra: Mapping[str, Any] | None = None) -> Iterator[Path]:
        """Yield an empty directory to build the stage in; on success it becomes the cache entry.

        On failure, or when the disk fills up (one clear BuildError), the directory is removed."""
        work, fd = self._new_work_dir(inputs.stage)
        try:
            with full_disk_reported(f"stage {inputs.stage}", self.tmp, lambda: self._needed(inputs.stage, work)):
                yield work
                hashed_ns = time.time_ns()
                files = describe_files(work)
                manifest = {"inputs": inputs.as_json(), "key": inputs.key, "files": files, **(extra or {})}
                (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                final = self.entry(inputs)
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():
                    remove_tree(final)
                os.rename(work, final)
                fcntl.flock(fd, fcntl.LOCK_SH)
                self._held.append(fd)
                fd = -1
                signatures = {rel: file_signature((final / rel).stat(), f["sha256"]) for rel, f in files.items()}
                write_stamp(final, signatures, hashed_ns)
                self.remember(inputs)
        finally:
            if fd >= 0:
                os.close(fd)
            if work.exists():
                remove_tree(work)

    @contextlib.contextmanager
    def scratch(self, name: str) -> Iterator[Path]:
        """An empty directory under CACHE/tmp for work that is no entry (the ISO's small files), removed after;
        locked, so that a concurrent build's sweep leaves it alone."""
        work, fd = self._new_work_dir(name)
        try:
            yield work
        finally:
            remove_tree(work)
            os.close(fd)

    def _new_work_dir(self, stage: str) -> tuple[Path, int]:
        """A fresh directory under CACHE/tmp, exclusively locked so that a sweep leaves it alone."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        while True:
            work = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=self.tmp))
            try:
                fd = flock(work, fcntl.LOCK_EX, wait=False, directory=True)
            except FileNotFoundError:
                continue  # swept before we could lock it
            if fd is None:
                continue  # a sweep holds it and is removing it
            work.chmod(0o755)  # apt inside mmdebstrap downloads as user _apt
            return work, fd

    def _needed(self, stage: str, work: Path) -> int:
        """What a stage needs, roughly: what it wrote before failing, or its newest entry's size if larger."""
        sizes = [tree_bytes(work)] if work.exists() else [0]
        entries = [e for e in self.entries() if e.stage == stage]
        if entries:
            sizes.append(max(entries, key=lambda e: e.created).size)
        return max(sizes)

    def remember(self, inputs: StageInputs) -> None:
        last = self.root / inputs.stage / "last.json"
        last.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(last) as tmp:
            tmp.write_text(canonical_json(inputs.as_json()))

    def sweep(self) -> None:
        """Remove what an interrupted build left in CACHE/tmp (releasing any mounts under it first).

        A work directory of a build still running is locked by it and left alone."""
        if not self.tmp.is_dir():
            return
        for leftover in sorted(self.tmp.iterdir()):
            if not leftover.is_dir():
                leftover.unlink(missing_ok=True)
                continue
            try:
                fd = flock(leftover, fcntl.LOCK_EX, wait=False, directory=True)
            except FileNotFoundError:
                continue
            if fd is None:
                log.debug("leaving %s: a running build uses it", leftover)
                continue
            try:
                log.info("removing leftover %s from an interrupted build", leftover)
                remove_tree(leftover)
            finally:
                os.close(fd)

    def entries(self) -> list[EntryInfo]:
        """Every entry in the cache, by stage and key."""
        found = []
        stage_dirs = [d for d in self.root.iterdir() if d.is_dir()] if self.root.is_dir() else []
        for stage_dir in sorted(stage_dirs):
            if stage_dir in (self.tmp, self.locks, self.downloads, self.debs):
                continue
            for entry in sorted(d for d in stage_dir.iterdir() if d.is_dir()):
                manifest = entry / MANIFEST
                created = manifest.stat().st_mtime if manifest.exists() else entry.stat().st_mtime
                found.append(
                    EntryInfo(stage_dir.name, entry.name, entry, tree_bytes(entry), created, entry.stat().st_mtime)
                )
        return found

    def prune(
        self,
        *,
        older_than: float | None = None,
        max_size: int | None = None,
        everything: bool = False,
        now: float | None = None,
    ) -> PruneResult:
        """Remove entries unused for `older_than` seconds, then the least recently used ones until the
        cache holds at most `max_size` bytes (or all of them). Entries a running build holds are kept."""
        now = time.time() if now is None else now
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        removed, busy = [], []
        for entry in entries:
            stale = older_than is not None and now - entry.last_used > older_than
            too_big = max_size is not None and total > max_size
            if not (everything or stale or too_big):
                continue
            if self._remove_unless_busy(entry):
                removed.append(entry)
                total -= entry.size
            else:
                busy.append(entry)
        if everything:
            self.sweep()
            # Pinned files and Debian packages: fetched again (or from --artifacts) when next needed.
            for store, name in ((self.downloads, "by-digest"), (self.debs, "packages")):
                if store.is_dir():
                    st = store.stat()
                    removed.append(EntryInfo(store.name, name, store, tree_bytes(store), st.st_mtime, st.st_mtime))
                    remove_tree(store)
        elif older_than is not None:
            removed += self._prune_debs(now - older_than)
        return PruneResult(removed, busy)

    def package_files(self) -> tuple[int, int]:
        """How many files the package cache (CACHE/debs) holds, and their size in bytes."""
        if not self.debs.is_dir():
            return 0, 0
        sizes = [st.st_blocks * 512 for _rel, _path, st in walk_files(self.debs) if stat.S_ISREG(st.st_mode)]
        return len(sizes), sum(sizes)

    def _prune_debs(self, unused_since: float) -> list[EntryInfo]:
        """The Debian packages no build used since `unused_since` (a build marks each file it serves), as one
        line: a running build fetches again what it misses."""
        if not self.debs.is_dir():
            return []
        freed, count = 0, 0
        for _rel, path, st in list(walk_files(self.debs)):
            if stat.S_ISREG(st.st_mode) and not path.name.endswith(".sha256") and st.st_mtime < unused_since:
                freed += st.st_blocks * 512
                count += 1
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".sha256").unlink(missing_ok=True)
        if not count:
            return []
        return [EntryInfo("debs", f"{count} files", self.debs, freed, unused_since, unused_since)]

    def _remove_unless_busy(self, entry: EntryInfo) -> bool:
        self.locks.mkdir(parents=True, exist_ok=True)
        lock = self.lock_file(entry.stage, entry.key)
        build_fd = flock(lock, fcntl.LOCK_EX, wait=False)
        if build_fd is None:
            return False
        try:
            use_fd = flock(entry.path, fcntl.LOCK_EX, wait=False, directory=True)
            if use_fd is None:
                return False
            try:
                remove_tree(entry.path)
            finally:
                os.close(use_fd)
            lock.unlink(missing_ok=True)
            return True
        finally:
            os.close(build_fd)

    def verify(self) -> list[tuple[EntryInfo, str]]:
        """Hash every entry in full; the damaged ones with what is wrong."""
        return [(e, problem) for e in self.entries() if (problem := check_entry(e.path, trust_stamp=False))]
