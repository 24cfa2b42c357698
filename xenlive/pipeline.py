"""build_iso(): recipe in, ISO and manifest out. Reads like a table of contents: one call per stage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive import __version__
from xenlive.cache import Cache, atomic_path, canonical_json
from xenlive.progress import note, step
from xenlive.recipe import LoadedRecipe
from xenlive.rootfs import read_packages
from xenlive.run import require_file, require_tools, terminate_as_interrupt, tool_version
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
    with terminate_as_interrupt(), step(f"build {recipe.iso.name} from {loaded.path}"):
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
    """Copy the ISO to OUTDIR/NAME.iso and write NAME.manifest.json, each renamed into place whole."""
    name = loaded.recipe.iso.name
    outdir.mkdir(parents=True, exist_ok=True)
    final_iso = outdir / f"{name}.iso"
    final_manifest = outdir / f"{name}.manifest.json"
    with atomic_path(final_iso) as tmp:
        shutil.copyfile(iso.path / f"{name}.iso", tmp)
    manifest = make_manifest(loaded, iso, stages, seconds)
    with atomic_path(final_manifest) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return BuildResult(final_iso, final_manifest, stages)


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
