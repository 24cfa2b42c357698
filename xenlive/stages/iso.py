"""The ISO: the boot files and squashfs layers laid out as dom0's initramfs expects, GRUB's menu rendered
from the recipe, written by xorriso around GRUB's cached boot piece (stages/grub.py) as a hybrid image that
boots from CD and USB stick, BIOS and UEFI, straight into OUTDIR.

Layout: /boot/xen.gz, /boot/grub/grub.cfg (beside GRUB's modules), /live/{vmlinuz,initrd.img,
filesystem.squashfs,xenlive.squashfs,filesystem.module}, /xenlive/images/IMAGE.squashfs.

The ISO is not a cache entry: xorriso writes it in about a second from entries that are (each artifact is
grafted in where it lies in the cache), so the cache holds no copy of each ISO. It goes through
StageRunner.run() as an Output all the same: its key decides (an ISO in OUTDIR that the same inputs made, as
the manifest beside it says and its bytes match, is kept), under the key's lock, and OUTDIR stays locked until
the build has published, so that two builds writing into one OUTDIR wait for each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs, full_disk_reported
from xenlive.context import BuildContext, versions_of
from xenlive.contract import CONTRACT
from xenlive.errors import XenliveError
from xenlive.fsutil import atomic_path, sha256_file
from xenlive.manifest import find_manifest
from xenlive.paths import data_dir
from xenlive.recipe import LoadedRecipe
from xenlive.render import render_template
from xenlive.run import run
from xenlive.stages import Output, StageResult, StageRunner
from xenlive.stages.dom0 import Dom0Rootfs
from xenlive.stages.grub import GrubBoot
from xenlive.stages.guest import GuestImageArtifact
from xenlive.tools.xorriso import iso_argv

STAGE_VERSION = 3  # 3: written by xorriso around GRUB's cached boot piece, into OUTDIR
TOOLS = ("xorriso",)
VERSIONS = versions_of("xorriso")

# What grub/grub.cfg.j2 can use, and nothing else (recipes/REFERENCE.md lists it from here).
GRUB_CONTEXT = {"recipe": "The recipe, as for dom0's overlay files."}

# dom0's initramfs stacks the images listed here in order, later ones on top.
LIVE_LAYERS = ("filesystem.squashfs", "xenlive.squashfs")


def iso_inputs(loaded: LoadedRecipe, upstream: Mapping[str, str], context: BuildContext) -> StageInputs:
    """What the ISO reads: the recipe's iso, hypervisor and dom0 boot settings, GRUB's menu template and the
    stages it is made of. Dated by the recipe (its iso.source_date_epoch, if it names one)."""
    template = data_dir("grub") / "grub.cfg.j2"
    return StageInputs(
        stage="iso",
        version=STAGE_VERSION,
        settings={
            "iso": loaded.recipe.iso.model_dump(mode="json"),
            "hypervisor": loaded.recipe.hypervisor.model_dump(mode="json"),
            "dom0_memory": loaded.recipe.dom0.memory,
            "dom0_cmdline": loaded.recipe.dom0.cmdline,
            **context.versions_for(VERSIONS),
        },
        files={"grub": {template.name: sha256_file(template)}},
        upstream=dict(upstream),
        epoch=context.dates.of_recipe(),
    )


@dataclass(frozen=True)
class IsoImage:
    """The stage's artifact: the ISO in OUTDIR, its digest and size."""

    stage: StageResult
    file: Path
    sha256: str
    size: int  # bytes

    @classmethod
    def of(cls, stage: StageResult) -> IsoImage:
        return cls(stage, stage.path, str(stage.fact("sha256")), int(stage.fact("size")))


def iso_layout(dom0: Dom0Rootfs, config: StageResult, images: Mapping[str, GuestImageArtifact]) -> dict[str, Path]:
    """Where each artifact goes on the ISO: ISO path -> the file in its cache entry."""
    live = CONTRACT.ISO_LIVE
    layout = {
        "boot/xen.gz": dom0.stage.path / "xen.gz",
        f"{live}/vmlinuz": dom0.stage.path / "vmlinuz",
        f"{live}/initrd.img": dom0.stage.path / "initrd.img",
        f"{live}/filesystem.squashfs": dom0.stage.path / "filesystem.squashfs",
        f"{live}/xenlive.squashfs": config.path / "xenlive.squashfs",
    }
    for name, image in images.items():
        layout[CONTRACT.iso_image(name)] = image.stage.path / "image.squashfs"
    return layout


def make_iso(
    runner: StageRunner,
    loaded: LoadedRecipe,
    dom0: Dom0Rootfs,
    config: StageResult,
    images: Mapping[str, GuestImageArtifact],
    grub: GrubBoot,
    outdir: Path,
) -> IsoImage:
    """OUTDIR/NAME.iso: kept when it is the ISO of these inputs already, else written (whole, or not at all).
    OUTDIR stays locked until the runner is closed, after publishing."""
    stages = [dom0.stage, config, grub.stage, *(image.stage for image in images.values())]
    inputs = iso_inputs(loaded, {stage.name: stage.key for stage in stages}, runner.context)
    final = outdir / f"{loaded.recipe.iso.name}.iso"
    layout = iso_layout(dom0, config, images)

    def build(staging: Path) -> dict[str, Any]:
        return write_iso(loaded, layout, grub, staging, final, inputs.date)

    return IsoImage.of(runner.run(inputs, "ISO (xorriso)", build, Output(final, lambda key: iso_facts(final, key))))


def write_iso(
    loaded: LoadedRecipe,
    layout: Mapping[str, Path],
    grub: GrubBoot,
    staging: Path,
    final: Path,
    epoch: int,
) -> dict[str, Any]:
    """Render GRUB's menu into `staging` (an empty directory), then let xorriso write the ISO beside `final` and
    rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    needed = sum(path.stat().st_size for path in layout.values())
    grub_cfg = staging / "boot" / "grub" / "grub.cfg"
    grub_cfg.parent.mkdir(parents=True)
    grub_cfg.write_text(grub_config(loaded))
    (staging / CONTRACT.ISO_LIVE).mkdir()
    (staging / CONTRACT.ISO_LAYER_LIST).write_text("\n".join(LIVE_LAYERS) + "\n")
    with full_disk_reported(f"writing {final.name}", final.parent, lambda: needed), atomic_path(final) as tmp:
        argv = iso_argv(
            tmp,
            boot_tree=grub.tree,
            mbr=grub.mbr,
            staging=staging,
            grafts=layout,
            volume_label=loaded.recipe.iso.volume_label,
            epoch=epoch,
        )
        run(argv, capture=True)
        digest = sha256_file(tmp)
        size = tmp.stat().st_size
    return {"iso": final.name, "sha256": digest, "size": size}


def grub_config(loaded: LoadedRecipe) -> str:
    """The ISO's boot menu, /boot/grub/grub.cfg: grub/grub.cfg.j2 rendered with GRUB_CONTEXT."""
    return render_template(data_dir("grub") / "grub.cfg.j2", {"recipe": loaded.recipe})


def iso_facts(final: Path, key: str) -> dict[str, Any] | None:
    """What the stage records of OUTDIR/NAME.iso when the inputs of `key` made it (kept_iso), else None."""
    kept = kept_iso(final, key)
    return None if kept is None else {"iso": final.name, "sha256": kept[0], "size": kept[1]}


def kept_iso(final: Path, key: str) -> tuple[str, int] | None:
    """(sha256, size) of OUTDIR/NAME.iso when its manifest says these inputs made it and its bytes match."""
    try:
        manifest = find_manifest(final)
    except XenliveError:
        return None
    if manifest is None or manifest.stage_keys().get("iso") != key or manifest.iso.size is None:
        return None
    try:
        if final.stat().st_size != manifest.iso.size or sha256_file(final) != manifest.iso.sha256:
            return None
    except OSError:
        return None
    return manifest.iso.sha256, manifest.iso.size
