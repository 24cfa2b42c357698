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
from typing import Any

from xenlive.builders import decompress, install_overlay, pack_image, unpack_sets
from xenlive.errors import BuildError
from xenlive.guestimage import LoadedGuestImage
from xenlive.tools.makefs import make_ffs

KERNEL = "netbsd-XEN3_DOMU"  # the name netbsd.cfg.j2 boots
REQUIRED_SETS = ("base.tar.xz", "etc.tar.xz")


def build(work: Path, image: LoadedGuestImage, files: Mapping[str, Path]) -> dict[str, Any]:
    source = image.image.netbsd
    assert source is not None  # guaranteed by the guest image checks
    tree, staging = work / "tree", work / "staging"
    staging.mkdir()
    sets = unpack_sets(files, tree)
    missing = [name for name in REQUIRED_SETS if name not in sets]
    if missing:
        raise BuildError(f"{image.path}: netbsd.sets lacks {', '.join(missing)}; a NetBSD guest needs base and etc")
    install_overlay(image, tree)
    (tree / "etc" / "myname").write_text(f"{image.name}\n")
    decompress(files["kernel"], staging / KERNEL)
    size = make_ffs(tree, staging / "disk.img", free_mib=image.image.disk_free, system="netbsd")
    shutil.rmtree(tree)
    pack_image(work, staging, {name: f"NetBSD {source.release}" for name in [KERNEL, *sets]})
    return {"release": f"NetBSD {source.release}", "sets": sets, "kernel": KERNEL, "disk_mib": size}
