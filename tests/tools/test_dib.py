"""A real diskimage-builder build (debian-minimal + baremetal, trixie: the default suite, its kernel a zstd
bzImage): what the guest image holds.

Runs when diskimage-builder is installed (`pip install xenlive[dib]`); one build, about two minutes.
"""

from __future__ import annotations

import logging
import struct
import time
from pathlib import Path

import pytest

from xenlive.builders.dib import DibOutput, find_disk_image_create, make_dib_image
from xenlive.kernel import ELF_MAGIC
from xenlive.paths import data_dir
from xenlive.recipe import Mirror
from xenlive.run import run

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        find_disk_image_create() is None, reason="diskimage-builder not installed (pip install xenlive[dib])"
    ),
]
log = logging.getLogger(__name__)
OVERLAYS = [data_dir("guest-images") / "init" / "systemd", data_dir("guest-images") / "debian"]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> DibOutput:
    start = time.monotonic()
    out = make_dib_image(
        tmp_path_factory.mktemp("dib") / "work",
        elements=["debian-minimal", "baremetal"],
        suite="trixie",
        sources=Mirror(url="http://deb.debian.org/debian", suites=["trixie"]).source_lines(),
        overlays=OVERLAYS,
    )
    log.warning(
        "diskimage-builder guest: %.0f s; disk %d MiB, vmlinux %d MiB, initrd %d MiB",
        time.monotonic() - start,
        *(path.stat().st_size >> 20 for path in (out.disk, out.vmlinux, out.initrd)),
    )
    return out


def debugfs(image: Path, request: str) -> str:
    return run(["debugfs", "-R", request, str(image)], capture=True).stdout.decode()


def test_the_root_filesystem_is_a_clean_ext4_labelled_root(guest: DibOutput) -> None:
    run(["e2fsck", "-fn", str(guest.disk)], capture=True)
    assert run(["e2label", str(guest.disk)], capture=True).stdout.decode().strip() == "root"


def test_the_guest_overlay_is_in_the_image_and_its_fstab_wins(guest: DibOutput) -> None:
    unit = debugfs(guest.disk, "cat /etc/systemd/system/xenlive-ready.service")
    assert unit == (OVERLAYS[0] / "etc/systemd/system/xenlive-ready.service").read_text()
    wants = debugfs(guest.disk, "ls /etc/systemd/system/multi-user.target.wants")
    assert "xenlive-ready.service" in wants
    assert debugfs(guest.disk, "cat /etc/fstab") == (OVERLAYS[1] / "etc/fstab").read_text()


def test_the_image_has_systemd_as_init_and_a_kernel_with_the_xen_block_frontend(guest: DibOutput) -> None:
    assert "systemd" in debugfs(guest.disk, "stat /usr/sbin/init")  # a symlink to ../lib/systemd/systemd
    versions = [v for v in debugfs(guest.disk, "ls -p /usr/lib/modules").split("\n") if v.startswith("/")]
    names = [v.split("/")[5] for v in versions if v.split("/")[5] not in (".", "..")]
    assert len(names) == 1
    block = f"/usr/lib/modules/{names[0]}/kernel/drivers/block"
    # bookworm's modules are .ko, trixie's .ko.xz
    [module] = [name for name in debugfs(guest.disk, f"ls {block}").split() if name.startswith("xen-blkfront.ko")]
    assert "Type: regular" in debugfs(guest.disk, f"stat {block}/{module}")


def test_vmlinux_is_an_uncompressed_x86_64_elf_kernel(guest: DibOutput) -> None:
    header = guest.vmlinux.read_bytes()[:20]
    assert header.startswith(ELF_MAGIC)
    assert struct.unpack_from("<H", header, 18)[0] == 62  # e_machine: EM_X86_64


def test_the_initramfs_can_mount_root_from_the_xen_disk(guest: DibOutput) -> None:
    listing = run(["lsinitramfs", str(guest.initrd)], capture=True).stdout.decode()
    assert "/kernel/drivers/block/xen-blkfront.ko" in listing
    assert "/kernel/fs/ext4/ext4.ko" in listing
