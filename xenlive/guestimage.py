"""Guest image recipes (guest-images/NAME.yaml): how one guest's disk, kernel and xl config are made.

Errors point into the guest image file itself, as `guest-images/NAME.yaml:line:column: key: message`.
A `builder:` key picks how the disk is made; each builder has its own section of keys (`netbsd:`,
`freebsd:`, `url:`) and every file it downloads is pinned there by URL and sha256 or sha512.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xenlive.errors import Problem, RecipeError
from xenlive.pins import Pinned
from xenlive.yamlpos import KeyPath, Located, Model, load_located, validate_located

Builder = Literal["mmdebstrap", "diskimage-builder", "netbsd", "freebsd", "url"]

HEX64: dict[str, Any] = {"form": "64 hex digits (the sha256 of the file)"}
HEX128: dict[str, Any] = {"form": "128 hex digits (the sha512 of the file)"}


class PinnedFile(Model):
    """One downloaded file: where it comes from and the digest it must have. Give `sha256` or `sha512`."""

    url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")] = Field(
        description="Where to download it. With `build --artifacts DIR_OR_URL` the same file name is looked "
        "up there first.",
        json_schema_extra={"form": "an http://, https:// or file:// URL without spaces"},
    )
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = Field(
        None, description="SHA-256 of the file, as published beside it.", json_schema_extra=HEX64
    )
    sha512: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{128}$")] | None = Field(
        None, description="SHA-512 of the file, as in the release's SHA512 file.", json_schema_extra=HEX128
    )

    def pinned(self) -> Pinned:
        digest = f"sha256:{self.sha256}" if self.sha256 else f"sha512:{self.sha512}"
        return Pinned(url=self.url, digest=digest)


class NetBSDSource(Model):
    """Official NetBSD release files (amd64): the Xen PV guest kernel and the sets unpacked into the root."""

    release: str = Field(description='NetBSD release these files belong to, e.g. "10.1" (shown in the manifest).')
    kernel: PinnedFile = Field(
        description="The PV guest kernel, `amd64/binary/kernel/netbsd-XEN3_DOMU.gz`. It is stored uncompressed: "
        "xl would otherwise decompress it in dom0 userspace at every guest start."
    )
    sets: Annotated[list[PinnedFile], Field(min_length=1)] = Field(
        description="Sets (`amd64/binary/sets/NAME.tar.xz`) unpacked in order into the root file system; "
        "at least `base` and `etc`."
    )


class FreeBSDSource(Model):
    """Official FreeBSD release files (amd64). FreeBSD runs as PVH (kernel loaded by xl) or HVM, never PV."""

    release: str = Field(description='FreeBSD release, e.g. "14.2-RELEASE" (shown in the manifest).')
    sets: list[PinnedFile] | None = Field(
        None,
        description="Distribution sets (`releases/amd64/VERSION/NAME.txz`), unpacked in order and written as a "
        "UFS image with makefs; `base.txz` and `kernel.txz` at least. The kernel is taken from "
        "`boot/kernel/kernel`. Give `sets` or `vm_image`.",
        json_schema_extra={"default_text": "none"},
    )
    vm_image: PinnedFile | None = Field(
        None,
        description="The official VM image instead of sets (`releases/VM-IMAGES/VERSION/amd64/Latest/"
        "FreeBSD-VERSION-amd64-ufs.raw.xz`, decompressed at build time). PVH boots need `kernel` as well.",
        json_schema_extra={"default_text": "none"},
    )
    kernel: PinnedFile | None = Field(
        None,
        description="`kernel.txz`, whose `boot/kernel/kernel` xl loads for a PVH boot of `vm_image`.",
        json_schema_extra={"default_text": "none"},
    )
    root: str = Field(
        "ufs:/dev/xbd0",
        description="Root file system, as FreeBSD's `vfs.root.mountfrom`. Xen's blkfront names the disk "
        "`xvda` `xbd0`; the sets image has no partition table, so its root is the whole disk. The VM image "
        "is partitioned: use `ufs:/dev/gpt/rootfs`.",
    )


class UrlSource(Model):
    """A prebuilt guest, passed through: a raw disk image plus the kernel (and ramdisk) xl boots."""

    disk: PinnedFile = Field(description="Raw disk image; `.xz` and `.gz` files are decompressed at build time.")
    kernel: PinnedFile | None = Field(
        None,
        description="Kernel xl loads directly (PV, PVH). Leave it out for an HVM guest that boots from the disk.",
        json_schema_extra={"default_text": "none"},
    )
    ramdisk: PinnedFile | None = Field(
        None, description="Initial ramdisk for that kernel.", json_schema_extra={"default_text": "none"}
    )


class GuestImage(Model):
    """A guest image recipe: one YAML file under `guest-images/`, named by a guest's `image`. Paths in it are
    relative to the file's own directory."""

    builder: Builder = Field(
        "mmdebstrap",
        description="How the root filesystem is made: `mmdebstrap` installs Debian of dom0's suite; "
        "`diskimage-builder` makes the same from diskimage-builder `elements` (`pip install xenlive[dib]`; "
        "partition-less images only); `netbsd` and "
        "`freebsd` assemble it from official release files (section `netbsd:` / `freebsd:`); `url` takes a "
        "prebuilt image (section `url:`).",
    )
    description: str = Field("", description="One line shown by `show` and written to the manifest.")
    packages: list[str] = Field(
        [],
        description="Debian packages installed besides the base system and kernel (`mmdebstrap`, `diskimage-builder`).",
    )
    elements: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]], Field(min_length=1)] = (
        Field(
            ["debian-minimal"],
            description="diskimage-builder elements (`diskimage-builder` only). xenlive adds its own `xenlive-guest` "
            "element, which pulls in `baremetal` (kernel and initramfs beside a partition-less image). Elements "
            "that make a partitioned image (`vm`, `block-device-*`) are refused: the build host has no "
            "device-mapper.",
        )
    )
    types: Annotated[list[Literal["pv", "pvh", "hvm"]], Field(min_length=1)] = Field(
        ["pv"], description="Guest types (xl.cfg `type`) this image can boot as; a guest's `type` must be one."
    )
    config: str = Field(
        description="xl config template (jinja2), relative to this file. It is rendered once per guest."
    )
    overlay: str | None = Field(
        None,
        description="Directory tree copied into the guest's root filesystem, relative to this file "
        "(`mmdebstrap`, `netbsd`, `freebsd`).",
        json_schema_extra={"default_text": "none"},
    )
    disk_free: Annotated[int, Field(ge=0)] = Field(
        256, description="Free space left in the guest's root filesystem.", json_schema_extra={"unit": "MiB"}
    )
    netbsd: NetBSDSource | None = Field(
        None, description="Release files of a `netbsd` image.", json_schema_extra={"default_text": "none"}
    )
    freebsd: FreeBSDSource | None = Field(
        None, description="Release files of a `freebsd` image.", json_schema_extra={"default_text": "none"}
    )
    url: UrlSource | None = Field(
        None, description="Files of a `url` image.", json_schema_extra={"default_text": "none"}
    )

    def pinned_files(self) -> dict[str, Pinned]:
        """Every file this image downloads, by the role it plays ("kernel", "set base.tar.xz", "disk"...)."""
        files: dict[str, PinnedFile | None] = {}
        if self.builder == "netbsd" and self.netbsd is not None:
            files["kernel"] = self.netbsd.kernel
            files.update({f"set {f.pinned().name}": f for f in self.netbsd.sets})
        elif self.builder == "freebsd" and self.freebsd is not None:
            files.update({f"set {f.pinned().name}": f for f in self.freebsd.sets or []})
            files["vm image"] = self.freebsd.vm_image
            files["kernel"] = self.freebsd.kernel
        elif self.builder == "url" and self.url is not None:
            files.update({"disk": self.url.disk, "kernel": self.url.kernel, "ramdisk": self.url.ramdisk})
        return {role: f.pinned() for role, f in files.items() if f is not None}


# Keys that only one builder uses, and the section each builder needs.
BUILDER_KEYS: dict[str, tuple[Builder, ...]] = {
    "packages": ("mmdebstrap", "diskimage-builder"),
    "elements": ("diskimage-builder",),
    "netbsd": ("netbsd",),
    "freebsd": ("freebsd",),
    "url": ("url",),
}
SECTIONS: dict[Builder, str] = {"netbsd": "netbsd", "freebsd": "freebsd", "url": "url"}
# Guest types each builder's systems can boot as (FreeBSD/amd64 has no PV support; NetBSD is booted PV here).
BUILDER_TYPES: dict[Builder, tuple[str, ...]] = {"netbsd": ("pv",), "freebsd": ("pvh", "hvm")}


class LoadedGuestImage(BaseModel):
    """A valid guest image recipe and the files it names (absolute paths)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    image: GuestImage
    config_template: Path
    overlay_dir: Path | None


def load_guest_image(path: Path) -> LoadedGuestImage:
    """Read and check one guest image recipe. Raises RecipeError with every problem in it."""
    image, problems = read_guest_image(Path(path))
    if image is None:
        raise RecipeError(problems)
    return image


def read_guest_image(path: Path) -> tuple[LoadedGuestImage | None, list[Problem]]:
    """Like load_guest_image, but returns the problems (for a recipe that collects them from many files)."""
    try:
        located = load_located(path)
    except RecipeError as exc:
        return None, exc.problems
    image, problems = validate_located(GuestImage, located)
    problems = located.problems + problems + _builder_checks(located)
    # The files are checked from the raw keys, so that they are reported along with any other error.
    config, overlay = located.data.get("config"), located.data.get("overlay")
    template = path.parent / config if isinstance(config, str) else None
    if template is not None and not template.is_file():
        problems.append(
            located.problem(("config",), f"template {template} not found", "the path is relative to this file")
        )
    overlay_dir = path.parent / overlay if isinstance(overlay, str) else None
    if overlay_dir is not None and not overlay_dir.is_dir():
        problems.append(
            located.problem(("overlay",), f"directory {overlay_dir} not found", "the path is relative to this file")
        )
    if image is None or template is None or problems:
        return None, problems
    return LoadedGuestImage(
        path=path.resolve(),
        name=path.stem,
        image=image,
        config_template=template.resolve(),
        overlay_dir=overlay_dir.resolve() if overlay_dir is not None else None,
    ), []


def _builder_checks(located: Located) -> list[Problem]:
    """Checks across keys, read from the raw data so that they run whatever else is wrong."""
    data = located.data
    builder = data.get("builder", "mmdebstrap")
    if builder not in ("mmdebstrap", "diskimage-builder", *SECTIONS):
        return _pin_checks(located)  # the validation reports the unknown builder
    problems = _pin_checks(located)
    for key, owners in BUILDER_KEYS.items():
        if key in data and builder not in owners:
            problems.append(
                located.problem(
                    (key,),
                    f"belongs to builder {' or '.join(owners)}, but this image uses builder {builder}",
                    f"remove `{key}:` or set `builder: {owners[0]}`",
                    at_key=True,
                )
            )
    section = SECTIONS.get(builder)
    if section is not None and section not in data:
        problems.append(
            located.problem(
                ("builder",),
                f"builder {builder} needs a `{section}:` section",
                f"add `{section}:` with the files to download (see recipes/REFERENCE.md)",
            )
        )
    allowed = BUILDER_TYPES.get(builder)
    types = data.get("types", ["pv"])
    if allowed is not None and isinstance(types, list):
        for i, kind in enumerate(types):
            if isinstance(kind, str) and kind in ("pv", "pvh", "hvm") and kind not in allowed:
                problems.append(
                    located.problem(
                        ("types", i) if "types" in data else ("builder",),
                        f"a {builder} guest cannot boot as {kind}",
                        f"it supports: {', '.join(allowed)}; set `types: [{', '.join(allowed)}]`",
                    )
                )
    freebsd = data.get("freebsd")
    if builder == "freebsd" and isinstance(freebsd, dict):
        problems += _freebsd_checks(located, freebsd, types if isinstance(types, list) else [])
    return problems


def _freebsd_checks(located: Located, section: dict[str, Any], types: list[Any]) -> list[Problem]:
    problems = []
    has_sets, has_image = "sets" in section, "vm_image" in section
    if has_sets == has_image:
        problems.append(
            located.problem(
                ("freebsd",),
                "give either `sets` or `vm_image`" + (", not both" if has_sets else ""),
                "`sets: [base.txz, kernel.txz]` builds a UFS image with makefs; `vm_image` takes the official one",
            )
        )
    if has_sets and "kernel" in section:
        problems.append(
            located.problem(
                ("freebsd", "kernel"),
                "is only used with `vm_image`",
                "with `sets`, list kernel.txz among the sets",
                at_key=True,
            )
        )
    if has_image and "pvh" in types and "kernel" not in section:
        problems.append(
            located.problem(
                ("freebsd", "vm_image"),
                "a PVH boot of the VM image needs `kernel:` (kernel.txz): xl loads the kernel itself",
                "add `kernel:` with the release's kernel.txz, or set `types: [hvm]`",
            )
        )
    if has_sets and "hvm" in types:
        problems.append(
            located.problem(
                ("freebsd", "sets"),
                "an image built from sets has no boot loader, so it cannot boot as hvm",
                "use `vm_image` for HVM guests, or set `types: [pvh]`",
                at_key=True,
            )
        )
    return problems


def _pin_checks(located: Located) -> list[Problem]:
    """Every pinned file (a mapping with `url:`) needs exactly one of sha256 and sha512."""
    problems: list[Problem] = []

    def visit(value: Any, at: KeyPath) -> None:
        if isinstance(value, dict):
            if "url" in value and isinstance(value.get("url"), str):
                digests = [d for d in ("sha256", "sha512") if d in value]
                if not digests:
                    problems.append(
                        located.problem(
                            at,
                            f"{value['url']} is not pinned: give `sha256:` or `sha512:`",
                            "copy the digest from the release's SHA512 / CHECKSUM.SHA256 file; never download "
                            "a file to compute it",
                        )
                    )
                elif len(digests) == 2:
                    problems.append(located.problem((*at, "sha512"), "give sha256 or sha512, not both", at_key=True))
            for key, item in value.items():
                visit(item, (*at, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, (*at, i))

    for section in SECTIONS.values():
        if section in located.data:
            visit(located.data[section], (section,))
    return problems
