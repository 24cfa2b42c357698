"""File-system helpers every layer uses: content hashes, atomic writes, walking, laying trees into others,
sizing and removing trees, and trees built in memory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from xenlive.data_archive import is_bytecode
from xenlive.errors import BuildError, InputFileError
from xenlive.inputs import file_kind
from xenlive.run import run

# Symlinks a path may pass through, as the kernel allows before ELOOP.
MAX_SYMLINKS = 40


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


def walk_files(root: Path, overlay: bool = False) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every file and symlink under root, in a stable order: (relative path, path, lstat). With `overlay`,
    Python's bytecode (a __pycache__ beside an overlay's .py, made by importing or installing it) is left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not (overlay and is_bytecode(d)))
        filenames = [f for f in filenames if not (overlay and is_bytecode(f))]
        base = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            yield path.relative_to(root).as_posix(), path, path.lstat()


def digest_tree(root: Path, overlay: bool = False) -> dict[str, str]:
    """Content digest of every file, symlink and directory under root (relative path -> digest); of an
    overlay, as install_tree(overlay=True) lays it (without bytecode).

    File modes are part of the digest as install_tree() keeps them (an executable bit or a 0600 key matters
    in an overlay; a file or directory with the usual 0644 or 0755 is digested as before modes were kept);
    owners and timestamps are not (a fresh checkout must give the same key).
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, _files in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (overlay and is_bytecode(d))]
        for name in dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISDIR(st.st_mode) and overlay_mode(st.st_mode) != 0o755:
                out[Path(dirpath, name).relative_to(root).as_posix() + "/"] = f"dir:{overlay_mode(st.st_mode):o}"
    for rel, path, st in walk_files(root, overlay):
        if stat.S_ISLNK(st.st_mode):
            out[rel] = "link:" + os.readlink(path)
        elif not stat.S_ISREG(st.st_mode):  # a device node or fifo (in an extracted image): never read it
            out[rel] = f"special:{stat.S_IFMT(st.st_mode):o}:{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        else:
            mode = overlay_mode(st.st_mode)
            kind = "x" if st.st_mode & 0o111 else "-"
            if mode not in (0o644, 0o755):
                kind += f"{mode:o}"
            out[rel] = f"{kind}:{sha256_file(path)}"
    return dict(sorted(out.items()))


def overlay_mode(st_mode: int) -> int:
    """The permission bits a file or directory of an overlay keeps in the image: its own, without write
    permission for group and others (a checkout made with umask 002 must not make files writable by all)."""
    return stat.S_IMODE(st_mode) & ~0o022


def not_world_readable(root: Path) -> list[str]:
    """The files and directories under root (relative paths) that others may not read, as an overlay's
    0600 key: what install_tree() keeps so, for a stage's facts."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and not st.st_mode & stat.S_IROTH:
                found.append(Path(dirpath, name).relative_to(root).as_posix())
    return found


def path_in_tree(root: Path, rel: str, *, follow_last: bool = False) -> Path:
    """Where the relative path `rel` leads inside the tree `root`, as it would in a chroot at root: a
    symlink on the way is followed, one with an absolute target from root, and '..' stops at root, so
    the result always lies in root. The last component is followed only with `follow_last`.

    Laying an overlay into a root filesystem must resolve paths so: Debian's /var/run -> /run and
    /usr/bin/awk -> /etc/alternatives/awk would otherwise lead a copy out of the tree, to the build
    host's own files."""
    todo = [p for p in PurePosixPath(rel).parts if p not in ("/", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        here = root.joinpath(*done, part)
        if (todo or follow_last) and here.is_symlink():
            hops += 1
            if hops > MAX_SYMLINKS:
                raise BuildError(f"{root / rel}: too many levels of symbolic links in {root}")
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            todo = [p for p in PurePosixPath(target).parts if p not in ("/", ".")] + todo
            continue
        done.append(part)
    return root.joinpath(*done)


def install_tree(src: Path, dst: Path, render: Callable[[Path], str] | None = None, overlay: bool = False) -> list[str]:
    """Lay the tree src into the tree dst (made if missing), as a copy made inside a chroot at dst would:
    paths in dst are resolved by path_in_tree(), so nothing is ever written outside dst, and a file or
    symlink of src replaces what dst has there instead of writing through a symlink.

    Symlinks of src are copied as symlinks, never followed. Files and new directories keep their
    permission bits (overlay_mode()); directories dst has already keep theirs. With `render`, a file
    whose name ends in .j2 is written as render(file) without the suffix. A named pipe, device or
    socket in src is an InputFileError. With `overlay`, Python's bytecode (__pycache__, .pyc) is left out:
    pip byte-compiles what it installs, and a test may import an overlay's .py. Returns the relative paths
    written, as named in dst.
    """
    written = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not (overlay and is_bytecode(d)))
        filenames = [f for f in filenames if not (overlay and is_bytecode(f))]
        base = Path(dirpath)
        rel_dir = base.relative_to(src)
        target_dir = _install_dir(base, dst, rel_dir)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            source = base / name
            st = source.lstat()
            rendered = render is not None and name.endswith(".j2") and stat.S_ISREG(st.st_mode)
            target_name = name[:-3] if rendered else name
            target = target_dir / target_name
            if stat.S_ISLNK(st.st_mode):
                _make_room(target, source)
                os.symlink(os.readlink(source), target)
            elif not stat.S_ISREG(st.st_mode):
                hint = "an overlay holds regular files, directories and symlinks"
                raise InputFileError(f"{source}: is {file_kind(st.st_mode)}, not a regular file (hint: {hint})")
            else:
                data = render(source).encode("utf-8") if render is not None and rendered else None
                _make_room(target, source)
                _write_file(source, target, data, overlay_mode(st.st_mode))
            written.append((rel_dir / target_name).as_posix())
    return written


def _install_dir(source: Path, dst: Path, rel: Path) -> Path:
    """The directory of dst that the directory src/rel goes to (made with source's mode if missing)."""
    target = path_in_tree(dst, rel.as_posix(), follow_last=True)
    if target.is_dir():
        return target
    if target.is_symlink() or target.exists():
        raise InputFileError(f"{source}: is a directory, but {target} is not (hint: rename one of the two)")
    target.mkdir(parents=True)
    target.chmod(overlay_mode(source.stat().st_mode))
    return target


def _make_room(target: Path, source: Path) -> None:
    """Remove the file or symlink at target, which source replaces; a directory there is an error."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    elif target.exists():
        raise InputFileError(f"{source}: would replace the directory {target} (hint: rename one of the two)")


def _write_file(source: Path, target: Path, data: bytes | None, mode: int) -> None:
    """Write data (else source's bytes) to a new file at target, never through a symlink, with `mode`."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        if data is not None:
            out.write(data)
        else:
            with source.open("rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
        os.fchmod(out.fileno(), mode)


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
