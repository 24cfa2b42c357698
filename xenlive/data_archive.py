"""xenlive's data trees (recipes/, overlays/, guest-images/, grub/, starter/ and xenlive.project) as an
installed xenlive carries them: one reproducible tar in the package, made when the wheel is built
(hatch_build.py) and unpacked on first use into a directory of the user's cache (paths.data_dir()).

Why an archive and not the files themselves: a wheel is a zip, which holds no symlinks. Built with the
files, the wheel turned runit's `runsvdir` links into directories and systemd's masks and `wants` links into
regular files; hatchling left out each directory it had already walked through a link (its safe_walk()
follows links and skips an inode seen before: the runit guest's etc/sv/, reached first through
etc/runit/runsvdir/); and pip byte-compiled the web console, adding a __pycache__ that the config stage
copied into dom0. The guest image's stage key then differed from a checkout's, and the guest never got a
login. A tar keeps links and modes, and pip leaves it as it is.

This module imports nothing of xenlive: the build hook loads it by its path, where xenlive's dependencies
are not installed.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TREES = ("grub", "guest-images", "overlays", "recipes", "starter", "xenlive.project")
ARCHIVE = "data.tar"  # in the package, beside this module


class DataArchiveError(RuntimeError):
    """An archive that does not unpack to the trees it lists."""


def is_bytecode(name: str) -> bool:
    """Whether a file or directory is Python's byte-compiled code (a __pycache__, a .pyc): made beside a .py by
    whatever imported or installed it, never data of a tree."""
    return name == "__pycache__" or name.endswith(".pyc")


def data_mode(st_mode: int) -> int:
    """The permission bits a data file keeps: its own, without write for group and others (as
    fsutil.overlay_mode(): a checkout made with umask 002 gives the same archive and the same trees)."""
    return stat.S_IMODE(st_mode) & ~0o022


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every directory, file and symlink of the trees under root (bytecode left out), sorted: (relative path,
    lstat). Links are never followed."""
    for top in TREES:
        path = root / top
        if not path.is_symlink() and not path.exists():
            continue
        yield top, path.lstat()
        if not path.is_dir() or path.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not is_bytecode(d))
            base = Path(dirpath)
            for name in sorted(dirnames + [f for f in filenames if not is_bytecode(f)]):
                yield (base / name).relative_to(root).as_posix(), (base / name).lstat()


def listing(root: Path) -> dict[str, str]:
    """The trees under root as the archive holds them: relative path -> "dir MODE", "file MODE SHA256" or
    "link TARGET". Two trees with the same listing give the same builds."""
    out = {}
    for rel, st in _walk(root):
        path = root / rel
        if stat.S_ISLNK(st.st_mode):
            out[rel] = f"link {os.readlink(path)}"
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = f"dir {data_mode(st.st_mode):o}"
        elif stat.S_ISREG(st.st_mode):
            out[rel] = f"file {data_mode(st.st_mode):o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            raise DataArchiveError(f"{path}: neither a file, a directory nor a symlink")
    return out


def archive_listing(archive: Path) -> dict[str, str]:
    """What an archive made by make_archive() holds, as listing() gives it for the trees it was made from."""
    out = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.issym():
                out[member.name] = f"link {member.linkname}"
            elif member.isdir():
                out[member.name] = f"dir {member.mode:o}"
            elif member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                out[member.name] = f"file {member.mode:o} {hashlib.sha256(data.read()).hexdigest()}"
            else:
                raise DataArchiveError(f"{archive}: {member.name}: neither a file, a directory nor a symlink")
    return out


def make_archive(root: Path, out: BinaryIO) -> None:
    """Write the trees under root to `out` as a tar that depends only on their listing: sorted, owned by
    root, dated 0, modes as data_mode() keeps them, no __pycache__ or .pyc."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, st in _walk(root):
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = data_mode(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(root / rel)
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                data = (root / rel).read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                raise DataArchiveError(f"{root / rel}: neither a file, a directory nor a symlink")


def archive_digest(archive: Path) -> str:
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def unpack(archive: Path, into: Path) -> None:
    """Unpack the archive into the new directory `into`, and check that it holds what the archive lists."""
    into.mkdir(mode=0o755)
    with tarfile.open(archive) as tar:
        # "tar" keeps modes and links (links within the trees: tests/unit/test_data_trees.py); "data" would
        # refuse the /dev/null masks of systemd units. Python before 3.11.4 has no filters.
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(into, filter="tar")
        else:
            tar.extractall(into)
    if listing(into) != archive_listing(archive):
        raise DataArchiveError(f"{archive}: unpacked into {into}, which does not hold what the archive lists")
