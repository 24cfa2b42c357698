"""The exact command lines handed to mksquashfs, grub-mkrescue (with xorriso's options) and dpkg-query."""

from __future__ import annotations

from pathlib import Path

from xenlive.tools.dpkg import dpkg_query_argv, package_version_argv
from xenlive.tools.grub import grub_mkrescue_argv, mformat_wrapper
from xenlive.tools.squashfs import mksquashfs_argv

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
