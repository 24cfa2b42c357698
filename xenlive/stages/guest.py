"""The guest image stage: one guest image (guest-images/NAME.yaml), made by its builder (xenlive.builders).

Output: image.squashfs holding disk.img and the kernel (and initrd) the image's xl config template boots;
dom0 mounts it read-only from the medium and gives each guest a copy-on-write snapshot of disk.img, so the
image is never copied into RAM. Also packages.tsv. The stage's key covers the image recipe and its overlay,
the versions of the builder's tools, what the builder declares it reads, and the digest of every file the
image downloads. Those files are fetched by fetch_guest_files() before any stage runs: an image whose
files cannot be fetched is left out, with its guests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.builders.base import Archive, ImageJob
from xenlive.cache import StageInputs
from xenlive.context import BuildContext
from xenlive.debcache import DebCache
from xenlive.download import DigestMismatch, DownloadCache, DownloadError, fetch
from xenlive.errors import BuildError
from xenlive.fsutil import digest_tree, not_world_readable
from xenlive.guestimage import LoadedGuestImage
from xenlive.packages import DebPackage
from xenlive.recipe import LoadedRecipe
from xenlive.stages import StageResult, StageRunner

log = logging.getLogger(__name__)

MIB = 2**20


@dataclass(frozen=True)
class GuestImageArtifact:
    """The stage's artifact: its cache entry, what its builder recorded, the packages (or files) in it."""

    name: str  # the image's name
    stage: StageResult
    packages: dict[str, DebPackage]
    squashfs_mib: float  # what the image weighs on the ISO

    @property
    def facts(self) -> dict[str, Any]:
        """What the builder recorded (disk_mib, kernel, release...), as the manifest lists it."""
        return self.stage.info

    @property
    def suite(self) -> str | None:
        """The Debian suite the image was installed from (Debian builders record it); None for the others."""
        suite = self.stage.info.get("suite")
        return str(suite) if suite else None

    @classmethod
    def of(cls, name: str, stage: StageResult) -> GuestImageArtifact:
        # Read from the file itself: a cache entry made before the size was recorded has it too.
        squashfs_mib = round((stage.path / "image.squashfs").stat().st_size / MIB, 1)
        return cls(name, stage, stage.packages(), squashfs_mib)


@dataclass(frozen=True)
class LeftOut:
    """A guest the ISO does without, because its image's files could not be fetched."""

    guest: str
    image: str
    reason: str  # one line


def unique_images(loaded: LoadedRecipe) -> list[LoadedGuestImage]:
    """The guest images of the recipe, each once, in the order the guests first name them."""
    seen: dict[str, LoadedGuestImage] = {}
    for guest in loaded.recipe.guests:
        image = loaded.guest_images[guest.name]
        seen.setdefault(image.name, image)
    return list(seen.values())


def fetch_guest_files(
    loaded: LoadedRecipe, downloads: DownloadCache, *, offline: bool, artifacts: str | None, strict: bool
) -> tuple[dict[str, dict[str, Path]], list[LeftOut]]:
    """Fetch the pinned files of every guest image that downloads some (image name -> role -> file).

    An image whose files cannot be fetched is left out with its guests (each named, with the reason);
    with `strict` that fails the build. A file whose digest does not match its pin always fails it.
    """
    fetched: dict[str, dict[str, Path]] = {}
    failed: dict[str, str] = {}
    for image in unique_images(loaded):
        if not image.pinned_files():
            continue
        try:
            fetched[image.name] = fetch_image_files(image, downloads, offline=offline, artifacts=artifacts)
        except DigestMismatch:
            raise
        except DownloadError as exc:
            failed[image.name] = " ".join(f"image {image.name} not built: {exc}".split())
    left_out = [
        LeftOut(guest.name, loaded.guest_images[guest.name].name, failed[loaded.guest_images[guest.name].name])
        for guest in loaded.recipe.guests
        if loaded.guest_images[guest.name].name in failed
    ]
    if left_out and strict:
        raise BuildError(
            "--strict: cannot build every guest:", details=[f"guest {e.guest}: {e.reason}" for e in left_out]
        )
    for entry in left_out:
        log.warning("leaving out guest %s: %s", entry.guest, entry.reason)
    return fetched, left_out


def fetch_image_files(
    image: LoadedGuestImage, downloads: DownloadCache, *, offline: bool, artifacts: str | None
) -> dict[str, Path]:
    """Every pinned file of the image, from the download cache or fetched into it (role -> path).

    Raises DownloadError (DigestMismatch when a file is not what its pin says).
    """
    return {
        role: fetch(pinned, downloads, offline=offline, artifacts=artifacts)
        for role, pinned in image.pinned_files().items()
    }


def image_job(
    context: BuildContext,
    image: LoadedGuestImage,
    archive: Archive,
    files: Mapping[str, Path],
    debs: DebCache | None = None,
) -> ImageJob:
    # Dated by what the image reads: the archive for a Debian image (its snapshot time, if it is one), else the
    # fixed date (its downloads are pinned by digest, and name no date we could trust).
    dates = context.dates
    return ImageJob(
        name=image.name,
        recipe_file=image.path,
        image=image.image,
        overlay=image.overlay_dir,
        archive=archive,
        context=context,
        epoch=dates.of_archive(archive.sources) if image.builder.from_archive else dates.fixed(),
        debs=debs,
        files=files,
        pinned=image.pinned_files(),
    )


def guest_inputs(image: LoadedGuestImage, job: ImageJob) -> StageInputs:
    """What the image's stage reads: the image recipe as loaded (not its text: a comment changes nothing),
    its overlay, its downloads, the builder's tool versions and what the builder declares. Never the recipe
    that names the image, so that every recipe using the image shares it."""
    builder = image.builder
    declared = builder.inputs(job)
    files: dict[str, dict[str, str]] = {}
    if image.overlay_dir is not None:
        files["image overlay"] = digest_tree(image.overlay_dir, overlay=True)  # as render_tree() lays it
    if job.pinned:
        files["downloads"] = {role: pinned.digest for role, pinned in job.pinned.items()}
    return StageInputs(
        stage=f"guest-{image.name}",
        version=builder.stage_version,
        settings={
            # min_memory only checks the recipe's guests: it changes nothing in the image.
            "image": image.image.model_dump(mode="json", exclude={"min_memory"}),
            "tools": {tool: job.context.version(tool) for tool in builder.versions},
            **declared.settings,
        },
        files={**files, **declared.files},
        upstream={},
        epoch=job.epoch,
    )


def build_guest_image(
    runner: StageRunner, image: LoadedGuestImage, archive: Archive, files: Mapping[str, Path]
) -> GuestImageArtifact:
    """The image's artifact, from the cache or built by its builder from `files` (its fetched pinned files)."""
    job = image_job(runner.context, image, archive, files, runner.debs)
    builder = image.builder
    title = f"guest image {image.name} ({builder.name})"

    def build(work: Path) -> dict[str, Any]:
        facts = builder.build(work, job)
        if job.overlay is not None:
            # The overlay's files keep their modes in the image; the entry says which ones others cannot read.
            facts["not_world_readable"] = not_world_readable(job.overlay)
        return facts

    return GuestImageArtifact.of(image.name, runner.run(guest_inputs(image, job), title, build))


def images_to_build(
    loaded: LoadedRecipe, fetched: Mapping[str, Mapping[str, Path]]
) -> list[tuple[LoadedGuestImage, Mapping[str, Path]]]:
    """Every guest image of the recipe, with its fetched files, but those left out (their files could not be
    fetched)."""
    return [
        (image, fetched.get(image.name, {}))
        for image in unique_images(loaded)
        if not image.pinned_files() or image.name in fetched
    ]


def archive_of(loaded: LoadedRecipe, image: LoadedGuestImage) -> Archive:
    """The Debian archive a guest image installs from: dom0's mirrors with the image's suite (dom0's, unless the
    image names its own). The recipe's checks refuse mirrors that cannot take the image's suite."""
    dom0 = loaded.recipe.dom0
    suite = image_suite(loaded, image)
    return Archive(suite, tuple(dom0.apt_sources(suite)))


def image_suite(loaded: LoadedRecipe, image: LoadedGuestImage) -> str:
    """The Debian suite of a guest image: its own, else dom0's."""
    return image.image.suite or loaded.recipe.dom0.suite
