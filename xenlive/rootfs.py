"""Debian root filesystem trees: made by mmdebstrap, then trimmed and inspected on the host."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlive.context import date_env
from xenlive.errors import BuildError, InputFileError
from xenlive.fsutil import install_tree
from xenlive.packages import DebPackage
from xenlive.run import run
from xenlive.tools.dpkg import list_installed
from xenlive.tools.mmdebstrap import apt_config_hooks, copy_tree_hook, mmdebstrap_argv, proxy_env


def make_rootfs(
    target: Path,
    *,
    suite: str,
    sources: Sequence[str],
    packages: Sequence[str],
    epoch: int,
    overlays: Sequence[Path] = (),
    proxy: str | None = None,
    offline: bool = False,
) -> None:
    """Run mmdebstrap into target. Each overlay's etc/initramfs-tools is laid in before any package is
    installed, so that the initramfs is generated once, with our settings; the whole overlays are laid in
    after mmdebstrap, in order, by install_tree(): the tree then holds Debian's symlinks (/var/run -> /run,
    /usr/bin/awk -> /etc/alternatives/awk), which a copy from the host would follow out of the tree.
    mmdebstrap and the maintainer scripts it runs (mkinitramfs) date what they write by `epoch`, given to
    them as SOURCE_DATE_EPOCH. apt downloads through `proxy` (xenlive's package cache); `offline`: the cache
    serves an archive state that may be past its Valid-Until date."""
    setup = [
        copy_tree_hook(overlay, config)
        for overlay in overlays
        for config in INITRAMFS_CONFIGS
        if initramfs_config(overlay, config)
    ]
    customize: list[str] = []
    if offline:
        add, remove = apt_config_hooks("00xenlive-offline", 'Acquire::Check-Valid-Until "false";')
        setup.append(add)
        customize.append(remove)
    argv = mmdebstrap_argv(
        suite=suite, target=target, sources=sources, packages=packages, setup_hooks=setup, customize_hooks=customize
    )
    run(argv, env={**date_env(epoch), **(proxy_env(proxy) if proxy else {})})
    make_dev(target)
    for overlay in overlays:
        install_tree(overlay, target)


@dataclass(frozen=True)
class DeviceNode:
    """A character device of a tree's /dev: root's, mode 0666."""

    name: str
    major: int
    minor: int


# A Debian tree's /dev, as mmdebstrap makes it when it may make device nodes (its own list). Root of a user
# namespace may not (xenlive.userns): so every build, by root or by a user, empties /dev after mmdebstrap and lays
# in the directories and links (make_dev), and the image's file system gets the nodes from its own tool
# (mksquashfs pseudo files: squashfs_devices(); debugfs: make_ext4), so that both builds write the same bytes.
DEV_DIRS = ("pts", "shm")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
DEV_NODES = (
    DeviceNode("console", 5, 1),
    DeviceNode("full", 1, 7),
    DeviceNode("null", 1, 3),
    DeviceNode("ptmx", 5, 2),
    DeviceNode("random", 1, 8),
    DeviceNode("tty", 5, 0),
    DeviceNode("urandom", 1, 9),
    DeviceNode("zero", 1, 5),
)


def make_dev(tree: Path) -> None:
    """Make tree/dev hold DEV_DIRS and DEV_LINKS, and nothing else (its nodes come with the image)."""
    dev = tree / "dev"
    if dev.is_symlink() or (dev.exists() and not dev.is_dir()):
        raise BuildError(f"{dev}: is not a directory in the tree (hint: an overlay or a package replaced /dev)")
    dev.mkdir(mode=0o755, exist_ok=True)
    for entry in dev.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in DEV_DIRS:
        (dev / name).mkdir(mode=0o755)
        (dev / name).chmod(0o755)
    for name, target in DEV_LINKS.items():
        (dev / name).symlink_to(target)


def squashfs_devices() -> list[str]:
    """DEV_NODES as mksquashfs pseudo file definitions (`-p`)."""
    return [f"dev/{node.name} c 666 0 0 {node.major} {node.minor}" for node in DEV_NODES]


def debugfs_devices() -> bytes:
    """The debugfs commands that add DEV_NODES to an ext4 image whose /dev exists (each node then dated with
    the image's other paths)."""
    lines = ["cd /dev"]
    for node in DEV_NODES:
        lines += [f"mknod {node.name} c {node.major} {node.minor}", f"sif /dev/{node.name} mode 020666"]
    return "".join(f"{line}\n" for line in [*lines, "cd /"]).encode()


# The settings of the initramfs generators (initramfs-tools, tiny-initramfs), laid in before the packages.
INITRAMFS_CONFIGS = ("etc/initramfs-tools", "etc/tiny-initramfs")


def initramfs_config(overlay: Path, config: str) -> bool:
    """Whether an overlay has an initramfs generator's settings (`config`, e.g. etc/initramfs-tools), to lay
    in before the packages. Copied from the host when the tree is all but empty, they must be a directory
    of the overlay's own: a symlink on the way would copy the build host's files instead."""
    source = overlay / config
    if not source.exists() and not source.is_symlink():
        return False
    for path in (overlay / "etc", source):
        if path.is_symlink() or not path.is_dir():
            raise InputFileError(
                f"{path}: overlay {overlay} must hold {config} as a directory, not a symlink or a file "
                "(hint: move the files there instead of linking to them)"
            )
    return True


# What installing packages leaves in a tree that differs from one build to the next (logs, caches,
# backups with the time of the build) or must differ from one installed system to the next (the machine
# id, made on first boot from an empty /etc/machine-id). Removed, so that the same inputs give the same image.
BUILD_STATE = (
    "var/log/**/*.log",
    "var/log/apt/*",
    "var/log/journal/*",
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    # apt makes these owned by _apt or by root depending on how its sandbox came up: it remakes them.
    "var/cache/apt/archives/partial",
    "var/lib/apt/lists/partial",
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/subuid-",
    "etc/subgid-",
    # The bytecode of Debian's py3compile's own modules, compiled in the process that imports them: its bytes
    # differed between two builds of the same trixie dom0 (and no other file did). Python compiles them again
    # in memory when py3compile runs.
    "usr/share/python3/debpython/__pycache__",
    # insserv's boot order, for sysv-rc's parallel boot, which neither runit's native boot nor systemd reads:
    # scripts of the same rank are listed in the order the tree's file system lists /etc/init.d, so a tree
    # built in tmpfs and one built on ext4 (or on two ext4 file systems, whose hash seeds differ) differ.
    "etc/init.d/.depend.*",
)


def forget_build_state(tree: Path) -> None:
    """Remove what records the build rather than the system (see BUILD_STATE); empty the machine id."""
    for pattern in BUILD_STATE:
        for path in tree.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
    machine_id = tree / "etc" / "machine-id"
    if machine_id.exists():
        machine_id.write_text("")


@dataclass(frozen=True)
class KernelFiles:
    version: str
    vmlinuz: Path
    initrd: Path


def find_kernel(tree: Path) -> KernelFiles:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise BuildError(f"expected one kernel in {tree}/boot, found {len(kernels)}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    initrd = tree / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise BuildError(f"no initramfs {initrd} was generated")
    return KernelFiles(version, kernels[0], initrd)


def prune_modules(tree: Path, version: str, remove: Sequence[str], keep: Sequence[str] = ()) -> None:
    """Delete kernel module directories the image has no use for, keeping the listed modules, then
    rebuild the module index. `remove` and `keep` are relative to lib/modules/VERSION/kernel; a module kept
    (`drivers/net/xen-netfront.ko`) is kept compressed or not (bookworm's are `.ko`, trixie's `.ko.xz`)."""
    base = tree / "lib" / "modules" / version / "kernel"
    saved = {rel: (base / rel).read_bytes() for rel in kept_modules(base, keep)}
    for rel in remove:
        path = base / rel
        if path.is_dir():
            shutil.rmtree(path)
    for rel, data in saved.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    run(["chroot", str(tree), "depmod", "-a", version])


def kept_modules(base: Path, keep: Sequence[str]) -> list[str]:
    """The files under `base` of the modules to keep, as they are installed: `drivers/net/xen-netfront.ko`
    matches itself, `.ko.xz` or `.ko.zst`, and nothing else."""
    found = []
    for rel in keep:
        for path in sorted(base.glob(f"{rel}*")):
            if path.is_file() and path.name in {Path(rel).name + suffix for suffix in ("", ".xz", ".zst", ".gz")}:
                found.append(path.relative_to(base).as_posix())
    return found


def list_packages(tree: Path) -> dict[str, DebPackage]:
    """Installed Debian packages of a tree: name -> version and architecture."""
    return list_installed(tree / "var/lib/dpkg")
