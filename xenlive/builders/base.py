"""The builder contract: what a guest image builder (the `builder:` key of a guest image recipe) declares.

In the spirit of diskimage-builder's elements, a builder is one module under xenlive/builders/ that says
everything about itself, and xenlive/builders/__init__.py lists it on one line:

- its recipe side: the keys of a guest image recipe it uses (`keys`), its own section (`section`, under
  its name: `netbsd:` for the netbsd builder), the guest types its systems can boot as (`types`), the
  files that section pins (`pinned`), and checks across those keys (`checks`);
- its host side: the tools its build step runs (`tools`, checked before the first stage of any build that
  uses it, with `preflight` for what a tool list cannot say) and the tools whose versions go into its
  cache key (`versions`);
- its stage: the cache inputs it reads besides the image recipe and overlay (`inputs`) and its build
  step (`build`), which writes into an empty work directory what dom0 uses of every guest image:
  image.squashfs (disk.img and the kernel, and initrd, under the names the image's xl config template
  boots) and packages.tsv (what went into the image, for the manifest and the SBOM).

The guest image recipe model (xenlive.guestimage.GuestImage) is assembled from ImageRecipe below and the
registered builders' sections, so adding a builder changes no other module of xenlive (unless it runs a
new tool: xenlive.run.TOOL_PACKAGES). It still adds more than its module: its line in builders/__init__.py,
its guest image recipe, xl template and overlay under guest-images/, its module's layer in
tests/unit/test_layers.py, its section in a regenerated recipes/REFERENCE.md, and its tests
(ARCHITECTURE.md, "Where each kind of change goes").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field

from xenlive.context import BuildContext, VersionProbes
from xenlive.debcache import DebCache
from xenlive.errors import BuildError, Problem
from xenlive.formats import LINE_FORM, MAX_MEMORY_MIB, PACKAGE_FORM, PATH_FORM, Line, Package, PathText, form
from xenlive.pins import Pinned, PinnedFile
from xenlive.suites import SUITES, supported_suite
from xenlive.yamlpos import Located, Model

GuestType = Literal["pv", "pvh", "hvm"]
S = TypeVar("S", bound=Model)


class ImageRecipe(Model):
    """A guest image recipe: one YAML file under `guest-images/`, named by a guest's `image`. Paths in it are
    relative to the file's own directory."""

    builder: str = Field("mmdebstrap", description="How the root filesystem is made.")
    description: Line = Field(
        "", description="One line shown by `show` and written to the manifest.", json_schema_extra=form(LINE_FORM)
    )
    init: Literal["runit", "systemd"] = Field(
        "runit",
        description="The guest's init (`mmdebstrap`). `runit`: Debian's runit brings the guest up (DHCP with "
        "busybox's udhcpc, the network check, a root login on hvc0, the ready marker) with no unit graph to "
        "load and no udev; `systemd`: Debian's systemd with udev, systemd-networkd and systemd-resolved, "
        "about 2x slower to boot under QEMU TCG (see BENCHMARKS.md). `diskimage-builder` images keep the "
        "init of their elements (systemd for `debian-minimal`).",
    )
    suite: Annotated[str, AfterValidator(supported_suite)] | None = Field(
        None,
        description="Debian suite of the image (`mmdebstrap`, `diskimage-builder`). It installs from dom0's "
        "mirrors with this suite in place of dom0's (SUITE, SUITE-updates, SUITE-security); a recipe whose "
        "`dom0.mirrors` name no suite of dom0's to put it in place of is refused. A guest may run another "
        "suite than dom0's, either way. Supported: " + ", ".join(SUITES) + ".",
        json_schema_extra=form("a Debian suite name such as bookworm", default_text="dom0.suite"),
    )
    packages: list[Package] = Field(
        [],
        description="Debian packages installed besides the base system and kernel (`mmdebstrap`, `diskimage-builder`).",
        json_schema_extra=form(PACKAGE_FORM),
    )
    elements: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]], Field(min_length=1)
    ] = Field(
        ["debian-minimal"],
        description="diskimage-builder elements (`diskimage-builder` only). xenlive adds its own `xenlive-guest` "
        "element, which pulls in `baremetal` (kernel and initramfs beside a partition-less image). Elements "
        "that make a partitioned image (`vm`, `block-device-*`) are refused: the build host has no "
        "device-mapper.",
    )
    types: Annotated[list[GuestType], Field(min_length=1)] = Field(
        ["pv"], description="Guest types (xl.cfg `type`) this image can boot as; a guest's `type` must be one."
    )
    config: PathText = Field(
        description="xl config template (jinja2), relative to this file. It is rendered once per guest.",
        json_schema_extra=form(PATH_FORM),
    )
    overlay: PathText | None = Field(
        None,
        description="Directory tree copied into the guest's root filesystem, relative to this file "
        "(`mmdebstrap`, `netbsd`, `freebsd`).",
        json_schema_extra=form(PATH_FORM, default_text="none"),
    )
    min_memory: Annotated[int, Field(ge=32, le=MAX_MEMORY_MIB)] = Field(
        128,
        description="The least memory a guest of this image boots with: `validate` refuses a guest given less. "
        "Below it, a guest's kernel runs out of memory early (unpacking its initramfs) and panics. State what "
        "you measured; unset, an image is taken to need what a guest gets by default.",
        json_schema_extra={"unit": "MiB"},
    )
    disk_free: Annotated[int, Field(ge=0, le=65536)] = Field(
        256, description="Free space left in the guest's root filesystem.", json_schema_extra={"unit": "MiB"}
    )

    def section(self, model: type[S]) -> S:
        """This image's own section (`netbsd:` for builder netbsd), as its builder's model."""
        value = getattr(self, self.builder, None)
        if not isinstance(value, model):
            raise BuildError(f"builder {self.builder}: the image has no `{self.builder}:` section")
        return value


@dataclass(frozen=True)
class Archive:
    """The Debian archive an image installs from: dom0's mirrors, with the image's suite (ImageRecipe.suite)."""

    suite: str
    sources: tuple[str, ...]  # one-line apt sources ("deb URL SUITE COMPONENTS..."); the first bootstraps


@dataclass(frozen=True)
class ImageJob:
    """One guest image to build: everything its builder's build step reads."""

    name: str  # the image's name (its recipe file's stem): it names the stage and the file on the ISO
    recipe_file: Path
    image: ImageRecipe  # the recipe, with the builder's section
    overlay: Path | None  # the image's overlay directory, resolved
    archive: Archive
    context: BuildContext
    epoch: int  # what every file of the image is dated by (the stage's date, from xenlive.context.Dates)
    files: Mapping[str, Path] = field(default_factory=dict)  # its pinned files, fetched and verified, by role
    pinned: Mapping[str, Pinned] = field(default_factory=dict)  # what those files are (URL, name), by role
    debs: DebCache | None = None  # where apt gets Debian packages (builders that install from the archive)


@dataclass(frozen=True)
class CacheInputs:
    """What a builder's stage reads besides the image recipe, its overlay and the builder's tool versions."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # label -> {relative path: digest}


def no_inputs(job: ImageJob) -> CacheInputs:
    return CacheInputs()


def no_init(image: ImageRecipe) -> str | None:
    return None


@dataclass(frozen=True)
class Builder:
    name: str  # the value of `builder:`, and the key of its section
    summary: str  # what it makes from what, a clause of the reference ("installs Debian of the image's suite")
    stage_version: int  # raise it when the build step makes something else from the same inputs
    build: Callable[[Path, ImageJob], dict[str, Any]]  # the build step: writes the artifact, returns its facts
    tools: tuple[str, ...] = ()  # host tools the build step runs
    # It installs Debian packages from dom0's mirrors (with the image's suite): its images are dated by the
    # archive (Dates.of_archive).
    from_archive: bool = False
    versions: VersionProbes = field(default_factory=dict)  # tools whose versions go into the cache key
    inputs: Callable[[ImageJob], CacheInputs] = no_inputs
    init: Callable[[ImageRecipe], str | None] = no_init  # the init its guests boot (xl templates read it)
    preflight: Callable[[ImageRecipe], None] | None = None  # more host checks, before the first stage
    # Why it needs the host's own root, which a user's build (as root of a user namespace) cannot give it; "": it
    # builds as a user too.
    root_only: str = ""
    keys: tuple[str, ...] = ()  # keys of ImageRecipe that only the builders listing them use
    types: tuple[GuestType, ...] | None = None  # guest types its systems can boot as (None: any)
    section: type[Model] | None = None  # its own section of the recipe, required when set
    section_description: str = ""
    pinned: Callable[[Any], Mapping[str, PinnedFile | None]] | None = None  # section -> its files, by role
    checks: Callable[[Located, Mapping[str, Any], list[Any]], list[Problem]] | None = None  # raw section, types

    def pinned_files(self, image: ImageRecipe) -> dict[str, Pinned]:
        """Every file an image of this builder downloads, by the role it plays ("kernel", "set base.txz")."""
        if self.pinned is None or self.section is None:
            return {}
        section = getattr(image, self.name, None)
        if section is None:
            return {}
        return {role: f.pinned() for role, f in self.pinned(section).items() if f is not None}
