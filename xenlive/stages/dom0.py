"""The dom0 root filesystem stage: Debian + Xen + dom0's init, as the base squashfs of the live system.

Its output: filesystem.squashfs (the tree without /boot), vmlinuz (the kernel as an lz4 ELF, see
xenlive.kernel), initrd.img, xen.gz, packages.tsv.
Recipe overlays do not go in here but in the small config layer (stages/config.py), so that editing
an overlay file never reruns mmdebstrap.
"""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs
from xenlive.context import BuildContext, versions_of
from xenlive.contract import render_shell, write_contract_tree
from xenlive.debcache import DebCache, apt_session
from xenlive.errors import BuildError
from xenlive.fsutil import GIB, digest_tree, in_memory
from xenlive.kernel import write_lz4_vmlinux
from xenlive.packages import DebPackage, write_packages
from xenlive.paths import data_dir
from xenlive.progress import note
from xenlive.recipe import Recipe
from xenlive.rootfs import (
    find_kernel,
    forget_build_state,
    list_packages,
    make_rootfs,
    prune_modules,
    squashfs_devices,
)
from xenlive.stages import StageResult, StageRunner
from xenlive.tools.squashfs import make_squashfs

# 4: dom0.init; xenlive's own initramfs script (boot=xenlive) instead of live-boot; 5: without insserv's
# etc/init.d/.depend.* (their order came from the file system the tree was built on); 6: the kernel as an
# lz4 ELF (kernel.write_lz4_vmlinux); 7: only a snapshot.debian.org source skips the Valid-Until check;
# 8: the Xen version from the suite, and where its programs are (xen_lib); 9: UNBAKED's units removed as links
# (Debian's ssh.service had stayed enabled); 10: /dev's nodes from a table (rootfs.DEV_NODES), the same for a
# build by root and by a user; 11: without the bytecode of py3compile's modules (rootfs.BUILD_STATE); 12: more
# PRUNED_MODULES
STAGE_VERSION = 12
TOOLS = ("mmdebstrap", "chroot", "dpkg-query", "mksquashfs", "lz4", "zstd")
# What dom0's tree weighs at most while it is built (about 700 MB after mmdebstrap): kept in memory when the
# machine has that to spare (fsutil.in_memory).
TREE_MEMORY = 3 * GIB // 2
# The tools that write the stage's bytes: its tree, its squashfs, dom0's kernel.
VERSIONS = versions_of("mmdebstrap", "mksquashfs", "lz4")

# What every dom0 gets. No Recommends: qemu-system-xen (+210 MB) comes only with an HVM guest.
BASE_PACKAGES = (
    "xen-system-amd64",
    "linux-image-amd64",
    "iproute2",
    "dmsetup",
    "kmod",
    "procps",
    "lz4",
    # The live root's initramfs (overlays/dom0-base: boot=xenlive) runs its shell code in busybox.
    "busybox",
    # The guests' network and its packet filter, and SSH into dom0. The web console's python3 comes with Xen's
    # tools: xen-utils-common depends on python3:any in bookworm and in trixie.
    "dnsmasq-base",
    "nftables",
    "iputils-ping",
    "openssh-server",
)
# What each dom0.init brings: runit (runit-init), busybox's DHCP client for the uplink and acpid for the
# power button; or systemd, with udev, systemd-networkd (part of systemd), systemd-resolved
# (and logind for the power button).
INIT_PACKAGES = {
    "runit": ("runit-init", "udhcpc", "acpid"),
    "systemd": ("systemd-sysv", "udev", "systemd-resolved"),
}

# Per-install secrets and units openssh-server's postinst set up, removed from the image: the host key is
# made on dom0's first SSH connection (overlays/xenlive: ssh.socket, ssh.service.d), never baked in, and it is
# the one ed25519 key both inits make: trixie's openssh also has every sshd unit want sshd-keygen.service
# (`ssh-keygen -A`: RSA and ECDSA keys too, seconds of CPU under QEMU TCG).
UNBAKED = (
    "etc/ssh/ssh_host_*",
    "etc/systemd/system/multi-user.target.wants/ssh.service",
    "etc/systemd/system/sshd.service",
    "etc/systemd/system/*.wants/sshd-keygen.service",
)

# Kernel modules a demo dom0 has no use for (relative to lib/modules/VERSION/kernel): sound, TV
# and camera, GPU, wireless, InfiniBand, industrial I/O and staging drivers. About 180 MB of 395.
# Trixie's kernel also brings AI accelerators, CAN, NFC, Fibre Channel HBAs, USB gadget mode, SCSI targets and
# FPGA managers (3.1 MiB of .ko.xz, which squashfs cannot shrink: the demo ISO was 250.3 MiB with them).
PRUNED_MODULES = (
    "sound",
    "drivers/media",
    "drivers/gpu",
    "drivers/net/wireless",
    "drivers/infiniband",
    "drivers/iio",
    "drivers/staging",
    "drivers/comedi",
    "drivers/bluetooth",
    "drivers/isdn",
    "drivers/accel",
    "drivers/net/can",
    "drivers/nfc",
    "drivers/scsi/lpfc",
    "drivers/scsi/qla2xxx",
    "drivers/usb/gadget",
    "drivers/target",
    "drivers/fpga",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
    "net/can",
    "net/nfc",
)


def packages_for(recipe: Recipe) -> list[str]:
    packages = [
        *BASE_PACKAGES,
        *INIT_PACKAGES[recipe.dom0.init],
        hypervisor_package(recipe.xen_version()),
        *recipe.dom0.packages,
    ]
    if any(g.type == "hvm" for g in recipe.guests):
        packages.append("qemu-system-xen")
    return sorted(set(packages))


def hypervisor_package(xen_version: str) -> str:
    """Debian's package of Xen X.Y itself (xen-system-amd64 depends on the suite's)."""
    return f"xen-hypervisor-{xen_version}-amd64"


def find_xen_lib(tree: Path, xen_version: str) -> str:
    """Where the installed Xen keeps its programs (xl, xenstored, xen-init-dom0...), as a path in dom0:
    /usr/lib/xen-X.Y, from xen-utils-X.Y. dom0's scripts run them from there (XEN_BIN), without Debian's
    version wrapper; the config stage renders it, so that nothing at boot has to look for it."""
    found = sorted(p.name for p in (tree / "usr" / "lib").glob("xen-[0-9]*") if (p / "bin" / "xl").exists())
    expected = f"xen-{xen_version}"
    if expected not in found:
        raise BuildError(
            f"dom0 root filesystem: Xen {xen_version}'s programs are not in /usr/lib/{expected} "
            f"(found: {', '.join(found) or 'none'}); is xen-utils-{xen_version} what the suite's Xen depends on?"
        )
    return f"/usr/lib/{expected}"


def dom0_inputs(recipe: Recipe, context: BuildContext) -> StageInputs:
    """What the stage reads: the archive, dom0's package list and overlays/dom0-base, never the rest of the
    recipe, so that recipes with the same dom0 share it; and the versions of the tools that write it. Dated by
    the archive it installs from."""
    base_overlay = data_dir("overlays") / "dom0-base"
    return StageInputs(
        stage="dom0-rootfs",
        version=STAGE_VERSION,
        settings={
            "suite": recipe.dom0.suite,
            "mirrors": [m.model_dump(mode="json") for m in recipe.dom0.resolved_mirrors()],
            "packages": packages_for(recipe),
            "pruned_modules": list(PRUNED_MODULES),
            "unbaked": list(UNBAKED),
            **context.versions_for(VERSIONS),
            "contract": render_shell(),
        },
        files={"overlays/dom0-base": digest_tree(base_overlay)},
        upstream={},
        epoch=context.dates.of_archive(recipe.dom0.apt_sources()),
    )


@dataclass(frozen=True)
class Dom0Rootfs:
    """The stage's artifact: its cache entry, and the kernel, Xen and packages in it."""

    stage: StageResult
    kernel: str  # the kernel release, e.g. 6.1.0-28-amd64
    xen: str  # the version of the xen-hypervisor package
    linux_image: str  # the version of the kernel's package
    xen_lib: str  # where Xen's programs are in dom0, e.g. /usr/lib/xen-4.20
    packages: dict[str, DebPackage]

    @classmethod
    def of(cls, stage: StageResult) -> Dom0Rootfs:
        kernel, xen, linux_image, xen_lib = (
            str(stage.fact(name)) for name in ("kernel", "xen", "linux_image", "xen_lib")
        )
        return cls(stage, kernel, xen, linux_image, xen_lib, stage.packages())


def build_dom0_rootfs(runner: StageRunner, recipe: Recipe) -> Dom0Rootfs:
    inputs = dom0_inputs(recipe, runner.context)
    epoch = inputs.date

    def build(work: Path) -> dict[str, Any]:
        with in_memory(work / "tree", TREE_MEMORY) as in_ram:
            note(f"building the tree {'in memory' if in_ram else 'on disk'}")
            return make_dom0_rootfs(work, work / "tree", recipe, epoch, runner.debs)

    return Dom0Rootfs.of(runner.run(inputs, "dom0 root filesystem (mmdebstrap)", build))


def installed_version(packages: dict[str, DebPackage], name: str) -> str:
    """The version of a package dom0 cannot be without (Xen, its kernel), which mmdebstrap installed."""
    if name not in packages:
        raise BuildError(
            f"dom0 root filesystem: no package {name} is installed; Xen and the kernel must come from Debian's packages"
        )
    return packages[name].version


def unbake(tree: Path) -> list[str]:
    """Remove what UNBAKED names from dom0's tree; the relative paths removed. The units are symlinks to absolute
    paths inside the tree, dangling on the build host: matched as links (glob's lexists), not by their targets
    (pathlib's glob followed them and kept Debian's ssh.service enabled wherever the host has no such unit)."""
    removed = []
    for pattern in UNBAKED:
        for name in sorted(glob.glob(glob.escape(str(tree)) + "/" + pattern)):
            Path(name).unlink()
            removed.append(Path(name).relative_to(tree).as_posix())
    return removed


def make_dom0_rootfs(work: Path, tree: Path, recipe: Recipe, epoch: int, debs: DebCache | None) -> dict[str, Any]:
    """The stage's build step: mmdebstrap into `tree`, then the squashfs, kernel, Xen and package list in `work`."""
    with apt_session(debs, recipe.dom0.apt_sources()) as apt:
        make_rootfs(
            tree,
            suite=recipe.dom0.suite,
            sources=recipe.dom0.apt_sources(),
            packages=packages_for(recipe),
            epoch=epoch,
            overlays=[data_dir("overlays") / "dom0-base", write_contract_tree(work / "contract", initramfs=True)],
            proxy=apt.url or None,
            offline=debs is not None and debs.offline,
        )
    kernel = find_kernel(tree)
    prune_modules(tree, kernel.version, PRUNED_MODULES)
    unbake(tree)
    forget_build_state(tree)
    write_lz4_vmlinux(kernel.vmlinuz, work / "vmlinuz")  # Xen boots it ~3 s sooner than the bzImage
    shutil.copy2(kernel.initrd, work / "initrd.img")
    xen_version = recipe.xen_version()
    xen_lib = find_xen_lib(tree, xen_version)
    shutil.copy2(tree / "boot" / f"xen-{xen_version}-amd64.gz", work / "xen.gz")
    packages = list_packages(tree)
    write_packages(packages, work / "packages.tsv")
    make_squashfs(
        tree,
        work / "filesystem.squashfs",
        excludes=["boot/*", "var/cache/apt/*.bin"],
        epoch=epoch,
        pseudo=squashfs_devices(),
    )
    return {
        "kernel": kernel.version,
        "xen": installed_version(packages, hypervisor_package(xen_version)),
        "xen_lib": xen_lib,
        "linux_image": installed_version(packages, f"linux-image-{kernel.version}"),
        **apt.facts(),
    }
