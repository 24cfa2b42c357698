"""Stage keys cover the versions of the tools that write each stage's bytes: a new mksquashfs, lz4, mkfs.ext4 or
debugfs rebuilds the stages it writes (and the ISO made of them), and only those. The versions are data of the
build context here: no tool runs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.conftest import STAND_IN_VERSIONS
from xenlive import pipeline
from xenlive.builders.base import Archive
from xenlive.cache import StageInputs, explain_change
from xenlive.context import BuildContext, Dates, versions_of
from xenlive.guestimage import LoadedGuestImage, load_guest_image
from xenlive.pipeline import BuildOptions
from xenlive.recipe import load_recipe
from xenlive.stages.config import config_inputs
from xenlive.stages.dom0 import dom0_inputs
from xenlive.stages.guest import guest_inputs, image_job
from xenlive.stages.iso import iso_inputs

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "guest-images"
DIGEST = "ab" * 32


def images(tmp_path: Path) -> list[LoadedGuestImage]:
    """A guest image of every builder: the shipped Debian (mmdebstrap, diskimage-builder) and FreeBSD ones, a
    NetBSD and a prebuilt (url) one pinned to files that are never fetched."""
    (tmp_path / "x.cfg.j2").write_text("")
    (tmp_path / "netbsd.yaml").write_text(
        "builder: netbsd\nconfig: x.cfg.j2\nnetbsd:\n  release: '10.1'\n"
        f"  kernel: {{url: https://h/netbsd-XEN3_DOMU.gz, sha256: {DIGEST}}}\n"
        f"  sets:\n    - {{url: https://h/base.tar.xz, sha256: {DIGEST}}}\n"
    )
    (tmp_path / "prebuilt.yaml").write_text(
        f"builder: url\nconfig: x.cfg.j2\nurl:\n  disk: {{url: https://h/disk.raw, sha256: {DIGEST}}}\n"
    )
    shipped = [IMAGES / f"{name}.yaml" for name in ("debian", "debian-dib", "freebsd")]
    return [load_guest_image(path) for path in [*shipped, tmp_path / "netbsd.yaml", tmp_path / "prebuilt.yaml"]]


def stage_inputs(tmp_path: Path, versions: Mapping[str, str]) -> dict[str, StageInputs]:
    """Every stage's inputs with these tool versions: dom0's, the config layer's, an image of every builder's
    and the ISO's (made of them all)."""
    loaded = load_recipe(ROOT / "recipes" / "ci-dib.yaml")
    context = BuildContext(Dates(), versions)
    archive = Archive(loaded.recipe.dom0.suite, tuple(loaded.recipe.dom0.apt_sources()))
    found = {"dom0-rootfs": dom0_inputs(loaded.recipe, context), "dom0-config": config_inputs(loaded, context)}
    for image in images(tmp_path):
        inputs = guest_inputs(image, image_job(context, image, archive, {}))
        found[inputs.stage] = inputs
    found["iso"] = iso_inputs(loaded, {name: inputs.key for name, inputs in found.items()}, context)
    return found


GUESTS = ("guest-debian", "guest-debian-dib", "guest-freebsd", "guest-netbsd", "guest-prebuilt")


@pytest.mark.parametrize(
    ("tool", "rebuilt"),
    [
        ("mksquashfs", {"dom0-rootfs", "dom0-config", *GUESTS, "iso"}),
        ("lz4", {"dom0-rootfs", "iso"}),  # dom0's kernel
        ("mkfs.ext4", {"guest-debian", "guest-debian-dib", "iso"}),
        ("debugfs", {"guest-debian", "iso"}),  # dates the mmdebstrap guest's inodes
        ("makefs", {"guest-freebsd", "guest-netbsd", "iso"}),
    ],
)
def test_a_new_version_of_a_tool_rebuilds_the_stages_it_writes_and_no_other(
    tmp_path: Path, tool: str, rebuilt: set[str]
) -> None:
    before = stage_inputs(tmp_path, STAND_IN_VERSIONS)
    after = stage_inputs(tmp_path, {**STAND_IN_VERSIONS, tool: "a newer one"})
    assert {name for name in before if before[name].key != after[name].key} == rebuilt


def test_the_rebuild_says_which_tool_changed(tmp_path: Path) -> None:
    before = stage_inputs(tmp_path, STAND_IN_VERSIONS)
    after = stage_inputs(tmp_path, {**STAND_IN_VERSIONS, "mksquashfs": "mksquashfs version 4.6.1"})
    assert explain_change(before["dom0-config"].as_json(), after["dom0-config"].as_json()) == (
        "setting 'mksquashfs' changed"
    )
    assert explain_change(before["iso"].as_json(), after["iso"].as_json()) == (
        "dom0-rootfs was rebuilt; dom0-config was rebuilt; guest-debian was rebuilt; guest-debian-dib was rebuilt; "
        "guest-freebsd was rebuilt; guest-netbsd was rebuilt; guest-prebuilt was rebuilt"
    )


def fake_tools(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stand in for every tool a version probe runs: each answers with its argv; the argvs asked, in order."""
    asked: list[list[str]] = []

    def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        asked.append([str(arg) for arg in argv])
        return subprocess.CompletedProcess(list(argv), 0, f"{' '.join(argv)}\nmore\n".encode(), b"")

    monkeypatch.setattr("xenlive.run.run", run)
    monkeypatch.setattr("xenlive.tools.dpkg.run", run)
    return asked


def test_each_tool_is_asked_its_version_with_a_flag_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    """mksquashfs of squashfs-tools 4.5 fails on --version (a build would stop there); e2fsprogs' take -V."""
    asked = fake_tools(monkeypatch)
    probes = versions_of("mksquashfs", "lz4", "mkfs.ext4", "debugfs")
    assert {tool: probe() for tool, probe in probes.items()} == {
        "mksquashfs": "mksquashfs -version",
        "lz4": "lz4 --version",
        "mkfs.ext4": "mkfs.ext4 -V",
        "debugfs": "debugfs -V",
    }
    assert len(asked) == 4


def test_a_build_asks_every_tool_that_writes_a_stage_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = fake_tools(monkeypatch)
    loaded = load_recipe(ROOT / "recipes" / "ci-dib.yaml")
    context = pipeline.build_context(loaded, BuildOptions.make(outdir=tmp_path / "out", cache_dir=tmp_path / "c"))
    for tool in ("mksquashfs", "lz4", "mkfs.ext4", "debugfs", "mmdebstrap", "xorriso"):
        assert context.version(tool).split()[0] == tool
    assert sorted(argv[0] for argv in asked) == sorted({argv[0] for argv in asked})
