"""The `netbsd` builder: a NetBSD/amd64 PV guest from official release files.

The sets are unpacked (as root, owners kept) into a tree, the image's overlay adds what a booting Xen
guest needs (/etc/fstab with root on xbd0a, rc.conf, a getty on the Xen console, the ready marker), and
makefs writes the tree as an FFSv2 image. There is no disklabel: NetBSD's xbd driver then shows the
whole disk as partition a, hence `root=xbd0a`. The XEN3_DOMU kernel is stored uncompressed, since xl
would otherwise gunzip it in dom0 userspace at each guest start (slow under TCG).
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
from xenlive.errors import BuildError
from xenlive.formats import RELEASE_FORM, Release, form
from xenlive.pins import PinnedFile
from xenlive.tools.makefs import make_ffs, makefs_version
from xenlive.yamlpos import Model

KERNEL = "netbsd-XEN3_DOMU"  # the name netbsd.cfg.j2 boots
REQUIRED_SETS = ("base.tar.xz", "etc.tar.xz")


class NetBSDSource(Model):
    """Official NetBSD release files (amd64): the Xen PV guest kernel and the sets unpacked into the root."""

    release: Release = Field(
        description='NetBSD release these files belong to, e.g. "10.1" (shown in the manifest).',
        json_schema_extra=form(RELEASE_FORM),
    )
    kernel: PinnedFile = Field(
        description="The PV guest kernel, `amd64/binary/kernel/netbsd-XEN3_DOMU.gz`. It is stored uncompressed: "
        "xl would otherwise decompress it in dom0 userspace at every guest start."
    )
    sets: Annotated[list[PinnedFile], Field(min_length=1)] = Field(
        description="Sets (`amd64/binary/sets/NAME.tar.xz`) unpacked in order into the root file system; "
        "at least `base` and `etc`."
    )


def build(work: Path, job: ImageJob) -> dict[str, Any]:
    source, files = job.image.section(NetBSDSource), job.files
    tree, staging = work / "tree", work / "staging"
    staging.mkdir()
    sets = unpack_sets(files, tree)
    missing = [name for name in REQUIRED_SETS if name not in sets]
    if missing:
        raise BuildError(
            f"{job.recipe_file}: netbsd.sets lacks {', '.join(missing)}; a NetBSD guest needs base and etc"
        )
    install_overlay(job, tree)
    (tree / "etc" / "myname").write_text(f"{job.name}\n")
    decompress(files["kernel"], staging / KERNEL)
    size = make_ffs(tree, staging / "disk.img", free_mib=job.image.disk_free, system="netbsd", timestamp=job.epoch)
    shutil.rmtree(tree)
    pack_image(work, staging, {name: f"NetBSD {source.release}" for name in [KERNEL, *sets]}, epoch=job.epoch)
    return {"release": f"NetBSD {source.release}", "sets": sets, "kernel": KERNEL, "disk_mib": size}


def pinned(source: NetBSDSource) -> Mapping[str, PinnedFile | None]:
    return {"kernel": source.kernel, **{f"set {f.pinned().name}": f for f in source.sets}}


BUILDER = Builder(
    name="netbsd",
    summary="assembles NetBSD from its official release files (section `netbsd:`)",
    # 4: the overlay laid in inside the tree, modes kept; 5: the disk sized from the tree's files
    # (fsutil.tree_size_mib), not from du; 6: the disk dated by the stage's epoch, makefs's pointers cleared (the
    # same tree gives the same bytes)
    stage_version=6,
    build=build,
    tools=("tar", "makefs", "mksquashfs"),
    versions={**versions_of("tar", "mksquashfs"), "makefs": makefs_version},
    types=("pv",),  # booted PV here
    section=NetBSDSource,
    section_description="Release files of a `netbsd` image.",
    pinned=pinned,
)
