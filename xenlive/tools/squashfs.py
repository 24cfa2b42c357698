"""mksquashfs: compressed read-only filesystems for the live root and the guest images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xenlive.run import run


def mksquashfs_argv(
    source: Path,
    output: Path,
    *,
    excludes: Sequence[str] = (),
    level: int = 3,
    all_root: bool = False,
    epoch: int | None = None,
    pseudo: Sequence[str] = (),
) -> list[str]:
    """all_root: make every file root-owned (for trees from a checkout; never for a Debian rootfs,
    whose files keep their owners and groups). epoch: date the image and every file in it (reproducible
    output; mksquashfs already writes directories and files in sorted order). pseudo: files the image gets
    besides the tree's, as mksquashfs pseudo file definitions (device nodes: rootfs.squashfs_devices)."""
    # zstd level 3: 2.3 s for a 660 MB dom0 tree here, against 82 s for xz at 20% smaller output.
    argv = [
        "mksquashfs",
        str(source),
        str(output),
        "-noappend",
        "-comp",
        "zstd",
        "-Xcompression-level",
        str(level),
        "-no-progress",
        "-quiet",
    ]
    if all_root:
        argv.append("-all-root")
    if epoch is not None:
        argv += ["-mkfs-time", str(epoch), "-all-time", str(epoch)]
    for definition in pseudo:
        argv += ["-p", definition]
    if excludes:
        argv += ["-wildcards", "-e", *excludes]
    return argv


def make_squashfs(
    source: Path,
    output: Path,
    *,
    epoch: int,
    excludes: Sequence[str] = (),
    all_root: bool = False,
    pseudo: Sequence[str] = (),
) -> None:
    """Squash `source` into `output`, the image and every file in it dated `epoch` (the build's)."""
    run(mksquashfs_argv(source, output, excludes=excludes, all_root=all_root, epoch=epoch, pseudo=pseudo))
