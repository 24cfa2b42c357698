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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.errors import BuildError, ToolError
from xenlive.fsutil import atomic_path, remove_tree, sha256_file, tree_bytes, walk_files
from xenlive.progress import note

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Verified digests of an entry's files, keyed by (size, mtime, ctime, inode): see check_entry().
STAMP = ".verified.json"
# File times come from a clock that ticks every 1-10 ms: a file changed less than this before it was hashed
# could be changed again with the same ctime, so its digest is not trusted from the stamp (like git's "racy" files).
RACY_NS = 50_000_000
MIB = 2**20
# A tool that failed while its file system had less than this free is taken to have failed for lack of space.
LOW_SPACE = MIB


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_of(inputs_json: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs_json).encode()).hexdigest()[:24]


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
        return key_of(self.as_json())


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


def entry_files(entry: Path) -> dict[str, Path]:
    """The files of a cache entry that its manifest accounts for (all but the manifest and the stamp)."""
    return {
        rel: path for rel, path, st in walk_files(entry) if stat.S_ISREG(st.st_mode) and rel not in (MANIFEST, STAMP)
    }


def describe_files(entry: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of an entry, as its manifest records them."""
    return {rel: {"size": path.stat().st_size, "sha256": sha256_file(path)} for rel, path in entry_files(entry).items()}


def _signature(st: os.stat_result, digest: str) -> list[Any]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest]


def check_entry(entry: Path, inputs: StageInputs | None = None, *, trust_stamp: bool = True) -> str | None:
    """None when the entry is intact, else what is wrong in a few words, naming the file.

    The manifest must belong to the key (and to `inputs`, when given); every file it lists must be there
    with its size and sha256, and no other file. Hashing costs ~0.17 s per 200 MiB here (sha256 with
    SHA-NI, warm page cache; several times that cold), about 1 s for the demo's entries: too much to pay
    on every no-change rebuild (target 5 s). So a file whose size, mtime, ctime and inode are those it had
    when last hashed (recorded in STAMP) is not hashed again: any write, truncation or touch changes its
    ctime, which no user can set back. Sizes are always compared. `trust_stamp=False` hashes everything.
    """
    started = time.time_ns()
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except FileNotFoundError:
        return f"{MANIFEST}: missing"
    except (OSError, ValueError) as exc:
        return f"{MANIFEST}: unreadable ({exc})"
    key = inputs.key if inputs is not None else entry.name
    if not isinstance(manifest, dict) or manifest.get("key") != key or key_of(manifest.get("inputs") or {}) != key:
        return f"{MANIFEST}: does not match the stage's key {key} (edited?)"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return f"{MANIFEST}: records no file sizes and digests (made by an older xenlive)"
    stamp = _read_stamp(entry) if trust_stamp else {}
    verified: dict[str, list[Any]] = {}
    for rel, want in sorted(files.items()):
        try:
            size, digest = int(want["size"]), str(want["sha256"])
        except (TypeError, KeyError, ValueError):
            return f"{MANIFEST}: the record of {rel} is malformed"
        try:
            st = (entry / rel).stat()
        except FileNotFoundError:
            return f"{rel}: missing"
        if st.st_size != size:
            return f"{rel}: {st.st_size} bytes, the manifest says {size}"
        signature = _signature(st, digest)
        if stamp.get(rel) != signature and sha256_file(entry / rel) != digest:
            return f"{rel}: content differs from its sha256 in the manifest"
        verified[rel] = signature
    unlisted = sorted(set(entry_files(entry)) - set(files))
    if unlisted:
        return f"{unlisted[0]}: not in the manifest"
    if verified != stamp:
        _write_stamp(entry, verified, started)
    return None


def _read_stamp(entry: Path) -> dict[str, Any]:
    """The trusted signatures of STAMP: those of files last changed well before they were hashed."""
    try:
        data = json.loads((entry / STAMP).read_text())
        hashed_ns, files = int(data["hashed_ns"]), dict(data["files"])
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    return {rel: sig for rel, sig in files.items() if isinstance(sig, list) and sig[2] < hashed_ns - RACY_NS}


def _write_stamp(entry: Path, verified: Mapping[str, list[Any]], hashed_ns: int) -> None:
    """Record signatures of files hashed after hashed_ns. Best effort: without it the next lookup hashes again."""
    with contextlib.suppress(OSError), atomic_path(entry / STAMP) as tmp:
        tmp.write_text(canonical_json({"hashed_ns": hashed_ns, "files": verified}))


def space_error(what: str, exc: BaseException, where: Path, needed: int) -> BuildError | None:
    """The one-line error for work that failed because its file system is full, or None if it did not.

    Python reports ENOSPC itself; an external tool only says so on its stderr (which we may not have),
    so a tool failure while `where` has under LOW_SPACE free counts as a full disk too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The file named may be elsewhere (copyfile names its source too): name the fullest file system.
        named = [Path(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f]
        if not any(f.is_relative_to(where) for f in named):
            where = min([where, *(f if f.is_dir() else f.parent for f in named)], key=free_bytes)
    elif not (isinstance(exc, ToolError) and ("No space left on device" in str(exc) or free_bytes(where) < LOW_SPACE)):
        return None
    free = free_bytes(where)
    return BuildError(
        f"{what}: no space left on device in {where} (needs about {-(-needed // MIB)} MiB, "
        f"{free // MIB} MiB free; free some space and rerun)"
    )


def free_bytes(path: Path) -> int:
    """Free space of the file system holding path (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


@contextlib.contextmanager
def full_disk_reported(what: str, where: Path, needed: Callable[[], int]) -> Iterator[None]:
    """Turn a failure for lack of space inside the block into space_error's one line."""
    try:
        yield
    except (OSError, ToolError) as exc:
        error = space_error(what, exc, where, needed())
        if error is None:
            raise
        raise error from exc


def flock(path: Path, mode: int, *, wait: bool = True, directory: bool = False) -> int | None:
    """An open descriptor of path holding flock `mode`, or None if `wait` is False and another holds it.

    A lock file is created if missing (a directory must exist: FileNotFoundError). If the file was
    deleted or replaced while we waited (prune removes the lock files of entries it removes, holding
    their lock), lock the new one instead.
    """
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if directory else os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)
        if directory:
            raise FileNotFoundError(errno.ENOENT, "removed while waiting for its lock", str(path))


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
        self._held: list[int] = []  # shared locks on the entries this build uses

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
                signatures = {rel: _signature((final / rel).stat(), f["sha256"]) for rel, f in files.items()}
                _write_stamp(final, signatures, hashed_ns)
                self.remember(inputs)
        finally:
            if fd >= 0:
                os.close(fd)
            if work.exists():
                remove_tree(work)

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
            if stage_dir in (self.tmp, self.locks, self.downloads):
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
            if self.downloads.is_dir():  # pinned files: fetched again (or from --artifacts) when next needed
                st = self.downloads.stat()
                removed.append(
                    EntryInfo(
                        "downloads", "by-digest", self.downloads, tree_bytes(self.downloads), st.st_mtime, st.st_mtime
                    )
                )
                remove_tree(self.downloads)
        return PruneResult(removed, busy)

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
