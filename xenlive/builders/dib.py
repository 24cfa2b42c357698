"""diskimage-builder: Debian guest images made from DIB elements (the `diskimage-builder` backend).

The result has the same shape as an mmdebstrap guest: an ext4 root filesystem image (booted as
`root=/dev/xvda`), an uncompressed vmlinux and an initramfs with the Xen block frontend. DIB's
`baremetal` element writes the kernel and initramfs beside the image; xenlive's own element
`xenlive-guest` (guest-images/dib-elements/) lays the guest overlay into the image.

Only partition-less images can be built here: DIB mounts the partitions of an image through kpartx,
which needs device-mapper, and the build host's kernel has none. So `vm`, the `block-device-*`
elements and a DIB_BLOCK_DEVICE_CONFIG with partitions or LVM are refused before anything runs.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xenlive.builders.base import Builder, CacheInputs, ImageJob, ImageRecipe
from xenlive.builders.debian import debian_inputs, init_tree, packages_for
from xenlive.context import versions_of
from xenlive.contract import write_contract_tree
from xenlive.debcache import apt_session
from xenlive.errors import PartitionedImageError, ToolError
from xenlive.fsutil import digest_tree
from xenlive.kernel import write_vmlinux
from xenlive.packages import write_packages
from xenlive.paths import data_dir
from xenlive.rootfs import initramfs_config
from xenlive.run import require_tools, run
from xenlive.tools.dpkg import list_installed
from xenlive.tools.mmdebstrap import apt_sources, proxy_env
from xenlive.tools.squashfs import make_squashfs
from xenlive.userns import is_real_root

XENLIVE_ELEMENT = "xenlive-guest"
# Host tools DIB runs for a partition-less Debian image. It calls sudo even as root, and asks
# debootstrap for its version even when it bootstraps with mmdebstrap (which it prefers).
HOST_TOOLS = ("sudo", "debootstrap", "losetup", "mkfs.ext4", "fstrim")
# DIB runs sudo, and losetup and mount on a loop device: none of them works as root of a user namespace.
ROOT_ONLY = "diskimage-builder needs the host's root: it runs sudo, and mounts a loop device"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INSTALL_HINT = "install the diskimage-builder backend with: pip install xenlive[dib]"
PARTITION_HINT = (
    "the build host has no device-mapper, so partitioned images cannot be built; "
    "use a partition-less element set such as debian-minimal + baremetal"
)


@dataclass(frozen=True)
class DibOutput:
    """A built guest: ext4 root filesystem image, uncompressed kernel, initramfs."""

    disk: Path
    vmlinux: Path
    initrd: Path


def dib_version() -> str:
    """diskimage-builder's version (part of a DIB guest's cache key); "not installed" without it."""
    try:
        return importlib.metadata.version("diskimage-builder")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def element_dir() -> Path:
    """xenlive's own DIB elements (guest-images/dib-elements)."""
    return data_dir("guest-images") / "dib-elements"


def find_disk_image_create() -> Path | None:
    """disk-image-create beside our Python (a virtualenv need not be activated), else on PATH."""
    beside = Path(sys.executable).parent / "disk-image-create"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("disk-image-create")
    return Path(found) if found else None


def dib_argv(*, elements: Sequence[str], output: Path, packages: Sequence[str] = ()) -> list[str]:
    """disk-image-create's command line for a raw, partition-less amd64 image with xenlive's element."""
    argv = ["disk-image-create", "-a", "amd64", "-t", "raw", "--root-label", "root", "-o", str(output)]
    if packages:
        argv += ["-p", ",".join(sorted(set(packages)))]
    argv += [*elements, *([] if XENLIVE_ELEMENT in elements else [XENLIVE_ELEMENT])]
    return argv


def dib_env(
    *,
    suite: str,
    sources: Sequence[str],
    element_dirs: Sequence[Path],
    bin_dir: Path,
    home: Path,
    tmp: Path,
    overlays: Sequence[Path] = (),
    free_mib: int = 256,
    environment: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """disk-image-create's whole environment: nothing leaks in from ours but what is listed here.

    `sources` are one-line apt sources ("deb URL SUITE COMPONENTS..."): the first one's archive bootstraps the
    image; all of them become its apt sources (as for mmdebstrap). `environment` holds the user's own DIB_*
    settings for their elements and wins over ours.
    """
    sources_conf = "\n".join(f"xenlive-{i}:{line}" for i, line in enumerate(apt_sources(sources)))
    env = {
        "PATH": f"{bin_dir}:{SYSTEM_PATH}",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "ELEMENTS_PATH": ":".join(str(d) for d in element_dirs),
        "DIB_RELEASE": suite,
        "DIB_DISTRIBUTION_MIRROR": sources[0].split()[1],  # "deb URL SUITE COMPONENTS..."
        "DIB_APT_SOURCES_CONF": sources_conf,
        "DIB_IMAGE_EXTRA_SIZE": str(free_mib),
        # No ifupdown stanzas for eth0/eth1: the guest has no ifupdown, as an mmdebstrap guest.
        "DIB_APT_MINIMAL_CREATE_INTERFACES": "0",
        # Laid into the image in order by the xenlive-guest element (a later one wins), ':'-separated.
        "XENLIVE_GUEST_OVERLAYS": ":".join(str(overlay) for overlay in overlays),
    }
    return {**env, **(environment or {})}


def check_partition_less(
    elements: Sequence[str], element_dirs: Sequence[Path] = (), environment: Mapping[str, str] | None = None
) -> None:
    """Refuse elements that make a partitioned image, including those pulled in through element-deps of
    the element directories given, and a DIB_BLOCK_DEVICE_CONFIG with partitions or LVM."""
    needed_by: dict[str, str] = {}
    queue = list(elements)
    while queue:
        name = queue.pop(0)
        via = f" (needed by '{needed_by[name]}')" if name in needed_by else ""
        if name == "vm" or name.startswith("block-device-"):
            raise PartitionedImageError(
                f"diskimage-builder element '{name}'{via} makes a partitioned image: {PARTITION_HINT}"
            )
        for directory in element_dirs:
            element = directory / name
            for config in sorted(element.glob("block-device*.yaml")):
                if _has_partitions(config.read_text()):
                    raise PartitionedImageError(
                        f"diskimage-builder element '{name}'{via} defines partitions in {config.name}: {PARTITION_HINT}"
                    )
            deps = element / "element-deps"
            if deps.is_file():
                for dep in deps.read_text().split():
                    if dep not in needed_by and dep not in elements:
                        needed_by[dep] = name
                        queue.append(dep)
    config_text = (environment or {}).get("DIB_BLOCK_DEVICE_CONFIG", "")
    if config_text.startswith("file://"):
        config_text = Path(config_text.removeprefix("file://")).read_text()
    if _has_partitions(config_text):
        raise PartitionedImageError(f"DIB_BLOCK_DEVICE_CONFIG defines partitions or LVM: {PARTITION_HINT}")


def _has_partitions(block_device_yaml: str) -> bool:
    """Whether a DIB block-device config has a `partitioning` or `lvm` node (each needs device-mapper)."""

    def walk(node: object) -> bool:
        if isinstance(node, dict):
            return any(key in ("partitioning", "lvm") or walk(value) for key, value in node.items())
        if isinstance(node, list):
            return any(walk(item) for item in node)
        return False

    return walk(yaml.safe_load(block_device_yaml)) if block_device_yaml.strip() else False


def make_dib_image(
    work: Path,
    *,
    elements: Sequence[str],
    suite: str,
    sources: Sequence[str],
    packages: Sequence[str] = (),
    overlays: Sequence[Path] = (),
    element_dirs: Sequence[Path] = (),
    environment: Mapping[str, str] | None = None,
    free_mib: int = 256,
    proxy: str | None = None,
) -> DibOutput:
    """Build a guest with diskimage-builder into work/: disk.img (ext4, label `root`), vmlinux, initrd.img.

    `element_dirs` are the user's own element directories, searched before xenlive's; `overlays` are
    copied into the image by the xenlive-guest element (etc/initramfs-tools before the packages).
    The image does not depend on the guest's hostname: xl passes it on the kernel command line.
    `proxy`: xenlive's package cache, which debootstrap and apt download through (as http_proxy; no element
    of ours writes it into the image).
    """
    work = work.resolve()
    dirs = [*(d.resolve() for d in element_dirs), element_dir()]
    check_partition_less([*elements, XENLIVE_ELEMENT], dirs, environment)
    for overlay in overlays:
        initramfs_config(overlay, "etc/initramfs-tools")  # xenlive-guest copies it from the host: no symlink on the way
    program = find_disk_image_create()
    if program is None:
        raise ToolError(f"disk-image-create not found; {INSTALL_HINT}")
    require_tools(HOST_TOOLS)
    build, tmp = work / "dib", work / "tmp"
    build.mkdir(parents=True)
    tmp.mkdir()
    env = dib_env(
        suite=suite,
        sources=sources,
        element_dirs=dirs,
        bin_dir=program.parent,
        home=Path.home(),
        tmp=tmp,
        overlays=[overlay.resolve() for overlay in overlays],
        free_mib=free_mib,
        environment={
            **{k: v for k, v in os.environ.items() if k in PROXY_VARIABLES},
            **(proxy_env(proxy) if proxy else {}),
            **(environment or {}),
        },
    )
    name = build / "image"
    run(dib_argv(elements=elements, output=name, packages=packages), env=env, clean_env=True, cwd=work)
    out = DibOutput(disk=work / "disk.img", vmlinux=work / "vmlinux", initrd=work / "initrd.img")
    name.with_suffix(".raw").rename(out.disk)
    name.with_suffix(".initrd").rename(out.initrd)
    write_vmlinux(name.with_suffix(".vmlinuz"), out.vmlinux)
    shutil.rmtree(build)
    shutil.rmtree(tmp)
    return out


def preflight(image: ImageRecipe) -> None:
    """Before the first stage: disk-image-create is installed, and the elements make no partitioned image."""
    if find_disk_image_create() is None:
        raise ToolError(f"disk-image-create not found; {INSTALL_HINT}")
    if os.geteuid() == 0 and not is_real_root():  # an ordinary user is told at validate time (Builder.root_only)
        raise ToolError(f"{ROOT_ONLY}, and this build runs in a user namespace; build the recipe as root (sudo)")
    check_partition_less([*image.elements, XENLIVE_ELEMENT], [element_dir()])


def inputs(job: ImageJob) -> CacheInputs:
    debian = debian_inputs(job, "systemd")
    return CacheInputs(
        settings=debian.settings, files={**debian.files, "xenlive dib elements": digest_tree(element_dir())}
    )


def build(work: Path, job: ImageJob) -> dict[str, Any]:
    """The same artifact as the mmdebstrap builder's, made by diskimage-builder from the image's `elements`."""
    staging = work / "staging"
    with apt_session(job.debs, job.archive.sources) as apt:
        out = make_dib_image(
            staging,
            elements=job.image.elements,
            suite=job.archive.suite,
            sources=job.archive.sources,
            packages=packages_for(job.image, "systemd"),
            # debian-minimal boots with systemd: xenlive's tree for it, then the image's overlay.
            overlays=[
                write_contract_tree(work / "contract"),
                init_tree("systemd"),
                *([job.overlay] if job.overlay is not None else []),
            ],
            free_mib=job.image.disk_free,
            proxy=apt.url or None,
        )
    # The package list, read from the image's dpkg status without mounting it.
    admin = work / "dpkg"
    admin.mkdir()
    run(["debugfs", "-R", f"dump /var/lib/dpkg/status {admin / 'status'}", str(out.disk)], capture=True)
    packages = list_installed(admin)
    write_packages(packages, work / "packages.tsv")
    disk_mib = out.disk.stat().st_size >> 20
    make_squashfs(staging, work / "image.squashfs", all_root=True, epoch=job.epoch)
    shutil.rmtree(staging)
    return {"suite": job.archive.suite, "disk_mib": disk_mib, "packages": len(packages), **apt.facts()}


BUILDER = Builder(
    name="diskimage-builder",
    summary="makes the same from diskimage-builder `elements` (`pip install xenlive[dib]`; partition-less images only)",
    stage_version=9,  # 7: overlays unpacked inside the image's chroot, modes kept; 8: the image's suite (a fact);
    # 9: only a snapshot.debian.org source skips the Valid-Until check
    build=build,
    tools=(*HOST_TOOLS, "debugfs", "dpkg-query", "mksquashfs", "zstd"),
    # What writes the image's bytes: DIB, the host's mkfs.ext4 it runs, mksquashfs (debugfs only reads the disk).
    versions={"diskimage-builder": dib_version, **versions_of("mkfs.ext4", "mksquashfs")},
    inputs=inputs,
    init=lambda image: "systemd",
    preflight=preflight,
    root_only=ROOT_ONLY,
    keys=("suite", "packages", "elements"),
    from_archive=True,
)
