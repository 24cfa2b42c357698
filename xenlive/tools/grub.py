"""grub-mkrescue (with xorriso): a hybrid ISO that boots from CD and USB stick, BIOS and UEFI."""

from __future__ import annotations

from pathlib import Path

# Platform files grub-mkrescue needs for each boot path, and the package that ships them.
GRUB_PLATFORMS = {
    Path("/usr/lib/grub/i386-pc"): "grub-pc-bin",
    Path("/usr/lib/grub/x86_64-efi"): "grub-efi-amd64-bin",
}


def grub_mkrescue_argv(staging: Path, output: Path, *, volume_label: str) -> list[str]:
    return [
        "grub-mkrescue",
        "--output",
        str(output),
        "--compress=xz",
        str(staging),
        "--",  # what follows goes to xorriso
        "-volid",
        volume_label,
    ]
