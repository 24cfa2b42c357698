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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xenlive.cache import Cache
from xenlive.context import BuildContext, Dates, resolve_context
from xenlive.debcache import DebCache
from xenlive.download import DownloadCache
from xenlive.errors import InputFileError, Problem, ToolError, XenliveError
from xenlive.parallel import Together
from xenlive.paths import default_cache_dir
from xenlive.progress import note, step
from xenlive.publish import BuildOutputs, BuildResult, publish
from xenlive.recipe import LoadedRecipe
from xenlive.run import TOOL_PACKAGES, find_missing_tools, missing_tools_message, require_file, terminate_as_interrupt
from xenlive.stages import StageResult, StageRunner, config, dom0, grub, iso
from xenlive.stages.config import build_dom0_config
from xenlive.stages.dom0 import build_dom0_rootfs
from xenlive.stages.grub import build_grub_boot
from xenlive.stages.guest import archive_of, build_guest_image, fetch_guest_files, images_to_build, unique_images
from xenlive.stages.iso import make_iso
from xenlive.yamlpos import load_located


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
    check_outdir(options.outdir)
    cache = Cache(options.cache_dir)
    cache.require_own()
    runner = StageRunner(cache, build_context(loaded, options), debs=DebCache(cache.debs, offline=options.offline))
    started = time.monotonic()
    with (
        terminate_as_interrupt(),
        contextlib.closing(runner),
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


@dataclass(frozen=True)
class BuildHost:
    """What a build of one recipe needs of this host and does not find: every finding, not only the first."""

    tools: tuple[str, ...]  # every tool the build runs
    missing_tools: tuple[str, ...]
    missing_files: tuple[tuple[Path, str], ...]  # data files some tool needs, with their Debian packages
    problems: tuple[XenliveError, ...]  # what the guest images' builders found (their preflight)
    root: bool

    @property
    def ready(self) -> bool:
        return not (self.missing_tools or self.missing_files or self.problems) and self.root


def build_tools(loaded: LoadedRecipe) -> list[str]:
    """Every tool a build of `loaded` runs: the stages' TOOLS and those of its guest images' builders."""
    builder_tools = [tool for image in unique_images(loaded) for tool in image.builder.tools]
    return sorted({*dom0.TOOLS, *config.TOOLS, *grub.TOOLS, *iso.TOOLS, *builder_tools})


def host_packages(loaded: LoadedRecipe) -> set[str]:
    """The Debian packages a build of `loaded` needs on its host: those of its tools and of the files they read
    (what `make deps` and the CI templates must install; tests/unit/test_ci_files.py holds them to it)."""
    return {TOOL_PACKAGES.get(tool, tool) for tool in build_tools(loaded)} | set(grub.FILES.values())


def examine_build_host(loaded: LoadedRecipe, which: Callable[[str], str | None] | None = None) -> BuildHost:
    """Every tool and file a build of `loaded` needs, each builder's own checks, and root (`which`: how to look a
    tool up; shutil.which by default)."""
    tools = build_tools(loaded)
    problems: list[XenliveError] = []
    for image in unique_images(loaded):
        if image.builder.preflight is not None:
            try:
                image.builder.preflight(image.image)
            except XenliveError as exc:
                problems.append(exc)
    return BuildHost(
        tools=tuple(tools),
        missing_tools=tuple(find_missing_tools(tools, which)),
        missing_files=tuple((path, package) for path, package in grub.FILES.items() if not path.exists()),
        problems=tuple(problems),
        root=os.geteuid() == 0,
    )


def check_build_host(loaded: LoadedRecipe) -> None:
    """Every tool and file the build needs, and root, before the first stage: a missing one is one line."""
    host = examine_build_host(loaded)
    if host.missing_tools:
        raise ToolError(missing_tools_message(host.missing_tools))
    for path, package in host.missing_files:
        require_file(path, package)
    if host.problems:
        raise host.problems[0]
    if not host.root:
        raise ToolError(NOT_ROOT)


def check_outdir(outdir: Path) -> None:
    """OUTDIR (or, while it does not exist, the directory it will be made in) writable by whoever builds (root
    of a user namespace has only its user's rights on the host): said before the first stage, not when the ISO
    is written. Nothing is made here: a build that fails leaves no OUTDIR behind."""
    hint = "hint: give -o a directory you may write to"
    existing = outdir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputFileError(f"{outdir}: cannot make the output directory: {existing} is not a directory ({hint})")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the output directory" if existing == outdir.absolute() else f"{existing}, where it would be made"
        raise InputFileError(f"{outdir}: this build may not write to {where} ({hint})")


def find_root_only(loaded: LoadedRecipe) -> list[Problem]:
    """The guest images of `loaded` whose builder needs the host's root (Builder.root_only): a build by an
    ordinary user, as root of a user namespace, cannot make them. Located at each image file's `builder` key."""
    return [
        load_located(image.path).problem(
            ("builder",),
            image.builder.root_only,
            "build this recipe as root (sudo), or give the image a builder that needs no root (mmdebstrap)",
        )
        for image in unique_images(loaded)
        if image.builder.root_only
    ]


NOT_ROOT = (
    "building needs root, of the host or of a user namespace (mmdebstrap installs packages into a chroot): "
    "run it with `xenlive build`, which enters one for an ordinary user, or with sudo"
)


def build_dates(loaded: LoadedRecipe, options: BuildOptions) -> Dates:
    """Where each stage's dates come from: the recipe's iso.source_date_epoch and the SOURCE_DATE_EPOCH the
    build was started with, if any (never the recipe's commit time: README.md, "Reproducible builds")."""
    return Dates(environment=options.source_date_epoch, recipe=loaded.recipe.iso.source_date_epoch)


def build_context(loaded: LoadedRecipe, options: BuildOptions) -> BuildContext:
    """The build's dates, and the version of every tool that keys a stage, each asked once."""
    stages = [dom0.VERSIONS, config.VERSIONS, grub.VERSIONS, iso.VERSIONS]
    probes = [*stages, *(image.builder.versions for image in unique_images(loaded))]
    return resolve_context(build_dates(loaded, options), probes)


def report_stages(results: list[StageResult]) -> None:
    for stage in results:
        note(f"{stage.name:<24} {'cached' if stage.cached else 'built':<7} {stage.seconds:6.1f}s")
