"""The exact command lines handed to mksquashfs, grub-mkrescue, xorriso and dpkg-query."""

from __future__ import annotations

from pathlib import Path

from xenlive.tools.dpkg import dpkg_query_argv, package_version_argv
from xenlive.tools.grub import BOOT_OPTIONS, capture_script, chosen_boot_options, grub_mkrescue_argv, mformat_wrapper
from xenlive.tools.lz4 import lz4_legacy_argv
from xenlive.tools.squashfs import mksquashfs_argv
from xenlive.tools.xorriso import graft, iso_argv

SQUASH = ["mksquashfs", "/t", "/o.squashfs", "-noappend", "-comp", "zstd", "-Xcompression-level", "3"]
QUIET = ["-no-progress", "-quiet"]


def test_mksquashfs_of_a_debian_tree_keeps_owners_dates_everything_by_the_epoch_and_excludes_by_wildcard() -> None:
    argv = mksquashfs_argv(
        Path("/t"), Path("/o.squashfs"), excludes=["boot/*", "var/cache/apt/*.bin"], epoch=1700000000
    )
    assert argv == [
        *SQUASH,
        *QUIET,
        *("-mkfs-time", "1700000000", "-all-time", "1700000000"),
        *("-wildcards", "-e", "boot/*", "var/cache/apt/*.bin"),
    ]


def test_mksquashfs_of_a_checkout_tree_makes_every_file_root_owned() -> None:
    argv = mksquashfs_argv(Path("/t"), Path("/o.squashfs"), all_root=True, epoch=0, level=9)
    assert argv == [
        *SQUASH[:-1],
        "9",
        *QUIET,
        "-all-root",
        *("-mkfs-time", "0", "-all-time", "0"),
    ]


def test_grub_mkrescue_writes_a_hybrid_iso_with_the_label_and_everything_dated_by_the_epoch() -> None:
    argv = grub_mkrescue_argv(Path("/s"), Path("/o.iso"), volume_label="XENLIVE_CI", epoch=1700000000)
    stamp = "2023111422132000"
    assert argv == [
        *("grub-mkrescue", "--output", "/o.iso", "--compress=xz", "/s", "--"),
        *("-volid", "XENLIVE_CI"),
        *("-volume_date", "uuid", stamp),
        *("-volume_date", "c", stamp),
        *("-volume_date", "m", stamp),
        *("-volume_date", "all_file_dates", stamp),
        *("-boot_image", "any", "gpt_disk_guid=volume_date_uuid"),
    ]


def test_grub_mkrescue_without_an_epoch_leaves_the_dates_to_xorriso() -> None:
    argv = grub_mkrescue_argv(Path("/s"), Path("/o.iso"), volume_label="T")
    assert argv == ["grub-mkrescue", "--output", "/o.iso", "--compress=xz", "/s", "--", "-volid", "T"]


def test_grub_mkrescue_for_the_boot_piece_runs_the_stand_in_for_xorriso() -> None:
    argv = grub_mkrescue_argv(Path("/e"), Path("/u.iso"), volume_label="X", xorriso=Path("/w/bin/xorriso"))
    assert argv[:2] == ["grub-mkrescue", "--xorriso=/w/bin/xorriso"]


def test_the_stand_in_answers_the_probe_with_xorriso_and_keeps_the_options_and_the_tree() -> None:
    assert capture_script(Path("/w/captured"), Path("/usr/bin/xorriso")) == (
        "#!/bin/sh\n"
        "set -e\n"
        'if [ "$3" = "-help" ]; then exec /usr/bin/xorriso "$@"; fi\n'
        "printf '%s\\0' \"$@\" > /w/captured/xorriso.args\n"
        'mkdir -p /w/captured/tmp && cp -a "$TMPDIR"/. /w/captured/tmp/\n'
    )


# What grub-mkrescue (GRUB 2.06-13+deb12u2) handed xorriso, as the stand-in recorded it.
GRUB_MKRESCUE_ARGS = [
    *("-as", "mkisofs", "-graft-points", "--modification-date=2026113015281300"),
    *("-b", "boot/grub/i386-pc/eltorito.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"),
    *("--grub2-boot-info", "--grub2-mbr", "/usr/lib/grub/i386-pc/boot_hybrid.img"),
    *("-hfsplus", "-apm-block-size", "2048", "-hfsplus-file-creator-type", "chrp", "tbxj"),
    *("/System/Library/CoreServices/.disk_label", "-hfs-bless-by", "i", "/System/Library/CoreServices/boot.efi"),
    *("--efi-boot", "efi.img", "-efi-boot-part", "--efi-boot-image", "--protective-msdos-label"),
    *("-o", "/w/unused.iso", "-r", "/w/tmp/grub.2uHuPH", "--sort-weight", "0", "/", "--sort-weight", "1", "/boot"),
    *("/w/empty", "--", "-volid", "XENLIVE"),
]


def test_the_boot_options_grub_mkrescue_chose_are_those_xenlive_writes_isos_with() -> None:
    assert chosen_boot_options(GRUB_MKRESCUE_ARGS) == BOOT_OPTIONS


def test_a_grub_mkrescue_that_chooses_other_boot_options_is_noticed() -> None:
    args = [arg for arg in GRUB_MKRESCUE_ARGS if arg != "-hfsplus"]
    assert chosen_boot_options(args) != BOOT_OPTIONS


def test_xorriso_writes_the_iso_as_grub_mkrescue_does_with_the_artifacts_grafted_in_place() -> None:
    argv = iso_argv(
        Path("/out/x.iso"),
        boot_tree=Path("/c/grub-boot/k/tree"),
        mbr=Path("/c/grub-boot/k/boot_hybrid.img"),
        staging=Path("/c/tmp/iso-1"),
        grafts={"live/vmlinuz": Path("/c/dom0-rootfs/k/vmlinuz"), "boot/xen.gz": Path("/c/dom0-rootfs/k/xen.gz")},
        volume_label="XENLIVE_CI",
        epoch=1700000000,
    )
    stamp = "2023111422132000"
    boot = [*GRUB_MKRESCUE_ARGS[4:11], "--grub2-mbr", "/c/grub-boot/k/boot_hybrid.img", *GRUB_MKRESCUE_ARGS[13:28]]
    assert argv == [
        *("xorriso", "-as", "mkisofs", "-graft-points"),
        *boot,
        *("-o", "/out/x.iso", "-r", "/c/grub-boot/k/tree", "--sort-weight", "0", "/", "--sort-weight", "1", "/boot"),
        "/c/tmp/iso-1",
        "boot/xen.gz=/c/dom0-rootfs/k/xen.gz",
        "live/vmlinuz=/c/dom0-rootfs/k/vmlinuz",
        *("--", "-volid", "XENLIVE_CI"),
        *("-volume_date", "uuid", stamp),
        *("-volume_date", "c", stamp),
        *("-volume_date", "m", stamp),
        *("-volume_date", "all_file_dates", stamp),
        *("-boot_image", "any", "gpt_disk_guid=volume_date_uuid"),
    ]


def test_a_graft_escapes_what_xorriso_would_read_as_its_separator() -> None:
    assert graft("live/a=b", Path("/cache dir/x=1\\y")) == "live/a\\=b=/cache dir/x\\=1\\\\y"


def test_the_efi_images_serial_number_comes_from_the_epoch() -> None:
    assert mformat_wrapper(1700000000) == '#!/bin/sh\nexec /usr/bin/mformat -N 6553F100 "$@"\n'


def test_dpkg_query_reads_a_trees_database_and_a_host_packages_version() -> None:
    assert dpkg_query_argv(Path("/t/var/lib/dpkg")) == [
        "dpkg-query",
        "--admindir=/t/var/lib/dpkg",
        "-W",
        "-f",
        "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
    ]
    assert package_version_argv("makefs") == ["dpkg-query", "-W", "-f", "${Version}", "makefs"]


def test_lz4_writes_the_legacy_frame_format_that_xen_reads() -> None:
    assert lz4_legacy_argv(Path("/w/vmlinux"), Path("/w/vmlinuz")) == [
        "lz4",
        "-l",
        "-9",
        "-f",
        "-q",
        "/w/vmlinux",
        "/w/vmlinuz",
    ]
