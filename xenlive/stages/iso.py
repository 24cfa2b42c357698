"""The ISO stage: lay the boot files and squashfs layers out as live-boot expects, render the GRUB
menu, and let grub-mkrescue/xorriso write a hybrid BIOS+UEFI image.

Layout: /boot/xen.gz, /boot/grub/grub.cfg, /live/{vmlinuz,initrd.img,filesystem.squashfs,
xenlive.squashfs,filesystem.module}, /xenlive/images/IMAGE.squashfs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs
from xenlive.context import versions_of
from xenlive.fsutil import sha256_file
from xenlive.paths import data_dir
from xenlive.recipe import LoadedRecipe
from xenlive.render import render_template
from xenlive.run import run
from xenlive.stages import StageResult, StageRunner
from xenlive.stages.dom0 import Dom0Rootfs
from xenlive.stages.guest import GuestImageArtifact
from xenlive.tools.grub import GRUB_PLATFORMS, grub_mkrescue_argv, mformat_wrapper

STAGE_VERSION = 2
TOOLS = ("grub-mkrescue", "xorriso", "mformat", "mcopy")
VERSIONS = versions_of("grub-mkrescue")
FILES = GRUB_PLATFORMS  # data files grub-mkrescue needs, and their Debian packages

# What grub/grub.cfg.j2 can use, and nothing else (recipes/REFERENCE.md lists it from here).
GRUB_CONTEXT = {"recipe": "The recipe, as for dom0's overlay files."}

# live-boot stacks the images listed here in order, later ones on top.
LIVE_LAYERS = ("filesystem.squashfs", "xenlive.squashfs")


def iso_inputs(loaded: LoadedRecipe, upstream: dict[str, str], grub_version: str) -> StageInputs:
    template = data_dir("grub") / "grub.cfg.j2"
    return StageInputs(
        stage="iso",
        version=STAGE_VERSION,
        settings={
            "iso": loaded.recipe.iso.model_dump(mode="json"),
            "hypervisor": loaded.recipe.hypervisor.model_dump(mode="json"),
            "dom0_memory": loaded.recipe.dom0.memory,
            "dom0_cmdline": loaded.recipe.dom0.cmdline,
            "grub": grub_version,
        },
        files={"grub": {template.name: sha256_file(template)}},
        upstream=upstream,
    )


@dataclass(frozen=True)
class IsoImage:
    """The stage's artifact: its cache entry and the ISO in it."""

    stage: StageResult
    file: Path
    sha256: str
    size: int  # bytes

    @classmethod
    def of(cls, stage: StageResult) -> IsoImage:
        return cls(stage, stage.path / str(stage.fact("iso")), str(stage.fact("sha256")), int(stage.fact("size")))


def build_iso_image(
    runner: StageRunner,
    loaded: LoadedRecipe,
    dom0_rootfs: Dom0Rootfs,
    config: StageResult,
    images: Mapping[str, GuestImageArtifact],
) -> IsoImage:
    dom0 = dom0_rootfs.stage
    upstream = {dom0.name: dom0.key, config.name: config.key, **{i.stage.name: i.stage.key for i in images.values()}}
    inputs = iso_inputs(loaded, upstream, runner.context.version("grub-mkrescue"))
    epoch = runner.context.epoch
    name = loaded.recipe.iso.name

    def build(work: Path) -> dict[str, Any]:
        staging = work / "staging"
        link = _linker(staging)
        link(dom0.path / "xen.gz", "boot/xen.gz")
        link(dom0.path / "vmlinuz", "live/vmlinuz")
        link(dom0.path / "initrd.img", "live/initrd.img")
        link(dom0.path / "filesystem.squashfs", "live/filesystem.squashfs")
        link(config.path / "xenlive.squashfs", "live/xenlive.squashfs")
        (staging / "live" / "filesystem.module").write_text("\n".join(LIVE_LAYERS) + "\n")
        for image_name, image in images.items():
            link(image.stage.path / "image.squashfs", f"xenlive/images/{image_name}.squashfs")
        grub_cfg = staging / "boot" / "grub" / "grub.cfg"
        grub_cfg.parent.mkdir(parents=True, exist_ok=True)
        grub_cfg.write_text(grub_config(loaded))
        iso = work / f"{name}.iso"
        wrappers = work / "bin"
        wrappers.mkdir()
        (wrappers / "mformat").write_text(mformat_wrapper(epoch))
        (wrappers / "mformat").chmod(0o755)
        # SOURCE_DATE_EPOCH dates what mcopy writes into the EFI image.
        env = {"PATH": f"{wrappers}:{os.environ.get('PATH', '/usr/bin:/bin')}", **runner.context.tool_env()}
        label = loaded.recipe.iso.volume_label
        run(grub_mkrescue_argv(staging, iso, volume_label=label, epoch=epoch), env=env, capture=True)
        return {"iso": iso.name, "sha256": sha256_file(iso), "size": iso.stat().st_size}

    return IsoImage.of(runner.run(inputs, "ISO (grub-mkrescue)", build))


def grub_config(loaded: LoadedRecipe) -> str:
    """The ISO's boot menu, /boot/grub/grub.cfg: grub/grub.cfg.j2 rendered with GRUB_CONTEXT."""
    return render_template(data_dir("grub") / "grub.cfg.j2", {"recipe": loaded.recipe})


def _linker(staging: Path) -> Any:
    """Hard-link cached artifacts into the staging tree (same file system: no copies)."""

    def link(source: Path, rel: str) -> None:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)

    return link
