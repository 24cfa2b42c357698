"""File-system helpers every layer uses: content hashes, atomic writes, walking, sizing and removing trees."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
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
    """Disk space a tree uses, in MiB (du), to size the file system image written from it."""
    proc = run(["du", "-s", "--block-size=1M", str(tree)], capture=True)
    return int((proc.stdout or b"0").split()[0])


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
