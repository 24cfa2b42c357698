"""The guest image stage: one guest image from its guest image recipe (guest-images/NAME.yaml).

Output: image.squashfs holding disk.img and the kernel (and initrd) the image's xl config template
boots; dom0 mounts it read-only from the medium and gives each guest a copy-on-write snapshot of
disk.img, so the image is never copied into RAM. Also packages.tsv.
`mmdebstrap` (here): an ext4 Debian root, vmlinux (uncompressed, boots fastest) and initrd.img.
`netbsd`, `freebsd`, `url` (xenlive.builders): from pinned downloads, fetched by fetch_image_files()
before the stage runs; the digest of each file is part of the stage's cache key.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.builders import dib, freebsd, netbsd, url
from xenlive.cache import StageInputs
from xenlive.download import DownloadCache, fetch
from xenlive.fsutil import digest_tree, sha256_file, tree_size_mib
from xenlive.guestimage import LoadedGuestImage
from xenlive.kernel import write_vmlinux
from xenlive.packages import write_packages
from xenlive.recipe import Recipe
from xenlive.rootfs import find_kernel, forget_build_state, list_packages, make_rootfs, prune_modules
from xenlive.run import run
from xenlive.stages import BuildContext, StageResult
from xenlive.tools.dpkg import list_installed
from xenlive.tools.squashfs import make_squashfs

STAGE_VERSION = 4
DOWNLOADED_STAGE_VERSION = 3  # 2: a VM image is listed in packages.tsv by its file name; 3: FreeBSD disks are UFS1

DOWNLOAD_BUILDERS = {"netbsd": netbsd.build, "freebsd": freebsd.build, "url": url.build}

BASE_PACKAGES = ("systemd-sysv", "udev", "linux-image-amd64", "initramfs-tools", "lz4", "kmod")

# A PV/PVH guest sees only Xen's virtual devices: drop every hardware driver but the Xen frontends.
PRUNED_MODULES = ("sound", "drivers", "net/wireless", "net/mac80211", "net/bluetooth")
KEPT_MODULES = (
    "drivers/block/xen-blkfront.ko",
    "drivers/net/xen-netfront.ko",
    "drivers/xen/xen-evtchn.ko",
    "drivers/xen/xenfs/xenfs.ko",
    "drivers/char/hw_random/virtio-rng.ko",
)


def guest_inputs(image: LoadedGuestImage, recipe: Recipe, mmdebstrap_version: str) -> StageInputs:
    files = {"image recipe": {image.path.name: sha256_file(image.path)}}
    if image.overlay_dir is not None:
        files["image overlay"] = digest_tree(image.overlay_dir)
    return StageInputs(
        stage=f"guest-{image.name}",
        version=STAGE_VERSION,
        settings={
            "image": image.image.model_dump(mode="json"),
            "suite": recipe.dom0.suite,
            "mirrors": [m.model_dump(mode="json") for m in recipe.dom0.resolved_mirrors()],
            "mmdebstrap": mmdebstrap_version,
        },
        files=files,
        upstream={},
    )


def build_guest_image(
    ctx: BuildContext, image: LoadedGuestImage, recipe: Recipe, mmdebstrap_version: str
) -> StageResult:
    inputs = guest_inputs(image, recipe, mmdebstrap_version)

    def build(work: Path) -> dict[str, Any]:
        tree = work / "tree"
        make_rootfs(
            tree,
            suite=recipe.dom0.suite,
            sources=recipe.dom0.apt_sources(),
            packages=[*BASE_PACKAGES, *image.image.packages],
            overlay=image.overlay_dir,
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
        packages = list_packages(tree)
        write_packages(packages, work / "packages.tsv")
        size_mib = make_ext4(tree, staging / "disk.img", image.image.disk_free)
        shutil.rmtree(tree)
        make_squashfs(staging, work / "image.squashfs", all_root=True)
        shutil.rmtree(staging)
        return {"kernel": kernel.version, "disk_mib": size_mib, "packages": len(packages)}

    return ctx.run_stage(inputs, f"guest image {image.name} (mmdebstrap)", build)


def build_dib_guest_image(ctx: BuildContext, image: LoadedGuestImage, recipe: Recipe) -> StageResult:
    """The same artifact as build_guest_image, made by diskimage-builder from the image's `elements`."""
    inputs = guest_inputs(image, recipe, dib.dib_version())
    inputs = dataclasses.replace(inputs, files={**inputs.files, "xenlive dib elements": digest_tree(dib.element_dir())})

    def build(work: Path) -> dict[str, Any]:
        staging = work / "staging"
        out = dib.make_dib_image(
            staging,
            elements=image.image.elements,
            suite=recipe.dom0.suite,
            sources=recipe.dom0.apt_sources(),
            packages=[*BASE_PACKAGES, *image.image.packages],
            overlay=image.overlay_dir,
            free_mib=image.image.disk_free,
        )
        # The package list, read from the image's dpkg status without mounting it.
        admin = work / "dpkg"
        admin.mkdir()
        run(["debugfs", "-R", f"dump /var/lib/dpkg/status {admin / 'status'}", str(out.disk)], capture=True)
        packages = list_installed(admin)
        write_packages(packages, work / "packages.tsv")
        disk_mib = out.disk.stat().st_size >> 20
        make_squashfs(staging, work / "image.squashfs", all_root=True)
        shutil.rmtree(staging)
        return {"disk_mib": disk_mib, "packages": len(packages)}

    return ctx.run_stage(inputs, f"guest image {image.name} (diskimage-builder)", build)


def make_ext4(tree: Path, out: Path, free_mib: int) -> int:
    """Write tree into a new ext4 image without mounting anything (mkfs.ext4 -d)."""
    used = tree_size_mib(tree)
    size = int(used * 1.15) + free_mib + 16  # ext4 metadata and journal
    # Reproducible: a UUID and directory hash seed derived from the image, times from SOURCE_DATE_EPOCH.
    uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"xenlive:{out.name}:{size}"))
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    options = f"root_owner=0:0,hash_seed={uuid}"
    argv = ["mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-d", str(tree), "-E", options, str(out), f"{size}M"]
    if not epoch:
        run(argv)
        return size
    paths = date_tree(tree, int(epoch))
    run(argv, env={"E2FSPROGS_FAKE_TIME": epoch})
    # mkfs.ext4 -d (e2fsprogs 1.47.0) copies each file's ctime, which no one can set on the host, and the
    # access times of directories, which reading them to copy them changed: set both in the image, in one
    # debugfs session for the whole tree.
    script = out.with_name(out.name + ".debugfs")
    script.write_text("".join(f'sif "/{path}" ctime @{epoch}\nsif "/{path}" atime @{epoch}\n' for path in paths))
    run(["debugfs", "-w", "-f", str(script), str(out)], env={"E2FSPROGS_FAKE_TIME": epoch}, capture=True)
    script.unlink()
    return size


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


def fetch_image_files(
    image: LoadedGuestImage, downloads: DownloadCache, *, offline: bool, artifacts: str | None
) -> dict[str, Path]:
    """Every pinned file of the image, from the download cache or fetched into it (role -> path).

    Raises DownloadError (DigestMismatch when a file is not what its pin says).
    """
    return {
        role: fetch(pinned, downloads, offline=offline, artifacts=artifacts)
        for role, pinned in image.image.pinned_files().items()
    }


def downloaded_inputs(image: LoadedGuestImage, tool_versions: Mapping[str, str]) -> StageInputs:
    files = {"image recipe": {image.path.name: sha256_file(image.path)}}
    if image.overlay_dir is not None:
        files["image overlay"] = digest_tree(image.overlay_dir)
    files["downloads"] = {role: pinned.digest for role, pinned in image.image.pinned_files().items()}
    return StageInputs(
        stage=f"guest-{image.name}",
        version=DOWNLOADED_STAGE_VERSION,
        settings={"image": image.image.model_dump(mode="json"), "tools": dict(tool_versions)},
        files=files,
        upstream={},
    )


def build_downloaded_image(
    ctx: BuildContext, image: LoadedGuestImage, files: Mapping[str, Path], tool_versions: Mapping[str, str]
) -> StageResult:
    """A netbsd, freebsd or url guest image from its fetched files."""
    builder = DOWNLOAD_BUILDERS[image.image.builder]
    inputs = downloaded_inputs(image, tool_versions)
    return ctx.run_stage(
        inputs, f"guest image {image.name} ({image.image.builder})", lambda work: builder(work, image, files)
    )
