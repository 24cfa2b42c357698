"""What the two Debian guest builders (`mmdebstrap`, `diskimage-builder`) share: the packages every Debian
guest gets, xenlive's files for its init, and the archive they are installed from (dom0's mirrors with the
image's suite) as part of their cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from xenlive.builders.base import CacheInputs, ImageJob, ImageRecipe
from xenlive.contract import render_shell
from xenlive.fsutil import digest_tree
from xenlive.paths import data_dir

Init = Literal["runit", "systemd"]

# A Debian guest boots its own kernel and initramfs (made at install time).
BASE_PACKAGES = ("linux-image-amd64", "lz4", "kmod")
# What each init brings (the image's `init`): runit with busybox's DHCP client and tiny-initramfs (no
# udev, no shell before the root is mounted), or systemd with udev, systemd-networkd (part of systemd),
# systemd-resolved and initramfs-tools.
INIT_PACKAGES: dict[Init, tuple[str, ...]] = {
    "runit": ("runit-init", "busybox", "udhcpc", "tiny-initramfs"),
    "systemd": ("systemd-sysv", "udev", "systemd-resolved", "initramfs-tools"),
}


def packages_for(image: ImageRecipe, init: Init) -> list[str]:
    """The packages installed in a Debian guest image: the base system, kernel and init, then the recipe's."""
    return [*BASE_PACKAGES, *INIT_PACKAGES[init], *image.packages]


def init_tree(init: Init) -> Path:
    """xenlive's files for a Debian guest's init (guest-images/init/INIT): its services or units, the ready
    marker and the network check's start, laid in before the image's own overlay."""
    return data_dir("guest-images") / "init" / init


def archive_inputs(job: ImageJob) -> CacheInputs:
    return CacheInputs(settings={"suite": job.archive.suite, "sources": list(job.archive.sources)})


def debian_inputs(job: ImageJob, init: Init) -> CacheInputs:
    """The archive, and xenlive's tree for the guest's init."""
    return CacheInputs(
        settings={**archive_inputs(job).settings, "contract": render_shell()},
        files={f"guest-images/init/{init}": digest_tree(init_tree(init))},
    )
