"""Before the first stage: every tool and file a build needs is checked, and each builder's own checks run,
so that a missing tool is one line at once, not a failure minutes into the build (after dom0 was built)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from xenlive import pipeline
from xenlive.builders import BUILDERS, dib
from xenlive.errors import InputFileError, PartitionedImageError, ToolError
from xenlive.pipeline import BuildOptions, build_iso, check_outdir
from xenlive.recipe import load_recipe
from xenlive.run import TOOL_PACKAGES
from xenlive.stages import config, dom0, grub, iso

ROOT = Path(__file__).resolve().parents[2]


def no_stage_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stage ran although the build host lacks what it needs")

    for name in (
        "build_context",
        "build_dom0_rootfs",
        "build_guest_image",
        "build_grub_boot",
        "build_dom0_config",
        "make_iso",
    ):
        monkeypatch.setattr(pipeline, name, tripwire)


def missing(*tools: str) -> object:
    real = shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in tools else real(name) or f"/usr/bin/{name}"

    return which


def test_the_tools_of_every_builder_are_checked_before_the_first_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """debugfs (the mmdebstrap and DIB guests) and debootstrap (DIB's host tools) used to be checked only once
    their guest's stage ran, after dom0 had been built."""
    no_stage_runs(monkeypatch)
    monkeypatch.setattr("xenlive.run.shutil.which", missing("debugfs", "debootstrap"))
    monkeypatch.setattr(dib, "find_disk_image_create", lambda: Path("/venv/bin/disk-image-create"))
    loaded = load_recipe(ROOT / "recipes" / "ci-dib.yaml")
    with pytest.raises(ToolError) as failure:
        build_iso(loaded, BuildOptions.make(outdir=tmp_path / "out", cache_dir=tmp_path / "cache"))
    assert str(failure.value) == (
        "missing tool(s): debootstrap, debugfs; install with: apt-get install debootstrap e2fsprogs"
    )


def test_a_missing_disk_image_create_is_reported_before_the_first_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_stage_runs(monkeypatch)
    monkeypatch.setattr("xenlive.run.shutil.which", missing())
    monkeypatch.setattr(dib, "find_disk_image_create", lambda: None)
    loaded = load_recipe(ROOT / "recipes" / "ci-dib.yaml")
    with pytest.raises(ToolError, match=r"disk-image-create not found; .*pip install xenlive\[dib\]"):
        build_iso(loaded, BuildOptions.make(outdir=tmp_path / "out", cache_dir=tmp_path / "cache"))


def test_partitioned_dib_elements_are_refused_before_the_first_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_stage_runs(monkeypatch)
    monkeypatch.setattr("xenlive.run.shutil.which", missing())
    monkeypatch.setattr(dib, "find_disk_image_create", lambda: Path("/venv/bin/disk-image-create"))
    images = tmp_path / "guest-images"
    images.mkdir()
    (images / "vm.yaml").write_text("builder: diskimage-builder\nelements: [debian-minimal, vm]\nconfig: vm.cfg.j2\n")
    (images / "vm.cfg.j2").write_text("")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("iso:\n  name: r\nguests:\n  - {name: g, image: vm}\n")
    with pytest.raises(PartitionedImageError, match="element 'vm' makes a partitioned image"):
        build_iso(load_recipe(recipe), BuildOptions.make(outdir=tmp_path / "out", cache_dir=tmp_path / "cache"))


def test_every_tool_of_a_stage_or_builder_names_the_debian_package_to_install() -> None:
    tools = {
        *dom0.TOOLS,
        *config.TOOLS,
        *grub.TOOLS,
        *iso.TOOLS,
        *(tool for b in BUILDERS.values() for tool in b.tools),
    }
    assert sorted(tools - TOOL_PACKAGES.keys()) == []


def test_the_registry_names_each_builder_by_its_own_name_and_sections_pin_their_files() -> None:
    for name, builder in BUILDERS.items():
        assert builder.name == name
        assert (builder.section is None) == (builder.pinned is None), name


def test_an_output_directory_the_build_cannot_write_is_one_line_before_any_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputFileError, match=r"/file/out: cannot make the output directory: .*/file is not a dir"):
        check_outdir(tmp_path / "file" / "out")
    check_outdir(tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()  # made by the build when it writes, not by the check
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a user's build finds a directory of root's
    (tmp_path / "out").mkdir()
    with pytest.raises(InputFileError, match=r"/out: this build may not write to the output directory .*hint: give"):
        check_outdir(tmp_path / "out")
    with pytest.raises(InputFileError, match=r"/out/new: this build may not write to .*/out, where it would be made"):
        check_outdir(tmp_path / "out" / "new")
