"""makefs (NetBSD's, packaged by Debian): FFS/UFS images written from a directory, no mount or loop device.

Files keep the owners, groups and modes they have in the tree, so the tree must be unpacked as root.
Debian's makefs (NetBSD's, 20190105) knows no `label=` FFS option, unlike FreeBSD's: images carry no label,
and guests name their root by device (xbd0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from xenlive.rootfs import tree_size_mib
from xenlive.run import run

MIB = 1 << 20

# NetBSD mounts FFSv2 roots since 5.0, FreeBSD's UFS2 is the same on-disk format.
FFS_VERSION = 2


def makefs_argv(
    tree: Path,
    image: Path,
    *,
    min_mib: int,
    endian: Literal["le", "be"] = "le",
    timestamp: int | None = None,
) -> list[str]:
    """An FFSv2 image of `tree`, at least `min_mib` MiB (makefs grows it to fit), with 10% spare inodes.

    `timestamp` clamps every time stamp (SOURCE_DATE_EPOCH style) for reproducible images.
    """
    argv = ["makefs", "-t", "ffs", "-B", endian, "-o", f"version={FFS_VERSION}"]
    argv += ["-M", str(min_mib * MIB), "-f", "10%"]
    if timestamp is not None:
        argv += ["-T", str(timestamp)]
    return [*argv, str(image), str(tree)]


def make_ffs(tree: Path, image: Path, *, free_mib: int) -> int:
    """Write the image with `free_mib` MiB free beside the tree; return its size in MiB (rounded up)."""
    used = tree_size_mib(tree)
    min_mib = int(used * 1.1) + free_mib + 8  # FFS metadata: cylinder groups, inode tables
    run(makefs_argv(tree, image, min_mib=min_mib), capture=True)
    return -(-image.stat().st_size // MIB)
