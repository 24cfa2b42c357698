"""File-system helpers every layer uses: content hashes, atomic writes, walking, sizing and removing trees, and
trees built in memory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from xenlive.errors import BuildError
from xenlive.run import run


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
def atomic_path(final: Path, mode: int = 0o644, *, even_on_error: bool = False) -> Iterator[Path]:
    """A temporary path beside `final` that replaces it, with `mode`, when the block ends: only if the block
    succeeds, or also when it fails with `even_on_error` (a log that must outlive the run it records)."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            yield tmp
        except BaseException:
            if even_on_error:
                _replace(tmp, final, mode)
            raise
        _replace(tmp, final, mode)
    finally:
        tmp.unlink(missing_ok=True)


def _replace(tmp: Path, final: Path, mode: int) -> None:
    tmp.chmod(mode)
    os.replace(tmp, final)


def walk_files(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every file and symlink under root, in a stable order: (relative path, path, lstat)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            yield path.relative_to(root).as_posix(), path, path.lstat()


def digest_tree(root: Path) -> dict[str, str]:
    """Content digest of every file, symlink and directory under root (relative path -> digest).

    File modes are part of the digest (an executable bit matters in an overlay); owners and
    timestamps are not (a fresh checkout must give the same key).
    """
    out: dict[str, str] = {}
    for rel, path, st in walk_files(root):
        if stat.S_ISLNK(st.st_mode):
            out[rel] = "link:" + os.readlink(path)
        elif not stat.S_ISREG(st.st_mode):  # a device node or fifo (in an extracted image): never read it
            out[rel] = f"special:{stat.S_IFMT(st.st_mode):o}:{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        else:
            kind = "x" if st.st_mode & 0o111 else "-"
            out[rel] = f"{kind}:{sha256_file(path)}"
    return out


def tree_bytes(root: Path) -> int:
    """Disk space used below root (each hard-linked file once)."""
    seen: set[int] = set()
    total = 0
    for _rel, _path, st in walk_files(root):
        if st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


def tree_size_mib(tree: Path) -> int:
    """What a tree takes in a file system of 4 KiB blocks, in MiB (rounded up), to size the image written from
    it. Counted from the files themselves (each file's size in whole blocks, a block per directory and per long
    symlink), never from the blocks the tree's own file system uses: a tree in tmpfs (fsutil.in_memory) or on
    a disk gives the same size, and so the same image."""
    block = 4096
    total = block  # the root directory
    seen: set[int] = set()
    for _rel, path, st in walk_files(tree):
        if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += -(-st.st_size // block) * block
        elif stat.S_ISLNK(st.st_mode) and len(os.readlink(path)) >= 60:
            total += block
    for dirpath, dirnames, _files in os.walk(tree):
        total += block * len([d for d in dirnames if not (Path(dirpath) / d).is_symlink()])
    return -(-total // 2**20)


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


GIB = 2**30
# Memory a build leaves to everything else when it builds trees in memory.
MEMORY_RESERVE = 2 * GIB
_reserved = 0  # bytes promised to trees in memory now, across the threads of a build
_reserved_lock = threading.Lock()


def available_memory() -> int:
    """MemAvailable of /proc/meminfo, in bytes (0 if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@contextlib.contextmanager
def in_memory(directory: Path, needed: int) -> Iterator[bool]:
    """Make the new directory `directory` a tmpfs of its own for the block, when the machine has `needed` bytes
    of memory to spare besides MEMORY_RESERVE and what other trees of this build hold; yields whether it did.

    A Debian root filesystem is some 30,000 small files: written to a disk they cost up to a millisecond each
    (measured on a build host: 4.5 s for 5,000 files of 8 KB, 0.2 s in tmpfs). Only the tree lives there; what
    the stage keeps (squashfs, disk image) is written beside it. The directory is removed afterwards, and a
    build killed meanwhile leaves a mount that the next build's sweep of CACHE/tmp unmounts (remove_tree)."""
    global _reserved
    directory.mkdir()
    with _reserved_lock:
        spare = available_memory() - MEMORY_RESERVE - _reserved
        mounted = spare >= needed and os.geteuid() == 0 and shutil.which("mount") is not None
        if mounted:
            _reserved += needed
    try:
        if mounted:
            size = max(needed, spare)  # a limit, not an allocation: pages are taken as files are written
            run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "xenlive-tree", str(directory)])
        yield mounted
    finally:
        if mounted:
            with _reserved_lock:
                _reserved -= needed
        remove_tree(directory)
