"""GRUB's boot piece: what every ISO needs to boot from CD and USB stick, BIOS and UEFI, and which no recipe
changes: the El Torito BIOS image, the EFI system partition image, the hybrid MBR and GRUB's modules and
fonts under boot/grub. grub-mkrescue makes them (about 6 s of CPU, xz-compressing GRUB's modules); this
stage runs it once per GRUB version and keeps the result, from which the ISO stage assembles every ISO with
xorriso. GRUB's images name no ISO: they load boot/grub/grub.cfg from the medium they were booted from.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs
from xenlive.context import BuildContext, date_env, versions_of
from xenlive.errors import BuildError, ToolError
from xenlive.run import run
from xenlive.stages import StageResult, StageRunner
from xenlive.tools.grub import (
    BOOT_OPTIONS,
    GRUB_PLATFORMS,
    HYBRID_MBR,
    capture_script,
    chosen_boot_options,
    grub_mkrescue_argv,
    mformat_wrapper,
)

STAGE_VERSION = 1
TOOLS = ("grub-mkrescue", "mformat", "mcopy", "xorriso", "nice")
VERSIONS = versions_of("grub-mkrescue", "mformat")
FILES = {**GRUB_PLATFORMS, HYBRID_MBR: "grub-pc-bin"}  # data files grub-mkrescue needs, and their packages


@dataclass(frozen=True)
class GrubBoot:
    """The stage's artifact: GRUB's tree for the ISO's root (boot/grub, efi.img, ...) and the hybrid MBR."""

    stage: StageResult
    tree: Path
    mbr: Path

    @classmethod
    def of(cls, stage: StageResult) -> GrubBoot:
        return cls(stage, stage.path / "tree", stage.path / "boot_hybrid.img")


def grub_inputs(context: BuildContext) -> StageInputs:
    """It reads GRUB's files and mtools, nothing of any recipe: one piece serves every ISO. Dated by the fixed
    date (the EFI image's file dates and serial number)."""
    return StageInputs(
        stage="grub-boot",
        version=STAGE_VERSION,
        settings=context.versions_for(VERSIONS),
        files={},
        upstream={},
        epoch=context.dates.fixed(),
    )


def build_grub_boot(runner: StageRunner) -> GrubBoot:
    inputs = grub_inputs(runner.context)
    epoch = inputs.date

    def build(work: Path) -> dict[str, Any]:
        captured, bin_dir, tmp, empty = work / "captured", work / "bin", work / "tmp", work / "empty"
        for directory in (captured, bin_dir, tmp, empty):
            directory.mkdir()
        (bin_dir / "mformat").write_text(mformat_wrapper(epoch))
        xorriso = shutil.which("xorriso")  # the real one, before the stand-in comes first on PATH
        if xorriso is None:
            raise ToolError("xorriso: not found")
        (bin_dir / "xorriso").write_text(capture_script(captured, Path(xorriso)))
        for tool in ("mformat", "xorriso"):
            (bin_dir / tool).chmod(0o755)
        env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "TMPDIR": str(tmp),  # where grub-mkrescue makes its tree, which the stand-in keeps
            **date_env(epoch),  # dates what mcopy writes into the EFI image
        }
        argv = grub_mkrescue_argv(empty, work / "unused.iso", volume_label="XENLIVE", xorriso=bin_dir / "xorriso")
        # At a lower priority: it runs beside dom0's and the guests' mmdebstrap, which are what a cold build waits for.
        run(["nice", "-n", "10", *argv], env=env, capture=True)
        args = (captured / "xorriso.args").read_bytes().decode().split("\0")[:-1]
        chosen = chosen_boot_options(args)
        if chosen != BOOT_OPTIONS:
            raise BuildError(
                "GRUB boot images: grub-mkrescue chose xorriso boot options xenlive does not know: "
                f"{' '.join(chosen)}; expected {' '.join(BOOT_OPTIONS)} (tools/grub.py BOOT_OPTIONS)"
            )
        trees = [path for path in (captured / "tmp").iterdir() if path.is_dir()]
        if len(trees) != 1:
            raise BuildError(f"GRUB boot images: expected one tree from grub-mkrescue, found {len(trees)}")
        trees[0].rename(work / "tree")
        (work / "tree").chmod(
            0o755
        )  # grub-mkrescue's temporary directory was 0700: a CI cache saves the cache unprivileged
        shutil.copyfile(HYBRID_MBR, work / "boot_hybrid.img")
        for leftover in (captured, bin_dir, tmp, empty):
            shutil.rmtree(leftover)
        return {"boot_options": list(chosen)}

    return GrubBoot.of(runner.run(inputs, "GRUB boot images (grub-mkrescue, once per GRUB version)", build))
