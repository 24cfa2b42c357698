"""What the two Debian guest builders (`mmdebstrap`, `diskimage-builder`) share: the packages every Debian
guest gets, and the archive they are installed from (dom0's) as part of their cache key."""

from __future__ import annotations

from xenlive.builders.base import CacheInputs, ImageJob, ImageRecipe

# A Debian guest boots its own kernel and initramfs (lz4, made at install time), under systemd.
BASE_PACKAGES = ("systemd-sysv", "udev", "linux-image-amd64", "initramfs-tools", "lz4", "kmod")


def packages_for(image: ImageRecipe) -> list[str]:
    """The packages installed in a Debian guest image: the base system and kernel, then the recipe's."""
    return [*BASE_PACKAGES, *image.packages]


def archive_inputs(job: ImageJob) -> CacheInputs:
    return CacheInputs(settings={"suite": job.archive.suite, "sources": list(job.archive.sources)})
