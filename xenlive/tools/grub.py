"""grub-mkrescue: GRUB's boot images for a hybrid ISO that boots from CD and USB stick, BIOS and UEFI.

xenlive runs it once per GRUB version, with a stand-in for xorriso that keeps what grub-mkrescue made (the
El Torito BIOS image, the EFI system partition image, GRUB's modules) and the xorriso options it chose;
every ISO is then written by xorriso from that piece (tools/xorriso.py) in about a second.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path

# Platform files grub-mkrescue needs for each boot path, and the package that ships them.
GRUB_PLATFORMS = {
    Path("/usr/lib/grub/i386-pc"): "grub-pc-bin",
    Path("/usr/lib/grub/x86_64-efi"): "grub-efi-amd64-bin",
}
HYBRID_MBR = Path("/usr/lib/grub/i386-pc/boot_hybrid.img")  # the MBR grub-mkrescue gives a USB stick

# The boot options grub-mkrescue (GRUB 2.06) hands xorriso: the El Torito BIOS entry with GRUB's boot info,
# the hybrid MBR (MBR_PATH stands for the file), HFS+ and APM for Macs, the EFI system partition image
# both as El Torito entry and as a partition, and a protective MBR partition table. A GRUB whose
# grub-mkrescue chooses others makes the piece fail to build (stages/grub.py) rather than an ISO that may not boot.
MBR_PATH = "MBR"
BOOT_OPTIONS = (
    "-b",
    "boot/grub/i386-pc/eltorito.img",
    "-no-emul-boot",
    "-boot-load-size",
    "4",
    "-boot-info-table",
    "--grub2-boot-info",
    "--grub2-mbr",
    MBR_PATH,
    "-hfsplus",
    "-apm-block-size",
    "2048",
    "-hfsplus-file-creator-type",
    "chrp",
    "tbxj",
    "/System/Library/CoreServices/.disk_label",
    "-hfs-bless-by",
    "i",
    "/System/Library/CoreServices/boot.efi",
    "--efi-boot",
    "efi.img",
    "-efi-boot-part",
    "--efi-boot-image",
    "--protective-msdos-label",
)


def volume_date_options(epoch: int) -> list[str]:
    """xorriso commands that date the volume, every file and the GPT disk GUID by `epoch` (xorriso would
    take the time of the build)."""
    stamp = time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))
    argv: list[str] = []
    for kind in ("uuid", "c", "m", "all_file_dates"):
        argv += ["-volume_date", kind, stamp]
    return [*argv, "-boot_image", "any", "gpt_disk_guid=volume_date_uuid"]


def grub_mkrescue_argv(
    staging: Path, output: Path, *, volume_label: str, epoch: int | None = None, xorriso: Path | None = None
) -> list[str]:
    """grub-mkrescue of `staging` into `output`; `xorriso`: the program it runs in xorriso's place."""
    argv = ["grub-mkrescue"]
    if xorriso is not None:
        argv.append(f"--xorriso={xorriso}")
    argv += [
        "--output",
        str(output),
        "--compress=xz",
        str(staging),
        "--",  # what follows goes to xorriso, as its own commands
        "-volid",
        volume_label,
    ]
    if epoch is not None:
        argv += volume_date_options(epoch)
    return argv


def mformat_wrapper(epoch: int) -> str:
    """A `mformat` for grub-mkrescue's EFI image with a volume serial number from `epoch`: mtools 4.0.32
    takes the serial from the clock, which alone kept two builds of the same ISO apart."""
    return f'#!/bin/sh\nexec /usr/bin/mformat -N {epoch & 0xFFFFFFFF:08X} "$@"\n'


def capture_script(destination: Path, xorriso: Path) -> str:
    """A stand-in for xorriso under grub-mkrescue: it answers grub-mkrescue's probe (`-as mkisofs -help`)
    with the real `xorriso`, and for the real run keeps its options (NUL-separated, in DESTINATION/xorriso.args)
    and everything grub-mkrescue made in $TMPDIR (DESTINATION/tmp), writing no ISO."""
    dest = shlex.quote(str(destination))
    return (
        "#!/bin/sh\n"
        "set -e\n"
        f'if [ "$3" = "-help" ]; then exec {shlex.quote(str(xorriso))} "$@"; fi\n'
        f"printf '%s\\0' \"$@\" > {dest}/xorriso.args\n"
        f'mkdir -p {dest}/tmp && cp -a "$TMPDIR"/. {dest}/tmp/\n'
    )


def chosen_boot_options(args: Sequence[str]) -> tuple[str, ...]:
    """The boot options among the xorriso arguments grub-mkrescue chose (what comes between -graft-points and
    -o, less its clock-dated --modification-date), with the hybrid MBR's path as MBR_PATH."""
    start, end = args.index("-graft-points") + 1, args.index("-o")
    chosen = [arg for arg in args[start:end] if not arg.startswith("--modification-date=")]
    return tuple(MBR_PATH if arg == str(HYBRID_MBR) else arg for arg in chosen)
