"""The `url` builder: a prebuilt guest passed through. disk.img, kernel and ramdisk are the downloaded
files, decompressed if they are gzip or xz (xl loads an uncompressed kernel fastest)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.builders import decompress, pack_image
from xenlive.guestimage import LoadedGuestImage

NAMES = {"disk": "disk.img", "kernel": "kernel", "ramdisk": "ramdisk"}  # what the image's template boots


def build(work: Path, image: LoadedGuestImage, files: Mapping[str, Path]) -> dict[str, Any]:
    staging = work / "staging"
    staging.mkdir()
    for role, name in NAMES.items():
        if role in files:
            decompress(files[role], staging / name)
    size = -(-(staging / "disk.img").stat().st_size // (1 << 20))
    pinned = image.image.pinned_files()
    pack_image(work, staging, {NAMES[role]: pinned[role].url for role in files if role in NAMES})
    return {"files": sorted(NAMES[role] for role in files if role in NAMES), "disk_mib": size}
