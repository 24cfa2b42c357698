"""build_iso(): recipe in, ISO and manifest out. Reads like a table of contents: one call per stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive import __version__
from xenlive.cache import Cache, atomic_path, canonical_json, full_disk_reported
from xenlive.progress import note, step
from xenlive.recipe import LoadedRecipe
from xenlive.rootfs import parse_packages, read_packages
from xenlive.run import require_file, require_tools, terminate_as_interrupt, tool_version
from xenlive.sbom import Artifact, make_sbom
from xenlive.stages import BuildContext, StageResult
from xenlive.stages.config import build_dom0_config
from xenlive.stages.dom0 import build_dom0_rootfs
from xenlive.stages.guest import build_guest_image
from xenlive.stages.iso import build_iso_image
from xenlive.tools.grub import GRUB_PLATFORMS

BUILD_TOOLS = ("mmdebstrap", "mksquashfs", "grub-mkrescue", "xorriso", "mformat", "mkfs.ext4", "chroot", "dpkg-query")


@dataclass(frozen=True)
class BuildOptions:
    """How this run was invoked."""

    outdir: Path
    cache_dir: Path

    @classmethod
    def make(cls, *, outdir: Path, cache_dir: Path | None) -> BuildOptions:
        return cls(outdir=outdir, cache_dir=cache_dir or default_cache_dir())


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/xenlive, or ~/.cache/xenlive."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenlive"


@dataclass(frozen=True)
class BuildResult:
    iso: Path
    manifest: Path
    stages: list[StageResult]


def check_build_host() -> None:
    require_tools(BUILD_TOOLS)
    for path, package in GRUB_PLATFORMS.items():
        require_file(path, package)
    if os.geteuid() != 0:
        from xenlive.errors import ToolError

        raise ToolError("building needs root (mmdebstrap installs packages into a chroot); run it with sudo")


def build_iso(loaded: LoadedRecipe, options: BuildOptions) -> BuildResult:
    check_build_host()
    recipe = loaded.recipe
    recipe_json = recipe.model_dump(mode="json")
    ctx = BuildContext(Cache(options.cache_dir))
    started = time.monotonic()
    with terminate_as_interrupt(), contextlib.closing(ctx.cache), step(f"build {recipe.iso.name} from {loaded.path}"):
        ctx.cache.sweep()
        mmdebstrap_version = tool_version("mmdebstrap")
        dom0 = build_dom0_rootfs(ctx, recipe)
        images = {
            image.name: build_guest_image(ctx, image, recipe, mmdebstrap_version) for image in _unique_images(loaded)
        }
        config = build_dom0_config(ctx, loaded, recipe_json)
        iso = build_iso_image(ctx, loaded, dom0, config, images, tool_version("grub-mkrescue"))
        result = publish(loaded, iso, ctx.results, options.outdir, time.monotonic() - started)
    for stage in ctx.results:
        note(f"{stage.name:<24} {'cached' if stage.cached else 'built':<7} {stage.seconds:6.1f}s")
    return result


def _unique_images(loaded: LoadedRecipe) -> list[Any]:
    seen: dict[str, Any] = {}
    for guest in loaded.recipe.guests:
        image = loaded.guest_images[guest.name]
        seen.setdefault(image.name, image)
    return list(seen.values())


def publish(
    loaded: LoadedRecipe, iso: StageResult, stages: list[StageResult], outdir: Path, seconds: float
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
        manifest = make_manifest(loaded, iso, stages, seconds)
        with atomic_path(final_manifest) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        with atomic_path(outdir / f"{name}.spdx.json") as tmp:
            tmp.write_text(json.dumps(make_build_sbom(manifest, stages), indent=2) + "\n")
    return BuildResult(final_iso, final_manifest, stages)


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
        created_epoch=int(os.environ.get("SOURCE_DATE_EPOCH") or 0),
    )


def make_manifest(loaded: LoadedRecipe, iso: StageResult, stages: list[StageResult], seconds: float) -> dict[str, Any]:
    recipe = loaded.recipe
    dom0 = next(s for s in stages if s.name == "dom0-rootfs")
    dom0_packages = read_packages(dom0.path / "packages.tsv")
    guests = []
    for guest in recipe.guests:
        image = loaded.guest_images[guest.name]
        guests.append({**guest.model_dump(mode="json"), "image_file": str(image.path), "builder": image.image.builder})
    images = {}
    for stage in stages:
        if stage.name.startswith("guest-"):
            images[stage.name.removeprefix("guest-")] = {
                "packages": read_packages(stage.path / "packages.tsv"),
                **stage.info,
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
        "versions": {
            "xen": dom0.info.get("xen"),
            "kernel": dom0.info.get("kernel"),
            "linux_image": dom0.info.get("linux_image"),
        },
        "guests": guests,
        "dom0_packages": dom0_packages,
        "guest_images": images,
        "stages": [
            {"name": s.name, "key": s.key, "cached": s.cached, "seconds": round(s.seconds, 1), "reason": s.reason}
            for s in stages
        ],
        "build_seconds": round(seconds, 1),
    }
