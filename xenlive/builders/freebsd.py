"""The `freebsd` builder: a FreeBSD/amd64 guest, booted PVH with its kernel loaded by xl (or HVM).

From sets: base.txz and kernel.txz are unpacked (as root, owners kept), the image's overlay adds
/etc/fstab, rc.conf, a getty on the Xen console (xc0) and the ready marker, and makefs writes the tree
as a UFS1 image with no partition table: FreeBSD's blkfront calls the `xvda` disk `xbd0`, so the root
is `ufs:/dev/xbd0`. The kernel xl loads is the tree's boot/kernel/kernel (an uncompressed ELF).
From the official VM image: the image is decompressed as it is, and the kernel taken from kernel.txz.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.builders import decompress, install_overlay, pack_image, unpack_sets
from xenlive.errors import BuildError
from xenlive.guestimage import LoadedGuestImage
from xenlive.tools.makefs import make_ffs
from xenlive.tools.tar import extract

KERNEL = "kernel"  # the name freebsd.cfg.j2 boots
KERNEL_IN_TREE = Path("boot") / "kernel" / "kernel"


def build(work: Path, image: LoadedGuestImage, files: Mapping[str, Path]) -> dict[str, Any]:
    source = image.image.freebsd
    assert source is not None  # guaranteed by the guest image checks
    tree, staging = work / "tree", work / "staging"
    staging.mkdir()
    release = f"FreeBSD {source.release}"
    if source.vm_image is None:
        sets = unpack_sets(files, tree)
        install_overlay(image, tree)
        _copy_kernel(tree, staging, "the sets (is kernel.txz among them?)")
        size = make_ffs(tree, staging / "disk.img", free_mib=image.image.disk_free, system="freebsd")
        shutil.rmtree(tree)
        pack_image(work, staging, dict.fromkeys(sets, release))
        return {"release": release, "sets": sets, "kernel": KERNEL, "disk_mib": size, "root": source.root}
    decompress(files["vm image"], staging / "disk.img")
    if "kernel" in files:
        extract(files["kernel"], tree)
        _copy_kernel(tree, staging, "kernel")
        shutil.rmtree(tree)
    # By the names in their URLs: the files in the download cache are named by their digests.
    pinned = image.image.pinned_files()
    pack_image(work, staging, {pinned[role].name: release for role in files})
    return {"release": release, "vm_image": True, "root": source.root}


def _copy_kernel(tree: Path, staging: Path, where: str) -> None:
    kernel = tree / KERNEL_IN_TREE
    if not kernel.is_file():
        raise BuildError(f"no {KERNEL_IN_TREE} in {where}")
    shutil.copyfile(kernel, staging / KERNEL)
