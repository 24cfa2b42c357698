"""makefs (NetBSD's, packaged by Debian): FFS/UFS images written from a directory, no mount or loop device.

Files keep the owners, groups and modes they have in the tree, so the tree must be unpacked as root.
Debian's makefs (NetBSD's, 20190105) knows no `label=` FFS option, unlike FreeBSD's: images carry no label,
and guests name their root by device (xbd0).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from xenlive.errors import ToolError
from xenlive.fsutil import tree_size_mib
from xenlive.run import run
from xenlive.tools.dpkg import package_version

MIB = 1 << 20

# Debian's makefs writes an FFSv2 superblock at 8 KiB (measured: fs_magic 0x19540119 and fs_sblockloc 8192),
# where NetBSD, whose makefs it is, finds it. FreeBSD looks for a UFS2 superblock only at 64 KiB (its
# superblock check since 13.2 insists on fs_sblockloc 65536), so FreeBSD disks are written as UFS1, whose
# superblock belongs at 8 KiB; UFS1's limits (32-bit times, no extended attributes) do not matter for a
# live guest's root.
FFS_VERSION = {"netbsd": 2, "freebsd": 1}


def makefs_argv(
    tree: Path,
    image: Path,
    *,
    min_mib: int,
    version: int = 2,
    endian: Literal["le", "be"] = "le",
    timestamp: int | None = None,
    spec: Path | None = None,
) -> list[str]:
    """An FFS image of `tree` (`version` 1 or 2), at least `min_mib` MiB (makefs grows it to fit), with 10%
    spare inodes.

    `timestamp` dates the superblock and every inode's change time; `spec` (an mtree spec, mtree_spec()) gives
    the access and modification times of the files it lists.
    """
    argv = ["makefs", "-t", "ffs", "-B", endian, "-o", f"version={version}"]
    argv += ["-M", str(min_mib * MIB), "-f", "10%"]
    if timestamp is not None:
        argv += ["-T", str(timestamp)]
    if spec is not None:
        argv += ["-F", str(spec)]
    return [*argv, str(image), str(tree)]


# mtree's name for each kind of node
MTREE_TYPES = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "link",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
MTREE_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+,:@/")


def mtree_spec(tree: Path, timestamp: int) -> str:
    """An mtree spec that dates every node of `tree` by its modification time, or `timestamp` if that is later.

    Debian's makefs (20190105) writes the times each file has in the tree, whatever -T says, and the change
    time cannot be set: two builds of the same sets at different times would differ in every inode. The times
    a spec gives replace the tree's (access and modification; -T then dates the change). Names are in mtree's
    escaped form (\\ooo for any byte but a few plain ones)."""

    def entry(path: Path) -> str:
        info = path.lstat()
        relative = os.fsencode(path.relative_to(tree).as_posix())
        name = "".join(chr(b) if b in MTREE_PLAIN else f"\\{b:03o}" for b in relative)
        seconds = min(info.st_mtime_ns // 1_000_000_000, timestamp)
        return f"./{name} type={MTREE_TYPES[stat.S_IFMT(info.st_mode)]} time={seconds}.0"

    lines = ["#mtree", f". type=dir time={min(tree.lstat().st_mtime_ns // 1_000_000_000, timestamp)}.0"]
    for top, dirs, files in os.walk(tree):  # a directory before what it holds, as the spec needs
        dirs.sort()
        lines += [entry(Path(top) / name) for name in sorted([*dirs, *files])]
    return "\n".join(lines) + "\n"


def makefs_version() -> str:
    """makefs has no --version: its version is that of the Debian package."""
    return package_version("makefs")


def make_ffs(tree: Path, image: Path, *, free_mib: int, system: Literal["netbsd", "freebsd"], timestamp: int) -> int:
    """Write the image for `system` with `free_mib` MiB free beside the tree, no file dated after `timestamp`
    (mtree_spec()); return its size in MiB (rounded up). The same tree gives the same bytes, wherever and
    whenever it was unpacked."""
    used = tree_size_mib(tree)
    min_mib = int(used * 1.1) + free_mib + 8  # FFS metadata: cylinder groups, inode tables
    spec = tree.with_name(f"{tree.name}.mtree")
    spec.write_text(mtree_spec(tree, timestamp))
    try:
        argv = makefs_argv(tree, image, min_mib=min_mib, version=FFS_VERSION[system], timestamp=timestamp, spec=spec)
        run(argv, capture=True)
    finally:
        spec.unlink()
    clear_in_core_pointers(image)
    return -(-image.stat().st_size // MIB)


# The superblock's fields read here (byte offsets in NetBSD's struct fs, little-endian int32), and where makefs
# writes it (both FFS versions: see FFS_VERSION).
SBLOCK = 8192
SB_SBLKNO, SB_CGOFFSET, SB_CGMASK, SB_NCG, SB_FSIZE, SB_FPG, SB_MAGIC = 8, 24, 28, 44, 52, 188, 1372
MAGIC = {1: 0x011954, 2: 0x19540119}
# fs_contigdirs, fs_csp, fs_maxcluster and fs_active: pointers into makefs's own memory, which it writes into
# every copy of the superblock as they are. They change from run to run (address space randomization, the
# lengths of the paths it was given), so that the same tree would give other bytes; on disk they mean nothing
# (the kernel sets them when it mounts), and newfs leaves them zero.
IN_CORE_POINTERS = slice(824, 856)


def clear_in_core_pointers(image: Path) -> None:
    """Zero IN_CORE_POINTERS in the superblock and in each cylinder group's copy of it."""
    with image.open("r+b") as disk:
        disk.seek(SBLOCK)
        primary = disk.read(SB_MAGIC + 4)

        def field(offset: int) -> int:
            return int.from_bytes(primary[offset : offset + 4], "little", signed=True)

        version = next((v for v, magic in MAGIC.items() if field(SB_MAGIC) == magic), None)
        if version is None:
            raise ToolError(f"makefs wrote no FFS superblock at {SBLOCK} in {image}")
        copies = [SBLOCK]
        for group in range(field(SB_NCG)):
            start = field(SB_FPG) * group  # cgstart(): UFS1 staggers the groups' metadata, UFS2 does not
            if version == 1:
                start += field(SB_CGOFFSET) * (group & ~field(SB_CGMASK))
            copies.append((start + field(SB_SBLKNO)) * field(SB_FSIZE))
        for offset in copies:
            disk.seek(offset + SB_MAGIC)
            if int.from_bytes(disk.read(4), "little") != MAGIC[version]:
                raise ToolError(f"no copy of the FFS superblock where {image} should hold one (byte {offset})")
            disk.seek(offset + IN_CORE_POINTERS.start)
            disk.write(bytes(IN_CORE_POINTERS.stop - IN_CORE_POINTERS.start))
