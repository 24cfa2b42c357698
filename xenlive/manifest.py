"""The build manifest, OUTDIR/NAME.manifest.json beside NAME.iso: what was built, from what; and the build
record, OUTDIR/NAME.build.json: how that build ran.

The manifest holds only what the inputs decide, so the same inputs give the same bytes, whoever builds (root,
or a user in a user namespace) and whatever the cache held; what differs from one run to the next (each stage's
time, whether it came from the cache and why it was rebuilt, what apt downloaded) is the build record's. Each is
one typed, frozen model (BuildManifest, BuildRecord). The build writes them (xenlive.publish); `boot` and `smoke`
(the machine size, the guests to expect and whether they have a network), `diff` and bench/bench.py read them
back, through read_manifest() and read_build_record() only. Reading is lenient about what is absent (a manifest
written by an older xenlive, or a stand-in in a test, may lack sections: each has a default, and `guests`,
`network` and `stages` are None when absent, so a reader can say it needs them) and strict about what is there:
a value of the wrong type is an error naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from xenlive.errors import XenliveError

DEFAULT_MEMORY = 1024  # MiB, when a manifest names no machine
DEFAULT_VCPUS = 2


class ManifestError(XenliveError):
    """A manifest that cannot be read, or holds a value of the wrong type."""


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


R = TypeVar("R", bound=Record)


class RecipeRecord(Record):
    # Paths as given to `build`; a file of an installed xenlive's data as xenlive:TREE/FILE (paths.recorded()).
    path: str = ""
    files: list[str] = []  # the recipe and every file it extends, child first
    sha256: str = ""  # of the resolved recipe, as canonical JSON


class IsoRecord(Record):
    file: str = ""
    sha256: str = ""
    size: int | None = None  # bytes
    volume_label: str = ""


class MachineRecord(Record):
    memory: int = DEFAULT_MEMORY  # MiB
    vcpus: int = DEFAULT_VCPUS


class MirrorRecord(Record):
    url: str
    suites: list[str] = []
    components: list[str] = []


class VersionsRecord(Record):
    xen: str | None = None  # of the xen-hypervisor package
    kernel: str | None = None  # dom0's kernel release, e.g. 6.1.0-28-amd64
    linux_image: str | None = None  # of that kernel's package


class GuestRecord(Record):
    """A guest of the recipe, as the recipe gives it, with the image file it names and that image's builder."""

    name: str
    image: str = ""
    type: str = "pv"
    memory: int | None = None
    vcpus: int | None = None
    autostart: bool = True
    cmdline: str = ""
    image_file: str = ""
    builder: str = ""

    @property
    def image_name(self) -> str:
        """The name of its image (its file's stem), which names the image's stage and its squashfs on the ISO."""
        return Path(self.image_file).stem if self.image_file else self.image


class NetworkRecord(Record):
    """The guests' network as the recipe asks for it."""

    enabled: bool = True  # every guest has a vif on dom0's bridge


class LeftOutRecord(Record):
    guest: str
    image: str
    reason: str


class ArtifactRecord(Record):
    """A downloaded file that went into the ISO."""

    name: str
    url: str
    digest: str  # ALGO:HEX


class ImageRecord(Record):
    """A guest image that was built, and what its builder recorded of it (kernel, release, sets...)."""

    model_config = ConfigDict(extra="allow")

    disk_mib: int | None = None
    suite: str | None = None  # the Debian suite it was installed from (Debian images)
    squashfs_mib: float | None = None  # what the image weighs on the ISO
    packages: dict[str, str] = {}  # name -> version (Debian packages, or the files of a downloaded image)


class StageRecord(Record):
    """A stage of the build: its cache key, and what it dated its files by."""

    name: str
    key: str
    epoch: int | None = None


class StageRun(Record):
    """How a stage went in one build (the build record's)."""

    name: str
    cached: bool = False
    seconds: float = 0.0
    reason: str = ""
    # Debian archive files apt got when the stage was built: from the package cache, and downloaded (bytes).
    apt_from_cache_bytes: int | None = None
    apt_downloaded_bytes: int | None = None


class BuildRecord(Record):
    """OUTDIR/NAME.build.json: how the build of NAME.iso ran."""

    stages: list[StageRun] = []  # in the order they ran
    build_seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


class BuildManifest(Record):
    xenlive: str = ""  # the version that built it
    recipe: RecipeRecord = RecipeRecord()
    iso: IsoRecord = IsoRecord()
    machine: MachineRecord = MachineRecord()
    source_date_epoch: int = 0  # what the ISO and its config layer are dated by
    archive: list[MirrorRecord] = []
    versions: VersionsRecord = VersionsRecord()
    guests: list[GuestRecord] | None = None
    network: NetworkRecord | None = None  # None: written before xenlive recorded it
    left_out: list[LeftOutRecord] = []
    artifacts: list[ArtifactRecord] = []
    dom0_packages: dict[str, str] = {}
    guest_images: dict[str, ImageRecord] = {}
    stages: list[StageRecord] | None = None

    def autostart_guests(self) -> tuple[str, ...] | None:
        """Names of the guests dom0 starts at boot; None when the manifest has no guest list."""
        if self.guests is None:
            return None
        return tuple(guest.name for guest in self.guests if guest.autostart)

    def stage_keys(self) -> dict[str, str]:
        return {stage.name: stage.key for stage in self.stages or []}

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def manifest_path(iso: Path) -> Path:
    """NAME.manifest.json beside NAME.iso."""
    return iso.with_name(iso.name.removesuffix(".iso") + ".manifest.json")


def build_record_path(iso: Path) -> Path:
    """NAME.build.json beside NAME.iso."""
    return iso.with_name(iso.name.removesuffix(".iso") + ".build.json")


def parse_manifest(data: object, where: str = "the manifest") -> BuildManifest:
    """A manifest from its JSON data; ManifestError names `where` and the first key of the wrong type."""
    return _validated(BuildManifest, data, where, "the manifest")


def _validated(model: type[R], data: object, where: str, what: str) -> R:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: {what} is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ManifestError(f"{where}: {key}: {first['msg'].lower()}, got {first['input']!r}") from None


def read_manifest(path: Path) -> BuildManifest:
    """The manifest in `path`. Raises FileNotFoundError when there is none, ManifestError when it is not one."""
    return parse_manifest(_read_json(path, "the manifest"), str(path))


def read_build_record(path: Path) -> BuildRecord:
    """The build record in `path`. Raises FileNotFoundError when there is none, ManifestError when it is not one."""
    return _validated(BuildRecord, _read_json(path, "the build record"), str(path), "the build record")


def _read_json(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read {what}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path}: cannot read {what}: {exc}") from exc


def find_manifest(iso: Path) -> BuildManifest | None:
    """The manifest beside `iso`, or None when there is none."""
    try:
        return read_manifest(manifest_path(iso))
    except FileNotFoundError:
        return None
