"""xorriso: the ISO itself, written from GRUB's boot piece (tools/grub.py), a few small files and the cached
artifacts grafted in where they lie (no copy, no staging tree of links)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xenlive.tools.grub import BOOT_OPTIONS, MBR_PATH, volume_date_options


def graft(target: str, source: Path) -> str:
    """An xorriso -graft-points pathspec: the file `source` at `target` on the ISO ('=' and '\\' escaped)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("=", "\\=")

    return f"{escape(target)}={escape(str(source))}"


def iso_argv(
    output: Path,
    *,
    boot_tree: Path,
    mbr: Path,
    staging: Path,
    grafts: Mapping[str, Path],
    volume_label: str,
    epoch: int,
) -> list[str]:
    """xorriso as grub-mkrescue runs it, with the same boot options: the boot piece's tree and `staging` merged
    at the root, each of `grafts` (ISO path -> file) at its place, every date from `epoch`. The same files make
    the same ISO, bit for bit, as grub-mkrescue (tests/tools/test_iso_tools.py checks it)."""
    boot = [str(mbr) if option == MBR_PATH else option for option in BOOT_OPTIONS]
    return [
        "xorriso",
        "-as",
        "mkisofs",
        "-graft-points",
        *boot,
        "-o",
        str(output),
        "-r",
        str(boot_tree),
        "--sort-weight",
        "0",
        "/",
        "--sort-weight",
        "1",
        "/boot",
        str(staging),
        *(graft(target, source) for target, source in sorted(grafts.items())),
        "--",
        "-volid",
        volume_label,
        *volume_date_options(epoch),
    ]
