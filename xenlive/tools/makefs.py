"""makefs (NetBSD's, packaged by Debian): FFS/UFS images written from a directory, no mount or loop device.

Files keep the owners, groups and modes they have in the tree, so the tree must be unpacked as root.
Debian's makefs (NetBSD's, 20190105) knows no `label=` FFS option, unlike FreeBSD's: images carry no label,
and guests name their root by device (xbd0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
) -> list[str]:
    """An FFS image of `tree` (`version` 1 or 2), at least `min_mib` MiB (makefs grows it to fit), with 10%
    spare inodes.

    `timestamp` clamps every time stamp (SOURCE_DATE_EPOCH style) for reproducible images.
    """
    argv = ["makefs", "-t", "ffs", "-B", endian, "-o", f"version={version}"]
    argv += ["-M", str(min_mib * MIB), "-f", "10%"]
    if timestamp is not None:
        argv += ["-T", str(timestamp)]
    return [*argv, str(image), str(tree)]


def makefs_version() -> str:
    """makefs has no --version: its version is that of the Debian package."""
    return package_version("makefs")


def make_ffs(tree: Path, image: Path, *, free_mib: int, system: Literal["netbsd", "freebsd"]) -> int:
    """Write the image for `system` with `free_mib` MiB free beside the tree; return its size in MiB
    (rounded up)."""
    used = tree_size_mib(tree)
    min_mib = int(used * 1.1) + free_mib + 8  # FFS metadata: cylinder groups, inode tables
    run(makefs_argv(tree, image, min_mib=min_mib, version=FFS_VERSION[system]), capture=True)
    return -(-image.stat().st_size // MIB)
