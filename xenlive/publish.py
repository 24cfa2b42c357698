"""Publishing a build: NAME.manifest.json, NAME.spdx.json and NAME.build.json beside OUTDIR/NAME.iso, from the
typed results of its stages. The manifest and the SBOM are made from the same results (the packages.tsv of each stage is
read once, when its result is made), never from each other."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive import __version__
from xenlive.cache import canonical_json, full_disk_reported
from xenlive.fsutil import atomic_path
from xenlive.manifest import (
    ArtifactRecord,
    BuildManifest,
    BuildRecord,
    GuestRecord,
    ImageRecord,
    IsoRecord,
    LeftOutRecord,
    MachineRecord,
    MirrorRecord,
    NetworkRecord,
    RecipeRecord,
    StageRecord,
    StageRun,
    VersionsRecord,
    build_record_path,
    manifest_path,
)
from xenlive.packages import versions
from xenlive.paths import recorded
from xenlive.recipe import LoadedRecipe
from xenlive.sbom import Artifact, make_sbom
from xenlive.stages import StageResult
from xenlive.stages.dom0 import Dom0Rootfs
from xenlive.stages.guest import GuestImageArtifact, LeftOut, unique_images
from xenlive.stages.iso import IsoImage


@dataclass(frozen=True)
class BuildOutputs:
    """What the stages of one build made, typed, and how the build went."""

    dom0: Dom0Rootfs
    images: dict[str, GuestImageArtifact]  # by image name; those left out are absent
    config: StageResult
    iso: IsoImage
    left_out: list[LeftOut]
    stages: list[StageResult]  # every stage, in the order they ran (cached or built)
    epoch: int  # what the ISO is dated by (each stage's own date is in its StageResult)
    seconds: float  # the build's time, without publishing


@dataclass(frozen=True)
class BuildResult:
    iso: Path
    manifest: Path
    stages: list[StageResult]
    left_out: list[LeftOut]


def publish(loaded: LoadedRecipe, outputs: BuildOutputs, outdir: Path) -> BuildResult:
    """Write NAME.manifest.json, NAME.spdx.json and NAME.build.json beside the ISO, which the ISO stage wrote into
    OUTDIR; each is renamed into place whole: a full OUTDIR leaves no partial file there, and fails with one line."""
    name = loaded.recipe.iso.name
    outdir.mkdir(parents=True, exist_ok=True)
    final_manifest = manifest_path(outdir / f"{name}.iso")
    with full_disk_reported(f"publishing {final_manifest.name}", outdir, lambda: 2**20):
        with atomic_path(final_manifest) as tmp:
            tmp.write_text(make_manifest(loaded, outputs).to_json())
        with atomic_path(outdir / f"{name}.spdx.json") as tmp:
            tmp.write_text(json.dumps(make_build_sbom(loaded, outputs), indent=2) + "\n")
        with atomic_path(build_record_path(outdir / f"{name}.iso")) as tmp:
            tmp.write_text(make_build_record(outputs).to_json())
    return BuildResult(outputs.iso.file, final_manifest, outputs.stages, outputs.left_out)


def recipe_sha256(loaded: LoadedRecipe) -> str:
    """The hash of the resolved recipe (after `extends`, defaults filled in), as canonical JSON."""
    return hashlib.sha256(canonical_json(loaded.recipe.model_dump(mode="json")).encode()).hexdigest()


def downloaded_artifacts(loaded: LoadedRecipe, left_out: list[LeftOut]) -> list[ArtifactRecord]:
    """The pinned files that went into the ISO: those of every image not left out."""
    skipped = {entry.image for entry in left_out}
    return [
        ArtifactRecord(name=pinned.name, url=pinned.url, digest=pinned.digest)
        for image in unique_images(loaded)
        if image.name not in skipped
        for pinned in image.pinned_files().values()
    ]


def make_manifest(loaded: LoadedRecipe, outputs: BuildOutputs) -> BuildManifest:
    recipe = loaded.recipe
    return BuildManifest(
        xenlive=__version__,
        recipe=RecipeRecord(
            path=recorded(loaded.path), files=[recorded(f) for f in loaded.files], sha256=recipe_sha256(loaded)
        ),
        iso=IsoRecord(
            file=f"{recipe.iso.name}.iso",
            sha256=outputs.iso.sha256,
            size=outputs.iso.size,
            volume_label=recipe.iso.volume_label,
        ),
        machine=MachineRecord(memory=recipe.machine.memory, vcpus=recipe.machine.vcpus),
        source_date_epoch=outputs.epoch,
        archive=[MirrorRecord.model_validate(m.model_dump(mode="json")) for m in recipe.dom0.resolved_mirrors()],
        versions=VersionsRecord(xen=outputs.dom0.xen, kernel=outputs.dom0.kernel, linux_image=outputs.dom0.linux_image),
        guests=[
            GuestRecord.model_validate(
                {
                    **guest.model_dump(mode="json"),
                    "image_file": recorded(loaded.guest_images[guest.name].path),
                    "builder": loaded.guest_images[guest.name].image.builder,
                }
            )
            for guest in recipe.guests
        ],
        network=NetworkRecord(enabled=recipe.network.enabled),
        left_out=[LeftOutRecord(guest=e.guest, image=e.image, reason=e.reason) for e in outputs.left_out],
        artifacts=downloaded_artifacts(loaded, outputs.left_out),
        dom0_packages=versions(outputs.dom0.packages),
        guest_images={name: image_record(image) for name, image in outputs.images.items()},
        stages=[StageRecord(name=s.name, key=s.key, epoch=s.epoch) for s in sorted(outputs.stages, key=_stage_order)],
    )


def _stage_order(stage: StageResult) -> tuple[int, str]:
    """The manifest lists the stages as the build's table of contents does, not in the order they finished
    (dom0, the guest images and GRUB's boot images are built at the same time): dom0, the guest images by name,
    GRUB's, the config layer, the ISO. The build record keeps the order they ran in."""
    rank = {"dom0-rootfs": 0, "grub-boot": 2, "dom0-config": 3, "iso": 4}
    return rank.get(stage.name, 1), stage.name


def make_build_record(outputs: BuildOutputs) -> BuildRecord:
    """How the build ran: what differs from one run of the same inputs to the next, kept out of the manifest."""
    return BuildRecord(
        stages=[
            StageRun(
                name=s.name,
                cached=s.cached,
                seconds=round(s.seconds, 1),
                reason=s.reason,
                apt_from_cache_bytes=None if s.cached else s.info.get("apt_from_cache_bytes"),
                apt_downloaded_bytes=None if s.cached else s.info.get("apt_downloaded_bytes"),
            )
            for s in outputs.stages
        ],
        build_seconds=round(outputs.seconds, 1),
    )


def image_record(image: GuestImageArtifact) -> ImageRecord:
    """What the builder recorded of the image (its count of packages gives way to the list of them; what apt
    downloaded or took from the package cache is the build record's)."""
    facts = {key: value for key, value in image.facts.items() if key != "packages" and not key.startswith("apt_")}
    return ImageRecord.model_validate(
        {**facts, "squashfs_mib": image.squashfs_mib, "packages": versions(image.packages)}
    )


def make_build_sbom(loaded: LoadedRecipe, outputs: BuildOutputs) -> dict[str, Any]:
    """The SBOM of a build: every package of dom0 and of each guest image, and every downloaded file."""
    components = {"dom0": outputs.dom0.packages}
    components.update({image.stage.name: image.packages for image in outputs.images.values()})
    suites = {"dom0": loaded.recipe.dom0.suite}
    suites.update({image.stage.name: image.suite for image in outputs.images.values() if image.suite})
    return make_sbom(
        iso_name=loaded.recipe.iso.name,
        iso_sha256=outputs.iso.sha256,
        recipe_sha256=recipe_sha256(loaded),
        xenlive_version=__version__,
        components=components,
        suites=suites,
        artifacts=[Artifact(a.name, a.url, a.digest) for a in downloaded_artifacts(loaded, outputs.left_out)],
        created_epoch=outputs.epoch,
    )
