"""The `mmdebstrap` builder: a Debian guest of its own suite (dom0's by default), installed by mmdebstrap.

The root filesystem becomes an ext4 image written by `mkfs.ext4 -d` (no mount, no loop device); the
kernel is stored as an uncompressed vmlinux (Xen boots it fastest) beside its initramfs. Everything in
the image is dated by the build's epoch, and its UUID and directory hash seed derive from the image, so
that the same inputs give the same disk, bit for bit.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid as uuidlib
from pathlib import Path
from typing import Any

from xenlive.builders.base import Builder, ImageJob
from xenlive.builders.debian import debian_inputs, init_tree, packages_for
from xenlive.context import versions_of
from xenlive.contract import write_contract_tree
from xenlive.debcache import apt_session
from xenlive.errors import BuildError
from xenlive.fsutil import GIB, in_memory, tree_size_mib
from xenlive.kernel import write_vmlinux
from xenlive.packages import write_packages
from xenlive.progress import note
from xenlive.rootfs import (
    debugfs_devices,
    find_kernel,
    forget_build_state,
    list_packages,
    make_rootfs,
    prune_modules,
)
from xenlive.run import run
from xenlive.tools.squashfs import make_squashfs

# What the guest's tree weighs at most while it is built (about 730 MB): kept in memory when the machine has
# that to spare (fsutil.in_memory).
TREE_MEMORY = 3 * GIB // 2
# A PV/PVH guest sees only Xen's virtual devices: drop every hardware driver but the Xen frontends.
PRUNED_MODULES = ("sound", "drivers", "net/wireless", "net/mac80211", "net/bluetooth")
KEPT_MODULES = (
    "drivers/block/xen-blkfront.ko",
    "drivers/net/xen-netfront.ko",
    "drivers/xen/xen-evtchn.ko",
    "drivers/xen/xenfs/xenfs.ko",
    "drivers/char/hw_random/virtio-rng.ko",
)

# What openssh-server's maintainer scripts leave that a guest image must not carry: host keys (made in the
# guest after it is ready, by xenlive-sshd-setup, never shared by every boot of the image) and the links that
# would start Debian's own sshd at boot (systemd's, runit-helper's): xenlive's sshd starts once the guest's
# network check has reported (xenlive-sshd).
UNBAKED = (
    "etc/ssh/ssh_host_*",
    "etc/systemd/system/multi-user.target.wants/ssh.service",
    "etc/systemd/system/sockets.target.wants/ssh.socket",
    "etc/systemd/system/sshd.service",
    "etc/runit/runsvdir/default/ssh",
)


def remove_unbaked(tree: Path) -> None:
    """Remove UNBAKED from the tree. Only the last part of a pattern may hold a wildcard, and a directory
    whose path leads out of the tree (Debian's absolute links, such as runsvdir/current) is left alone: what
    it points to is the build host's."""
    for pattern in UNBAKED:
        parent, _, name = pattern.rpartition("/")
        directory = tree / parent
        if not directory.is_dir() or not directory.resolve().is_relative_to(tree.resolve()):
            continue
        for path in directory.iterdir():
            if fnmatch.fnmatchcase(path.name, name):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def overlays_for(job: ImageJob) -> list[Path]:
    """The trees laid into the guest's root, in order: xenlive's tree for the image's init, then the
    image's overlay."""
    return [init_tree(job.image.init), *([job.overlay] if job.overlay is not None else [])]


def build(work: Path, job: ImageJob) -> dict[str, Any]:
    with in_memory(work / "tree", TREE_MEMORY) as in_ram:
        note(f"building the tree {'in memory' if in_ram else 'on disk'}")
        return make_image(work, work / "tree", job)


def make_image(work: Path, tree: Path, job: ImageJob) -> dict[str, Any]:
    """mmdebstrap into `tree`, then image.squashfs (disk.img, vmlinux, initrd.img) and the package list in `work`."""
    epoch = job.epoch
    with apt_session(job.debs, job.archive.sources) as apt:
        make_rootfs(
            tree,
            suite=job.archive.suite,
            sources=job.archive.sources,
            packages=packages_for(job.image, job.image.init),
            epoch=epoch,
            overlays=[write_contract_tree(work / "contract"), *overlays_for(job)],
            proxy=apt.url or None,
            offline=job.debs is not None and job.debs.offline,
        )
    kernel = find_kernel(tree)
    staging = work / "staging"
    staging.mkdir()
    write_vmlinux(kernel.vmlinuz, staging / "vmlinux")
    shutil.copy2(kernel.initrd, staging / "initrd.img")
    prune_modules(tree, kernel.version, PRUNED_MODULES, KEPT_MODULES)
    for leftover in (tree / "boot").iterdir():
        leftover.unlink()
    forget_build_state(tree)
    remove_unbaked(tree)
    packages = list_packages(tree)
    write_packages(packages, work / "packages.tsv")
    size_mib = make_ext4(tree, staging / "disk.img", job.image.disk_free, epoch=epoch)
    make_squashfs(staging, work / "image.squashfs", all_root=True, epoch=epoch)
    shutil.rmtree(staging)
    return {
        "suite": job.archive.suite,
        "kernel": kernel.version,
        "disk_mib": size_mib,
        "packages": len(packages),
        **apt.facts(),
    }


def make_ext4(tree: Path, out: Path, free_mib: int, *, epoch: int) -> int:
    """Write tree into a new ext4 image without mounting anything (mkfs.ext4 -d); its size in MiB."""
    used = tree_size_mib(tree)
    size = int(used * 1.15) + free_mib + 16  # ext4 metadata and journal
    # Reproducible: a UUID and directory hash seed derived from the image, every time the epoch.
    uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"xenlive:{out.name}:{size}"))
    options = f"root_owner=0:0,hash_seed={uuid}"
    argv = ["mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-d", str(tree), "-E", options, str(out), f"{size}M"]
    (tree / "dev").mkdir(mode=0o755, exist_ok=True)  # where debugfs_devices() adds the device nodes
    paths = date_tree(tree, epoch)
    # mkfs.ext4 -d (e2fsprogs 1.47.0) copies each file's ctime, which no one can set on the host, and the
    # access times of directories, which reading them to copy them changed: set both in the image, in one
    # debugfs session for the whole tree.
    commands = debugfs_devices() + dating_script(paths, epoch, tree)
    run(argv, env={"E2FSPROGS_FAKE_TIME": str(epoch)})
    script = out.with_name(out.name + ".debugfs")
    script.write_bytes(commands)
    run(["debugfs", "-w", "-f", str(script), str(out)], env={"E2FSPROGS_FAKE_TIME": str(epoch)}, capture=True)
    script.unlink()
    return size


# debugfs reads a script line by line into a buffer of 8 KiB, and ends a line at a newline or a carriage
# return: a longer line, or a name holding either, would be cut into commands of its own.
DEBUGFS_MAX_LINE = 4096


def dating_script(paths: list[str], epoch: int, tree: Path) -> bytes:
    """The debugfs commands that date every path of the image (relative to its root) by `epoch`."""
    lines = []
    for path in paths:
        for field in ("ctime", "atime"):
            line = os.fsencode(f"sif {debugfs_quote('/' + path)} {field} @{epoch}\n")
            if len(line) > DEBUGFS_MAX_LINE:
                raise BuildError(
                    f"{tree}/{path}: the path is too long for debugfs, which dates the ext4 image "
                    f"(hint: shorten it to well under {DEBUGFS_MAX_LINE // 2} bytes)"
                )
            lines.append(line)
    return b"".join(lines)


def debugfs_quote(path: str) -> str:
    """A path as one argument of a debugfs command: in double quotes, each of its own doubled (debugfs's
    command parser, libss, reads "" inside quotes as one "). A newline or carriage return cannot be
    quoted: such a name is a BuildError."""
    if "\n" in path or "\r" in path:
        raise BuildError(
            f"file name {path!r} in the image holds a line break, which debugfs (it dates the ext4 image) cannot "
            "take (hint: rename the file; it comes from the image's overlay or one of its packages)"
        )
    return '"' + path.replace('"', '""') + '"'


def date_tree(tree: Path, epoch: int) -> list[str]:
    """Set every access and modification time under tree to `epoch`; the relative paths, root first."""
    paths = [""]
    os.utime(tree, (epoch, epoch))
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            path = Path(dirpath) / name
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            paths.append(path.relative_to(tree).as_posix())
    return paths


BUILDER = Builder(
    name="mmdebstrap",
    summary="installs Debian of the image's suite (dom0's unless it names one)",
    # 7: overlays laid in after mmdebstrap, inside the tree, modes kept; 8: the disk sized from the tree's
    # files (fsutil.tree_size_mib), the same whether the tree was built in memory or on disk, and without
    # insserv's etc/init.d/.depend.* (rootfs.BUILD_STATE)
    # 9: the packages of each init (runit guests boot with tiny-initramfs); 10: UNBAKED; 11: only a
    # snapshot.debian.org source skips the Valid-Until check; 12: the image's suite (a fact); 13: /dev's nodes
    # from a table (rootfs.DEV_NODES), the same for a build by root and by a user; 14: without the bytecode of
    # py3compile's modules (rootfs.BUILD_STATE)
    stage_version=14,
    build=build,
    tools=("mmdebstrap", "chroot", "dpkg-query", "mkfs.ext4", "debugfs", "mksquashfs", "zstd"),
    versions=versions_of("mmdebstrap", "mkfs.ext4", "debugfs", "mksquashfs"),  # what writes the image's bytes
    inputs=lambda job: debian_inputs(job, job.image.init),
    init=lambda image: image.init,
    keys=("init", "suite", "packages"),
    from_archive=True,
)
