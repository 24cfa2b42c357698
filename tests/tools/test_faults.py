"""Faults injected with real file systems and tools on small inputs: a tmpfs that fills up under the
cache or the output directory, and `diff` of two small ISOs (xorriso, mksquashfs) without diffoscope."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests import standins
from xenlive.cache import Cache, StageInputs
from xenlive.cli import main
from xenlive.context import BuildContext
from xenlive.errors import BuildError
from xenlive.publish import publish
from xenlive.recipe import load_recipe
from xenlive.run import run
from xenlive.stages import StageRunner
from xenlive.stages.grub import build_grub_boot
from xenlive.stages.iso import make_iso
from xenlive.tools.squashfs import make_squashfs

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]
MIB = 2**20


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def remount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


STAGE = StageInputs("dom0-rootfs", 1, {"suite": "bookworm"}, {}, {})


def write_3_mib(work: Path) -> None:
    (work / "filesystem.squashfs").write_bytes(os.urandom(3 * MIB))


def fill_with_a_tool(work: Path) -> None:
    run(["dd", "if=/dev/zero", f"of={work / 'filesystem.squashfs'}", "bs=1M", "count=3", "status=none"], capture=True)


@pytest.mark.parametrize("build", [write_3_mib, fill_with_a_tool], ids=["python-write", "external-tool"])
def test_full_cache_disk_is_one_line_and_the_next_build_succeeds(tmp_path: Path, build: object) -> None:
    with small_tmpfs(tmp_path / "cache", "2m") as cache_dir:
        with pytest.raises(BuildError) as failure:
            StageRunner(Cache(cache_dir), BuildContext()).run(STAGE, "dom0 root filesystem", build)  # type: ignore[arg-type]
        message = str(failure.value)
        assert message.startswith(f"stage dom0-rootfs: no space left on device in {cache_dir / 'tmp'} (needs about ")
        assert message.endswith("; free some space and rerun)") and "\n" not in message
        assert Cache(cache_dir).entries() == [] and list((cache_dir / "tmp").iterdir()) == []
        remount(cache_dir, "8m")
        runner = StageRunner(Cache(cache_dir), BuildContext())
        result = runner.run(STAGE, "dom0 root filesystem", build)  # type: ignore[arg-type]
        assert not result.cached and (result.path / "filesystem.squashfs").stat().st_size == 3 * MIB
        runner.cache.close()


def test_writing_the_iso_to_a_full_outdir_leaves_no_partial_file(
    tmp_path: Path, stage_runner: Callable[..., StageRunner]
) -> None:
    """xorriso writes the ISO straight into OUTDIR: a full OUTDIR is one line, and leaves nothing there."""
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    name = loaded.recipe.iso.name
    outputs = standins.outputs(tmp_path / "stages", loaded)
    for file, size in (("xen.gz", 1), ("vmlinuz", 1), ("initrd.img", 1), ("filesystem.squashfs", 3 * MIB)):
        (outputs.dom0.stage.path / file).write_bytes(os.urandom(size))
    runner = stage_runner()
    grub = build_grub_boot(runner)
    with small_tmpfs(tmp_path / "out", "2m") as outdir:
        with pytest.raises(BuildError) as failure:
            make_iso(runner, loaded, outputs.dom0, outputs.config, outputs.images, grub, outdir)
        assert str(failure.value).startswith(f"writing {name}.iso: no space left on device in {outdir} (needs about ")
        assert list(outdir.iterdir()) == []
        remount(outdir, "32m")
        iso = make_iso(runner, loaded, outputs.dom0, outputs.config, outputs.images, grub, outdir)
        assert iso.file == outdir / f"{name}.iso" and iso.size == iso.file.stat().st_size > 3 * MIB


def test_publishing_to_a_full_outdir_leaves_no_partial_file(tmp_path: Path) -> None:
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    name = loaded.recipe.iso.name
    outputs = standins.outputs(tmp_path / "stages", loaded)
    with small_tmpfs(tmp_path / "out", "16k") as outdir:
        for i in range(3):  # fill it up to its last blocks
            with contextlib.suppress(OSError):
                (outdir / f"filler-{i}").write_bytes(os.urandom(8192))
        with pytest.raises(BuildError) as failure:
            publish(loaded, outputs, outdir)
        assert str(failure.value).startswith(f"publishing {name}.manifest.json: no space left on device in {outdir}")
        assert sorted(p.name for p in outdir.iterdir() if not p.name.startswith("filler-")) == []
        remount(outdir, "8m")
        publish(loaded, outputs, outdir)
        assert sorted(p.name for p in outdir.iterdir() if not p.name.startswith("filler-")) == sorted(
            [f"{name}.manifest.json", f"{name}.spdx.json", f"{name}.build.json"]
        )
        assert json.loads((outdir / f"{name}.spdx.json").read_text())["spdxVersion"] == "SPDX-2.3"


def tiny_iso(root: Path, out: Path, motd: str, hello_mode: int) -> Path:
    """A tiny ISO: a top-level file and a squashfs layer holding etc/motd and usr/bin/hello."""
    layer = root / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "motd").write_text(motd)
    (layer / "usr" / "bin").mkdir(parents=True)
    (layer / "usr" / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (layer / "usr" / "bin" / "hello").chmod(hello_mode)
    staging = root / "staging"
    (staging / "live").mkdir(parents=True)
    (staging / "boot").mkdir()
    (staging / "boot" / "readme.txt").write_text("same on both\n")
    make_squashfs(layer, staging / "live" / "xenlive.squashfs", all_root=True, epoch=0)
    run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", str(out), str(staging)], capture=True)
    return out


def test_diff_of_two_small_isos_without_diffoscope(tmp_path: Path) -> None:
    a = tiny_iso(tmp_path / "a", tmp_path / "a.iso", "welcome\n", 0o755)
    b = tiny_iso(tmp_path / "b", tmp_path / "b.iso", "WELCOME\n", 0o700)
    runner = CliRunner()
    same = runner.invoke(main, ["diff", "--summary", str(a), str(a)])
    assert same.exit_code == 0 and same.output.endswith("identical\n")
    result = runner.invoke(main, ["diff", "--summary", str(a), str(b)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "ISO file: changed /live/xenlive.squashfs"
    assert "inside /live/xenlive.squashfs: changed etc/motd (content)" in lines
    assert any(line.startswith("inside /live/xenlive.squashfs: changed usr/bin/hello") for line in lines)
    assert not any("readme" in line for line in lines)


@pytest.mark.skipif(shutil.which("diffoscope") is None, reason="diffoscope is not installed")
def test_diff_uses_diffoscope_when_installed(tmp_path: Path) -> None:
    a = tiny_iso(tmp_path / "a", tmp_path / "a.iso", "welcome\n", 0o755)
    b = tiny_iso(tmp_path / "b", tmp_path / "b.iso", "WELCOME\n", 0o755)
    proc = subprocess.run([str(ROOT / "build.py"), "diff", str(a), str(b)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "motd" in proc.stdout
