"""The netbsd, freebsd and url builders run for real (tar, makefs, mksquashfs, unsquashfs) on generated
stand-ins for the release sets, served by a loopback HTTP server (the stand-ins: tests/unit/test_bsd_images.py).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeServer
from tests.unit.test_bsd_images import (
    FREEBSD_KERNEL,
    FREEBSD_SETS,
    IMAGES,
    NO_ARCHIVE,
    freebsd_image,
    netbsd_image,
    render,
    superblock,
    tar_xz,
    write,
)
from xenlive.builders import freebsd, netbsd
from xenlive.context import BuildContext
from xenlive.download import DownloadCache
from xenlive.guestimage import load_guest_image
from xenlive.packages import read_packages, versions
from xenlive.stages import StageRunner
from xenlive.stages.guest import build_guest_image, fetch_image_files, image_job
from xenlive.tools.makefs import make_ffs

pytestmark = pytest.mark.tools


def unsquash(image: Path, dest: Path) -> dict[str, bytes]:
    """The files of a guest image's squashfs, by name."""
    subprocess.run(["unsquashfs", "-d", str(dest), str(image)], check=True, capture_output=True)
    return {p.name: p.read_bytes() for p in dest.iterdir()}


@pytest.mark.skipif(shutil.which("makefs") is None, reason="needs makefs (apt-get install makefs)")
def test_netbsd_builder_makes_an_ffs_disk_and_an_uncompressed_kernel_from_stand_in_sets(
    tmp_path: Path,
    server: FakeServer,
) -> None:
    image = load_guest_image(netbsd_image(tmp_path, server))
    files = fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)
    work = tmp_path / "work"
    work.mkdir()
    info = netbsd.BUILDER.build(work, image_job(BuildContext(), image, NO_ARCHIVE, files))
    assert info["sets"] == ["base.tar.xz", "etc.tar.xz"]
    artifact = unsquash(work / "image.squashfs", tmp_path / "out")
    assert sorted(artifact) == ["disk.img", "netbsd-XEN3_DOMU"]
    assert artifact["netbsd-XEN3_DOMU"] == b"\x7fELF stand-in NetBSD kernel"
    assert superblock(artifact["disk.img"]) == (2, 8192)  # FFSv2 where NetBSD's own makefs puts it


@pytest.mark.skipif(shutil.which("makefs") is None, reason="needs makefs (apt-get install makefs)")
def test_freebsd_builder_writes_sets_and_overlay_as_ufs2_and_keeps_the_kernel_xl_boots_pvh(
    tmp_path: Path,
    server: FakeServer,
    stage_runner: Callable[[], StageRunner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = load_guest_image(freebsd_image(tmp_path, server))
    files = fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)
    given_to_makefs: dict[str, os.stat_result] = {}

    def make_ffs_recording_its_tree(tree: Path, out: Path, **options: Any) -> int:
        given_to_makefs.update({p.relative_to(tree).as_posix(): p.lstat() for p in tree.rglob("*")})
        return make_ffs(tree, out, **options)

    monkeypatch.setattr(freebsd, "make_ffs", make_ffs_recording_its_tree)
    stage = build_guest_image(stage_runner(), image, NO_ARCHIVE, files).stage

    assert stage.info["sets"] == ["base.txz", "kernel.txz"] and stage.info["root"] == "ufs:/dev/xbd0"
    assert versions(read_packages(stage.path / "packages.tsv")) == dict.fromkeys(
        ["base.txz", "kernel.txz"], "FreeBSD 14.2-RELEASE"
    )
    # The tree makefs wrote: both sets, owners as in the sets, and the overlay a booting guest needs.
    assert given_to_makefs["usr/bin/wall"].st_gid == 4 and given_to_makefs["usr/bin/wall"].st_mode & 0o7777 == 0o2555
    assert given_to_makefs["etc/rc.d/xenlive_ready"].st_mode & 0o777 == 0o755
    assert {"bin/sh", "boot/kernel/kernel", "etc/rc.conf", "etc/fstab", "etc/ttys"} <= given_to_makefs.keys()
    assert "etc/rc.conf.j2" not in given_to_makefs

    artifact = unsquash(stage.path / "image.squashfs", tmp_path / "out")
    assert sorted(artifact) == ["disk.img", "kernel"]
    pvh_kernel = re.search(r'kernel = "/run/xenlive/images/x/([^"]+)"', render("freebsd.cfg.j2", "pvh"))
    assert pvh_kernel and artifact[pvh_kernel[1]] == FREEBSD_KERNEL  # what xl loads is the set's kernel
    disk = artifact["disk.img"]
    assert superblock(disk) == (1, 8192)  # FreeBSD takes a UFS2 superblock only at 64 KiB, UFS1's at 8 KiB
    for overlay_file in ("etc/fstab", "etc/rc.d/xenlive_ready"):
        assert (IMAGES / "freebsd" / overlay_file).read_bytes() in disk
    assert b'|| echo fbsd)"' in disk  # rc.conf rendered with the image name as the fallback host name


def test_url_builder_passes_a_prebuilt_disk_kernel_and_ramdisk_through_decompressed(
    tmp_path: Path,
    server: FakeServer,
    stage_runner: Callable[[], StageRunner],
) -> None:
    disk, kernel, ramdisk = bytes(range(256)) * 6144, b"\x7fELF stand-in kernel", b"070701 stand-in initramfs"
    served = {  # role: file name on the server, the bytes served
        "disk": ("guest.raw.xz", lzma.compress(disk)),
        "kernel": ("vmlinux.gz", gzip.compress(kernel)),
        "ramdisk": ("initrd.img", ramdisk),
    }
    urls, pins = {}, ""
    for role, (name, body) in served.items():
        urls[role] = server.serve(f"/prebuilt/{name}", body)
        pins += f"  {role}:\n    url: {urls[role]}\n    sha512: {hashlib.sha512(body).hexdigest()}\n"
    write(tmp_path / "prebuilt.cfg.j2", 'kernel = "{{ image_dir }}/kernel"\nramdisk = "{{ image_dir }}/ramdisk"\n')
    image = load_guest_image(write(tmp_path / "prebuilt.yaml", f"builder: url\nconfig: prebuilt.cfg.j2\nurl:\n{pins}"))
    downloads = DownloadCache(tmp_path / "dl")
    files = fetch_image_files(image, downloads, offline=False, artifacts=None)
    runner = stage_runner()
    stage = build_guest_image(runner, image, NO_ARCHIVE, files).stage

    assert unsquash(stage.path / "image.squashfs", tmp_path / "out") == {
        "disk.img": disk,
        "kernel": kernel,
        "ramdisk": ramdisk,
    }
    assert stage.info == {"files": ["disk.img", "kernel", "ramdisk"], "disk_mib": 2}
    assert versions(read_packages(stage.path / "packages.tsv")) == {
        "disk.img": urls["disk"],
        "kernel": urls["kernel"],
        "ramdisk": urls["ramdisk"],
    }
    # A rebuild needs no network: the files come from the download cache by digest, the image from the stage cache.
    again = fetch_image_files(image, downloads, offline=True, artifacts=None)
    assert again == files and len(server.requests) == 3
    assert build_guest_image(runner, image, NO_ARCHIVE, again).stage.cached


def test_freebsd_builder_takes_the_official_vm_image_as_is_and_the_kernel_from_kernel_txz(
    tmp_path: Path,
    server: FakeServer,
    stage_runner: Callable[[], StageRunner],
) -> None:
    vm_image = b"stand-in GPT disk with a UFS partition" * 1000
    pins = ""
    for key, path, body in (
        ("vm_image", "/VM-IMAGES/14.2-RELEASE/amd64/FreeBSD-14.2-RELEASE-amd64-ufs.raw.xz", lzma.compress(vm_image)),
        ("kernel", "/releases/amd64/14.2-RELEASE/kernel.txz", tar_xz(FREEBSD_SETS["kernel.txz"])),
    ):
        pins += f"  {key}:\n    url: {server.serve(path, body)}\n    sha256: {hashlib.sha256(body).hexdigest()}\n"
    shutil.copy(IMAGES / "freebsd.cfg.j2", tmp_path)
    image = load_guest_image(
        write(
            tmp_path / "fbsd-vm.yaml",
            "builder: freebsd\ntypes: [pvh]\nconfig: freebsd.cfg.j2\n"
            f"freebsd:\n  release: 14.2-RELEASE\n  root: ufs:/dev/gpt/rootfs\n{pins}",
        )
    )
    files = fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)
    stage = build_guest_image(stage_runner(), image, NO_ARCHIVE, files).stage

    assert unsquash(stage.path / "image.squashfs", tmp_path / "out") == {"disk.img": vm_image, "kernel": FREEBSD_KERNEL}
    assert stage.info == {"release": "FreeBSD 14.2-RELEASE", "vm_image": True, "root": "ufs:/dev/gpt/rootfs"}
    assert versions(read_packages(stage.path / "packages.tsv")) == {  # what the manifest lists for this image
        "FreeBSD-14.2-RELEASE-amd64-ufs.raw.xz": "FreeBSD 14.2-RELEASE",
        "kernel.txz": "FreeBSD 14.2-RELEASE",
    }


@pytest.mark.skipif(shutil.which("makefs") is None, reason="needs makefs (apt-get install makefs)")
def test_the_same_tree_made_again_elsewhere_later_gives_the_same_ffs_image(tmp_path: Path) -> None:
    """makefs writes each file's times as the tree has them and its own pointers into the superblock: a tree
    unpacked at another time, in another directory, must still give the same bytes (dated by the epoch)."""
    images = []
    for where in ("first", "second-build-elsewhere"):
        tree = tmp_path / where / "tree"
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "rc").write_text("# stand-in rc\n")  # dated now, as an overlay file is
        os.utime(tree / "etc", (1, 1))  # dated before the epoch, as a set's files are: kept
        for system in ("netbsd", "freebsd"):
            make_ffs(tree, tmp_path / where / f"{system}.img", free_mib=1, system=system, timestamp=1700000000)
        images.append([(tmp_path / where / f"{s}.img").read_bytes() for s in ("netbsd", "freebsd")])
        assert sorted(p.name for p in (tmp_path / where).iterdir()) == ["freebsd.img", "netbsd.img", "tree"]
        time.sleep(1.1)
    assert images[0] == images[1]
