"""The guest image stage: one guest image (guest-images/NAME.yaml), made by its builder (xenlive.builders).

Output: image.squashfs holding disk.img and the kernel (and initrd) the image's xl config template boots;
dom0 mounts it read-only from the medium and gives each guest a copy-on-write snapshot of disk.img, so the
image is never copied into RAM. Also packages.tsv. The stage's key covers the image recipe and its overlay,
the versions of the builder's tools, what the builder declares it reads, and the digest of every file
the image downloads (fetched by fetch_image_files() before any stage runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xenlive.builders.base import Archive, ImageJob
from xenlive.cache import StageInputs
from xenlive.download import DownloadCache, fetch
from xenlive.fsutil import digest_tree, sha256_file
from xenlive.guestimage import LoadedGuestImage
from xenlive.stages import StageResult, StageRunner


def image_job(runner: StageRunner, image: LoadedGuestImage, archive: Archive, files: Mapping[str, Path]) -> ImageJob:
    return ImageJob(
        name=image.name,
        recipe_file=image.path,
        image=image.image,
        overlay=image.overlay_dir,
        archive=archive,
        context=runner.context,
        files=files,
        pinned=image.pinned_files(),
    )


def guest_inputs(image: LoadedGuestImage, job: ImageJob) -> StageInputs:
    builder = image.builder
    declared = builder.inputs(job)
    files = {"image recipe": {image.path.name: sha256_file(image.path)}}
    if image.overlay_dir is not None:
        files["image overlay"] = digest_tree(image.overlay_dir)
    if job.pinned:
        files["downloads"] = {role: pinned.digest for role, pinned in job.pinned.items()}
    return StageInputs(
        stage=f"guest-{image.name}",
        version=builder.stage_version,
        settings={
            "image": image.image.model_dump(mode="json"),
            "tools": {tool: job.context.version(tool) for tool in builder.versions},
            **declared.settings,
        },
        files={**files, **declared.files},
        upstream={},
    )


def build_guest_image(
    runner: StageRunner, image: LoadedGuestImage, archive: Archive, files: Mapping[str, Path]
) -> StageResult:
    """The image's artifact, from the cache or built by its builder from `files` (its fetched pinned files)."""
    job = image_job(runner, image, archive, files)
    builder = image.builder
    return runner.run(
        guest_inputs(image, job), f"guest image {image.name} ({builder.name})", lambda work: builder.build(work, job)
    )


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
