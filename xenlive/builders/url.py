"""The `url` builder: a prebuilt guest passed through. disk.img, kernel and ramdisk are the downloaded
files, decompressed if they are gzip or xz (xl loads an uncompressed kernel fastest)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from xenlive.builders.base import Builder, ImageJob
from xenlive.builders.files import decompress, pack_image
from xenlive.context import versions_of
from xenlive.pins import PinnedFile
from xenlive.yamlpos import Model


class UrlSource(Model):
    """A prebuilt guest, passed through: a raw disk image plus the kernel (and ramdisk) xl boots."""

    disk: PinnedFile = Field(
        description="Raw disk image; `.xz` and `.gz` files are decompressed at build time, to at most 32 GiB "
        "(a file that unpacks to more is an error)."
    )
    kernel: PinnedFile | None = Field(
        None,
        description="Kernel xl loads directly (PV, PVH). Leave it out for an HVM guest that boots from the disk.",
        json_schema_extra={"default_text": "none"},
    )
    ramdisk: PinnedFile | None = Field(
        None, description="Initial ramdisk for that kernel.", json_schema_extra={"default_text": "none"}
    )


NAMES = {"disk": "disk.img", "kernel": "kernel", "ramdisk": "ramdisk"}  # what the image's template boots


def build(work: Path, job: ImageJob) -> dict[str, Any]:
    files = job.files
    staging = work / "staging"
    staging.mkdir()
    for role, name in NAMES.items():
        if role in files:
            decompress(files[role], staging / name, name=job.pinned[role].name)
    size = -(-(staging / "disk.img").stat().st_size // (1 << 20))
    pack_image(work, staging, {NAMES[role]: job.pinned[role].url for role in files if role in NAMES}, epoch=job.epoch)
    return {"files": sorted(NAMES[role] for role in files if role in NAMES), "disk_mib": size}


def pinned(source: UrlSource) -> Mapping[str, PinnedFile | None]:
    return {"disk": source.disk, "kernel": source.kernel, "ramdisk": source.ramdisk}


BUILDER = Builder(
    name="url",
    summary="takes a prebuilt image (section `url:`)",
    stage_version=3,
    build=build,
    tools=("mksquashfs",),
    versions=versions_of("mksquashfs"),
    section=UrlSource,
    section_description="Files of a `url` image.",
    pinned=pinned,
)
