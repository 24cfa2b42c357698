"""build_iso(): recipe in, ISO and manifest out. Reads like a table of contents: one call per stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive import __version__
from xenlive.builders.base import Archive
from xenlive.cache import Cache, canonical_json, full_disk_reported
from xenlive.context import BuildContext, resolve_context, source_date_epoch
from xenlive.download import DigestMismatch, DownloadCache, DownloadError
from xenlive.errors import BuildError, ToolError
from xenlive.fsutil import atomic_path
from xenlive.guestimage import LoadedGuestImage
from xenlive.packages import parse_packages, read_packages, versions
from xenlive.paths import default_cache_dir
from xenlive.progress import note, step
from xenlive.recipe import LoadedRecipe
from xenlive.run import require_file, require_tools, terminate_as_interrupt
from xenlive.sbom import Artifact, make_sbom
from xenlive.stages import StageResult, StageRunner, config, dom0, iso
from xenlive.stages.config import build_dom0_config
from xenlive.stages.dom0 import build_dom0_rootfs
from xenlive.stages.guest import build_guest_image, fetch_image_files
from xenlive.stages.iso import build_iso_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """How this run was invoked."""

    outdir: Path
    cache_dir: Path
    offline: bool = False  # downloads from the cache (and a local --artifacts directory) only
    artifacts: str | None = None  # a directory or URL holding the pinned files by name, tried first
    strict: bool = False  # a guest whose files cannot be fetched fails the build instead of being left out
    source_date_epoch: int | None = None  # the SOURCE_DATE_EPOCH the build was started with, if any

    @classmethod
    def make(
        cls,
        *,
        outdir: Path,
        cache_dir: Path | None,
        offline: bool = False,
        artifacts: str | None = None,
        strict: bool = False,
        source_date_epoch: int | None = None,
    ) -> BuildOptions:
        return cls(outdir, cache_dir or default_cache_dir(), offline, artifacts, strict, source_date_epoch)


@dataclass(frozen=True)
class LeftOut:
    """A guest the ISO does without, because its image's files could not be fetched."""

    guest: str
    image: str
    reason: str  # one line


@dataclass(frozen=True)
class BuildResult:
    iso: Path
    manifest: Path
    stages: list[StageResult]
    left_out: list[LeftOut]


def check_build_host(loaded: LoadedRecipe) -> None:
    """Every tool and file the build needs, and root, before the first stage: a missing one is one line."""
    images = _unique_images(loaded)
    builder_tools = [tool for image in images for tool in image.builder.tools]
    require_tools(sorted({*dom0.TOOLS, *config.TOOLS, *iso.TOOLS, *builder_tools}))
    for path, package in iso.FILES.items():
        require_file(path, package)
    for image in images:
        if image.builder.preflight is not None:
            image.builder.preflight(image.image)
    if os.geteuid() != 0:
        raise ToolError("building needs root (mmdebstrap installs packages into a chroot); run it with sudo")


def build_context(loaded: LoadedRecipe, options: BuildOptions) -> BuildContext:
    """The build's epoch, and the version of every tool that keys a stage, each asked once."""
    iso_settings = loaded.recipe.iso
    epoch = source_date_epoch(iso_settings.source_date_epoch, options.source_date_epoch, loaded.files)
    probes = [dom0.VERSIONS, iso.VERSIONS, *(image.builder.versions for image in _unique_images(loaded))]
    return resolve_context(epoch, probes)


def build_iso(loaded: LoadedRecipe, options: BuildOptions) -> BuildResult:
    check_build_host(loaded)
    recipe = loaded.recipe
    recipe_json = recipe.model_dump(mode="json")
    runner = StageRunner(Cache(options.cache_dir), build_context(loaded, options))
    archive = Archive(recipe.dom0.suite, tuple(recipe.dom0.apt_sources()))
    started = time.monotonic()
    with (
        terminate_as_interrupt(),
        contextlib.closing(runner.cache),
        step(f"build {recipe.iso.name} from {loaded.path}"),
    ):
        runner.cache.sweep()
        fetched, left_out = fetch_guest_files(loaded, DownloadCache(runner.cache.downloads), options)
        dom0_rootfs = build_dom0_rootfs(runner, recipe)
        images = {}
        for image in _unique_images(loaded):
            if not image.pinned_files() or image.name in fetched:
                images[image.name] = build_guest_image(runner, image, archive, fetched.get(image.name, {}))
        skipped = {entry.guest: entry.reason for entry in left_out}
        dom0_config = build_dom0_config(runner, loaded, recipe_json, skipped)
        iso_image = build_iso_image(runner, loaded, dom0_rootfs, dom0_config, images)
        result = publish(loaded, iso_image, runner, options.outdir, time.monotonic() - started, left_out)
    for stage in runner.results:
        note(f"{stage.name:<24} {'cached' if stage.cached else 'built':<7} {stage.seconds:6.1f}s")
    return result


def fetch_guest_files(
    loaded: LoadedRecipe, downloads: DownloadCache, options: BuildOptions
) -> tuple[dict[str, dict[str, Path]], list[LeftOut]]:
    """Fetch the pinned files of every guest image that downloads some, before any long stage runs.

    An image whose files cannot be fetched is left out with its guests (each named, with the reason);
    with --strict that fails the build. A file whose digest does not match its pin always fails it.
    """
    fetched: dict[str, dict[str, Path]] = {}
    failed: dict[str, str] = {}
    for image in _unique_images(loaded):
        if not image.pinned_files():
            continue
        try:
            fetched[image.name] = fetch_image_files(
                image, downloads, offline=options.offline, artifacts=options.artifacts
            )
        except DigestMismatch:
            raise
        except DownloadError as exc:
            failed[image.name] = " ".join(f"image {image.name} not built: {exc}".split())
    left_out = [
        LeftOut(guest.name, loaded.guest_images[guest.name].name, failed[loaded.guest_images[guest.name].name])
        for guest in loaded.recipe.guests
        if loaded.guest_images[guest.name].name in failed
    ]
    if left_out and options.strict:
        raise BuildError(
            "--strict: cannot build every guest:\n" + "\n".join(f"  guest {e.guest}: {e.reason}" for e in left_out)
        )
    for entry in left_out:
        log.warning("leaving out guest %s: %s", entry.guest, entry.reason)
    return fetched, left_out


def _unique_images(loaded: LoadedRecipe) -> list[LoadedGuestImage]:
    seen: dict[str, LoadedGuestImage] = {}
    for guest in loaded.recipe.guests:
        image = loaded.guest_images[guest.name]
        seen.setdefault(image.name, image)
    return list(seen.values())


def publish(
    loaded: LoadedRecipe,
    iso: StageResult,
    runner: StageRunner,
    outdir: Path,
    seconds: float,
    left_out: list[LeftOut],
) -> BuildResult:
    """Copy the ISO to OUTDIR/NAME.iso and write NAME.manifest.json and NAME.spdx.json, each renamed into
    place whole: a full OUTDIR leaves no partial file there, and fails with one line."""
    name = loaded.recipe.iso.name
    outdir.mkdir(parents=True, exist_ok=True)
    final_iso = outdir / f"{name}.iso"
    final_manifest = outdir / f"{name}.manifest.json"
    source = iso.path / f"{name}.iso"
    with full_disk_reported(f"publishing {final_iso.name}", outdir, lambda: source.stat().st_size):
        with atomic_path(final_iso) as tmp:
            shutil.copyfile(source, tmp)
        manifest = make_manifest(loaded, iso, runner.results, seconds, left_out, runner.context.epoch)
        with atomic_path(final_manifest) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        with atomic_path(outdir / f"{name}.spdx.json") as tmp:
            tmp.write_text(json.dumps(make_build_sbom(manifest, runner.results), indent=2) + "\n")
    return BuildResult(final_iso, final_manifest, runner.results, left_out)


def make_build_sbom(manifest: dict[str, Any], stages: list[StageResult]) -> dict[str, Any]:
    """The SBOM of a build, from its manifest and the packages.tsv of its stages.

    Downloaded artifacts come from the manifest's "artifacts" list ({"name", "url", "digest"} each),
    when the build recorded any. The creation time is SOURCE_DATE_EPOCH, or the epoch when unset."""
    components = {
        "dom0" if s.name == "dom0-rootfs" else s.name: parse_packages((s.path / "packages.tsv").read_text())
        for s in stages
        if s.name == "dom0-rootfs" or s.name.startswith("guest-")
    }
    return make_sbom(
        iso_name=manifest["iso"]["file"].removesuffix(".iso"),
        iso_sha256=manifest["iso"]["sha256"],
        recipe_sha256=manifest["recipe"]["sha256"],
        xenlive_version=manifest["xenlive"],
        components=components,
        artifacts=[Artifact(a["name"], a["url"], a["digest"]) for a in manifest.get("artifacts", [])],
        created_epoch=int(manifest.get("source_date_epoch") or 0),
    )


def make_manifest(
    loaded: LoadedRecipe,
    iso: StageResult,
    stages: list[StageResult],
    seconds: float,
    left_out: list[LeftOut],
    epoch: int = 0,
) -> dict[str, Any]:
    recipe = loaded.recipe
    dom0 = next(s for s in stages if s.name == "dom0-rootfs")
    dom0_packages = versions(read_packages(dom0.path / "packages.tsv"))
    guests = []
    for guest in recipe.guests:
        image = loaded.guest_images[guest.name]
        guests.append({**guest.model_dump(mode="json"), "image_file": str(image.path), "builder": image.image.builder})
    images = {}
    for stage in stages:
        if stage.name.startswith("guest-"):
            # The stage's info counts the packages; the manifest lists them. squashfs_mib: what the image
            # weighs on the ISO, read from the file itself (a cache entry made before it was recorded has it too).
            images[stage.name.removeprefix("guest-")] = {
                **stage.info,
                "squashfs_mib": round((stage.path / "image.squashfs").stat().st_size / 2**20, 1),
                "packages": versions(read_packages(stage.path / "packages.tsv")),
            }
    return {
        "xenlive": __version__,
        "recipe": {
            "path": str(loaded.path),
            "files": [str(f) for f in loaded.files],
            "sha256": hashlib.sha256(canonical_json(recipe.model_dump(mode="json")).encode()).hexdigest(),
        },
        "iso": {
            "file": f"{recipe.iso.name}.iso",
            "sha256": iso.info["sha256"],
            "size": iso.info["size"],
            "volume_label": recipe.iso.volume_label,
        },
        "machine": recipe.machine.model_dump(mode="json"),
        "source_date_epoch": epoch,
        "archive": [m.model_dump(mode="json") for m in recipe.dom0.resolved_mirrors()],
        "versions": {
            "xen": dom0.info.get("xen"),
            "kernel": dom0.info.get("kernel"),
            "linux_image": dom0.info.get("linux_image"),
        },
        "guests": guests,
        "left_out": [{"guest": e.guest, "image": e.image, "reason": e.reason} for e in left_out],
        "artifacts": [
            {"name": pinned.name, "url": pinned.url, "digest": pinned.digest}
            for image in _unique_images(loaded)
            if image.name not in {e.image for e in left_out}
            for pinned in image.pinned_files().values()
        ],
        "dom0_packages": dom0_packages,
        "guest_images": images,
        "stages": [
            {"name": s.name, "key": s.key, "cached": s.cached, "seconds": round(s.seconds, 1), "reason": s.reason}
            for s in stages
        ],
        "build_seconds": round(seconds, 1),
    }
