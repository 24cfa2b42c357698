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
from typing import Annotated, Any

from pydantic import Field

from xenlive.builders.base import Builder, ImageJob
from xenlive.builders.files import decompress, install_overlay, pack_image, unpack_sets
from xenlive.context import versions_of
from xenlive.errors import BuildError, Problem
from xenlive.formats import RELEASE_FORM, Release, form
from xenlive.pins import PinnedFile
from xenlive.tools.makefs import make_ffs, makefs_version
from xenlive.tools.tar import extract
from xenlive.yamlpos import Located, Model

KERNEL = "kernel"  # the name freebsd.cfg.j2 boots
KERNEL_IN_TREE = Path("boot") / "kernel" / "kernel"


class FreeBSDSource(Model):
    """Official FreeBSD release files (amd64). FreeBSD runs as PVH (kernel loaded by xl) or HVM, never PV."""

    release: Release = Field(
        description='FreeBSD release, e.g. "14.2-RELEASE" (shown in the manifest).',
        json_schema_extra=form(RELEASE_FORM),
    )
    sets: list[PinnedFile] | None = Field(
        None,
        description="Distribution sets (`releases/amd64/VERSION/NAME.txz`), unpacked in order and written as a "
        "UFS image with makefs; `base.txz` and `kernel.txz` at least. The kernel is taken from "
        "`boot/kernel/kernel`. Give `sets` or `vm_image`.",
        json_schema_extra={"default_text": "none"},
    )
    vm_image: PinnedFile | None = Field(
        None,
        description="The official VM image instead of sets (`releases/VM-IMAGES/VERSION/amd64/Latest/"
        "FreeBSD-VERSION-amd64-ufs.raw.xz`, decompressed at build time). PVH boots need `kernel` as well.",
        json_schema_extra={"default_text": "none"},
    )
    kernel: PinnedFile | None = Field(
        None,
        description="`kernel.txz`, whose `boot/kernel/kernel` xl loads for a PVH boot of `vm_image`.",
        json_schema_extra={"default_text": "none"},
    )
    root: Annotated[str, Field(pattern=r"^[a-z0-9]+:[A-Za-z0-9/._-]+$", max_length=128)] = Field(
        "ufs:/dev/xbd0",
        description="Root file system, as FreeBSD's `vfs.root.mountfrom`. Xen's blkfront names the disk "
        "`xvda` `xbd0`; the sets image has no partition table, so its root is the whole disk. The VM image "
        "is partitioned: use `ufs:/dev/gpt/rootfs`.",
        json_schema_extra=form("FSTYPE:DEVICE, e.g. ufs:/dev/xbd0"),
    )


def build(work: Path, job: ImageJob) -> dict[str, Any]:
    source, files, epoch = job.image.section(FreeBSDSource), job.files, job.epoch
    tree, staging = work / "tree", work / "staging"
    staging.mkdir()
    release = f"FreeBSD {source.release}"
    if source.vm_image is None:
        sets = unpack_sets(files, tree)
        install_overlay(job, tree)
        _copy_kernel(tree, staging, "the sets (is kernel.txz among them?)")
        size = make_ffs(tree, staging / "disk.img", free_mib=job.image.disk_free, system="freebsd", timestamp=job.epoch)
        shutil.rmtree(tree)
        pack_image(work, staging, dict.fromkeys(sets, release), epoch=epoch)
        return {"release": release, "sets": sets, "kernel": KERNEL, "disk_mib": size, "root": source.root}
    decompress(files["vm image"], staging / "disk.img")
    if "kernel" in files:
        extract(files["kernel"], tree)
        _copy_kernel(tree, staging, "kernel")
        shutil.rmtree(tree)
    # By the names in their URLs: the files in the download cache are named by their digests.
    pack_image(work, staging, {job.pinned[role].name: release for role in files}, epoch=epoch)
    return {"release": release, "vm_image": True, "root": source.root}


def _copy_kernel(tree: Path, staging: Path, where: str) -> None:
    kernel = tree / KERNEL_IN_TREE
    if not kernel.is_file():
        raise BuildError(f"no {KERNEL_IN_TREE} in {where}")
    shutil.copyfile(kernel, staging / KERNEL)


def pinned(source: FreeBSDSource) -> Mapping[str, PinnedFile | None]:
    return {
        **{f"set {f.pinned().name}": f for f in source.sets or []},
        "vm image": source.vm_image,
        "kernel": source.kernel,
    }


def checks(located: Located, section: Mapping[str, Any], types: list[Any]) -> list[Problem]:
    """How sets, vm_image and kernel go together, and with the guest types."""
    problems = []
    has_sets, has_image = "sets" in section, "vm_image" in section
    if has_sets == has_image:
        problems.append(
            located.problem(
                ("freebsd",),
                "give either `sets` or `vm_image`" + (", not both" if has_sets else ""),
                "`sets: [base.txz, kernel.txz]` builds a UFS image with makefs; `vm_image` takes the official one",
            )
        )
    if has_sets and "kernel" in section:
        problems.append(
            located.problem(
                ("freebsd", "kernel"),
                "is only used with `vm_image`",
                "with `sets`, list kernel.txz among the sets",
                at_key=True,
            )
        )
    if has_image and "pvh" in types and "kernel" not in section:
        problems.append(
            located.problem(
                ("freebsd", "vm_image"),
                "a PVH boot of the VM image needs `kernel:` (kernel.txz): xl loads the kernel itself",
                "add `kernel:` with the release's kernel.txz, or set `types: [hvm]`",
            )
        )
    if has_sets and "hvm" in types:
        problems.append(
            located.problem(
                ("freebsd", "sets"),
                "an image built from sets has no boot loader, so it cannot boot as hvm",
                "use `vm_image` for HVM guests, or set `types: [pvh]`",
                at_key=True,
            )
        )
    return problems


BUILDER = Builder(
    name="freebsd",
    summary="assembles FreeBSD from its official release files or VM image (section `freebsd:`)",
    # 2: a VM image is listed in packages.tsv by its file name; 3: disks are UFS1; 4: the overlay laid in
    # inside the tree, modes kept; 5: the disk sized from the tree's files (fsutil.tree_size_mib), not from du;
    # 6: the disk dated by the stage's epoch, makefs's pointers cleared (the same tree gives the same bytes)
    stage_version=6,
    build=build,
    tools=("tar", "makefs", "mksquashfs"),
    versions={**versions_of("tar", "mksquashfs"), "makefs": makefs_version},
    types=("pvh", "hvm"),  # FreeBSD/amd64 has no PV support
    section=FreeBSDSource,
    section_description="Release files of a `freebsd` image.",
    pinned=pinned,
    checks=checks,
)
