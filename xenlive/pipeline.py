"""build_iso(): recipe in, ISO and manifest out. Reads like a table of contents: one call per stage.

Before the first stage: every tool the build needs is checked (check_build_host), the build context is
resolved once (where each stage's dates come from, the tool versions that key stages), and the files guest
images download are fetched. Then dom0's root filesystem, each guest image and GRUB's boot piece, at the
same time; dom0's config layer; the ISO, written into OUTDIR; then publishing.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from xenlive.cache import Cache
from xenlive.context import BuildContext, Dates, resolve_context
from xenlive.debcache import DebCache
from xenlive.download import DownloadCache
from xenlive.errors import ToolError
from xenlive.parallel import Together
from xenlive.paths import default_cache_dir
from xenlive.progress import note, step
from xenlive.publish import BuildOutputs, BuildResult, publish
from xenlive.recipe import LoadedRecipe
from xenlive.run import require_file, require_tools, terminate_as_interrupt
from xenlive.stages import StageResult, StageRunner, config, dom0, grub, iso
from xenlive.stages.config import build_dom0_config
from xenlive.stages.dom0 import build_dom0_rootfs
from xenlive.stages.grub import build_grub_boot
from xenlive.stages.guest import archive_of, build_guest_image, fetch_guest_files, images_to_build, unique_images
from xenlive.stages.iso import make_iso


@dataclass(frozen=True)
class BuildOptions:
    """How this run was invoked."""

    outdir: Path
    cache_dir: Path
    offline: bool = False  # downloads from the cache (and a local --artifacts directory) only
    artifacts: str | None = None  # a directory or URL holding the pinned files by name, tried first
    strict: bool = False  # a guest whose files cannot be fetched fails the build instead of being left out
    source_date_epoch: int | None = None  # the SOURCE_DATE_EPOCH the build was started with, if any
    jobs: int | None = None  # how many independent stages run at once (None: all of them; 1: one after another)

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
        jobs: int | None = None,
    ) -> BuildOptions:
        return cls(outdir, cache_dir or default_cache_dir(), offline, artifacts, strict, source_date_epoch, jobs)


def build_iso(loaded: LoadedRecipe, options: BuildOptions) -> BuildResult:
    check_build_host(loaded)
    cache = Cache(options.cache_dir)
    runner = StageRunner(cache, build_context(loaded, options), debs=DebCache(cache.debs, offline=options.offline))
    started = time.monotonic()
    with (
        terminate_as_interrupt(),
        contextlib.closing(runner.cache),
        step(f"build {loaded.recipe.iso.name} from {loaded.path}"),
    ):
        runner.cache.sweep()
        downloads = DownloadCache(runner.cache.downloads)
        fetched, left_out = fetch_guest_files(
            loaded, downloads, offline=options.offline, artifacts=options.artifacts, strict=options.strict
        )
        # dom0's root, the guest images and GRUB's boot piece read nothing of each other: at the same time.
        with Together(options.jobs) as jobs:
            dom0_job = jobs.start("dom0-rootfs", build_dom0_rootfs, runner, loaded.recipe)
            image_jobs = {
                image.name: jobs.start(
                    f"guest-{image.name}", build_guest_image, runner, image, archive_of(loaded, image), files
                )
                for image, files in images_to_build(loaded, fetched)
            }
            grub_job = jobs.start("grub-boot", build_grub_boot, runner)
        dom0_rootfs, grub_boot = dom0_job.result(), grub_job.result()
        images = {name: job.result() for name, job in image_jobs.items()}
        dom0_config = build_dom0_config(
            runner, loaded, {entry.guest: entry.reason for entry in left_out}, xen_lib=dom0_rootfs.xen_lib
        )
        iso_image = make_iso(runner, loaded, dom0_rootfs, dom0_config, images, grub_boot, options.outdir)
        outputs = BuildOutputs(
            dom0=dom0_rootfs,
            images=images,
            config=dom0_config,
            iso=iso_image,
            left_out=left_out,
            stages=list(runner.results),
            epoch=runner.context.dates.of_recipe(),
            seconds=time.monotonic() - started,
        )
        result = publish(loaded, outputs, options.outdir)
    report_stages(runner.results)
    return result


def check_build_host(loaded: LoadedRecipe) -> None:
    """Every tool and file the build needs, and root, before the first stage: a missing one is one line."""
    images = unique_images(loaded)
    builder_tools = [tool for image in images for tool in image.builder.tools]
    require_tools(sorted({*dom0.TOOLS, *config.TOOLS, *grub.TOOLS, *iso.TOOLS, *builder_tools}))
    for path, package in grub.FILES.items():
        require_file(path, package)
    for image in images:
        if image.builder.preflight is not None:
            image.builder.preflight(image.image)
    if os.geteuid() != 0:
        raise ToolError("building needs root (mmdebstrap installs packages into a chroot); run it with sudo")


def build_dates(loaded: LoadedRecipe, options: BuildOptions) -> Dates:
    """Where each stage's dates come from: the recipe's iso.source_date_epoch and the SOURCE_DATE_EPOCH the
    build was started with, if any (never the recipe's commit time: README.md, "Reproducible builds")."""
    return Dates(environment=options.source_date_epoch, recipe=loaded.recipe.iso.source_date_epoch)


def build_context(loaded: LoadedRecipe, options: BuildOptions) -> BuildContext:
    """The build's dates, and the version of every tool that keys a stage, each asked once."""
    probes = [dom0.VERSIONS, grub.VERSIONS, iso.VERSIONS, *(image.builder.versions for image in unique_images(loaded))]
    return resolve_context(build_dates(loaded, options), probes)


def report_stages(results: list[StageResult]) -> None:
    for stage in results:
        note(f"{stage.name:<24} {'cached' if stage.cached else 'built':<7} {stage.seconds:6.1f}s")
