"""grub-mkrescue (with xorriso): a hybrid ISO that boots from CD and USB stick, BIOS and UEFI."""

from __future__ import annotations

import time
from pathlib import Path

# Platform files grub-mkrescue needs for each boot path, and the package that ships them.
GRUB_PLATFORMS = {
    Path("/usr/lib/grub/i386-pc"): "grub-pc-bin",
    Path("/usr/lib/grub/x86_64-efi"): "grub-efi-amd64-bin",
}


def grub_mkrescue_argv(staging: Path, output: Path, *, volume_label: str, epoch: int | None = None) -> list[str]:
    """epoch: date the volume, every file and the GPT disk GUID by it (xorriso would take the time of the build)."""
    argv = [
        "grub-mkrescue",
        "--output",
        str(output),
        "--compress=xz",
        str(staging),
        "--",  # what follows goes to xorriso, as its own commands
        "-volid",
        volume_label,
    ]
    if epoch is not None:
        stamp = time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))
        for kind in ("uuid", "c", "m", "all_file_dates"):
            argv += ["-volume_date", kind, stamp]
        argv += ["-boot_image", "any", "gpt_disk_guid=volume_date_uuid"]
    return argv


def mformat_wrapper(epoch: int) -> str:
    """A `mformat` for grub-mkrescue's EFI image with a volume serial number from `epoch`: mtools 4.0.32
    takes the serial from the clock, which alone kept two builds of the same ISO apart."""
    return f'#!/bin/sh\nexec /usr/bin/mformat -N {epoch & 0xFFFFFFFF:08X} "$@"\n'
