"""The ISO stage: where each artifact goes on the ISO, when an ISO already in OUTDIR is kept, and two builds
writing into one OUTDIR at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import standins
from xenlive.fsutil import sha256_file
from xenlive.manifest import BuildManifest, IsoRecord, StageRecord, manifest_path
from xenlive.publish import BuildOutputs
from xenlive.recipe import LoadedRecipe
from xenlive.stages import StageRunner
from xenlive.stages.grub import GrubBoot
from xenlive.stages.iso import IsoImage, iso_inputs, iso_layout, kept_iso, make_iso


def write_manifest(iso: Path, key: str, *, size: int | None = None, sha256: str | None = None) -> None:
    manifest = BuildManifest(
        iso=IsoRecord(
            file=iso.name,
            size=iso.stat().st_size if size is None else size,
            sha256=sha256_file(iso) if sha256 is None else sha256,
        ),
        stages=[StageRecord(name="iso", key=key)],
    )
    manifest_path(iso).write_text(manifest.to_json())


def test_the_iso_of_the_same_inputs_is_kept(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"an iso")
    write_manifest(iso, "k1")
    assert kept_iso(iso, "k1") == (sha256_file(iso), 6)


def test_an_iso_of_other_inputs_or_without_a_manifest_is_written_again(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"an iso")
    assert kept_iso(iso, "k1") is None
    write_manifest(iso, "k0")
    assert kept_iso(iso, "k1") is None


def test_an_iso_changed_since_its_manifest_was_written_is_written_again(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"an iso")
    write_manifest(iso, "k1")
    iso.write_bytes(b"an ISO")  # same size, other bytes (e.g. booted with --no-snapshot)
    assert kept_iso(iso, "k1") is None
    manifest_path(iso).write_text("{not json")
    assert kept_iso(iso, "k1") is None


def test_every_artifact_is_grafted_from_its_cache_entry(tmp_path: Path) -> None:
    loaded = standins.loaded_recipe(
        {"iso": {"name": "x"}, "guests": [{"name": "g", "image": "debian"}]}, {"debian": tmp_path / "debian.cfg.j2"}
    )
    outputs = standins.outputs(tmp_path, loaded, images={"debian": ({}, "", 1)})
    layout = iso_layout(outputs.dom0, outputs.config, outputs.images)
    dom0, config, guest = outputs.dom0.stage.path, outputs.config.path, outputs.images["debian"].stage.path
    assert layout == {
        "boot/xen.gz": dom0 / "xen.gz",
        "live/vmlinuz": dom0 / "vmlinuz",
        "live/initrd.img": dom0 / "initrd.img",
        "live/filesystem.squashfs": dom0 / "filesystem.squashfs",
        "live/xenlive.squashfs": config / "xenlive.squashfs",
        "xenlive/images/debian.squashfs": guest / "image.squashfs",
    }


def iso_stages(tmp_path: Path) -> tuple[LoadedRecipe, BuildOutputs, GrubBoot]:
    """Stand-ins for the stages the ISO is made of, and the recipe (its ISO is named x)."""
    loaded = standins.loaded_recipe(
        {"iso": {"name": "x"}, "guests": [{"name": "g", "image": "debian"}]}, {"debian": tmp_path / "debian.cfg.j2"}
    )
    outputs = standins.outputs(tmp_path / "stages", loaded, images={"debian": ({}, "", 1)})
    for file in ("xen.gz", "vmlinuz", "initrd.img", "filesystem.squashfs"):
        (outputs.dom0.stage.path / file).write_bytes(b"stand-in")
    grub = standins.stage(tmp_path / "stages", "grub-boot", {}, {"boot_hybrid.img": b"mbr"})
    return loaded, outputs, GrubBoot(grub, grub.path / "tree", grub.path / "boot_hybrid.img")


def make_iso_of(
    runner: StageRunner, loaded: LoadedRecipe, outputs: BuildOutputs, grub: GrubBoot, out: Path
) -> IsoImage:
    return make_iso(runner, loaded, outputs.dom0, outputs.config, outputs.images, grub, out)


def iso_key(runner: StageRunner, loaded: LoadedRecipe, outputs: BuildOutputs, grub: GrubBoot) -> str:
    stages = [outputs.dom0.stage, outputs.config, grub.stage, *(image.stage for image in outputs.images.values())]
    return iso_inputs(loaded, {stage.name: stage.key for stage in stages}, runner.context).key


def test_the_iso_its_inputs_made_is_kept_through_the_stage_runner_without_xorriso(
    tmp_path: Path, stage_runner: Callable[..., StageRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded, outputs, grub = iso_stages(tmp_path)
    runner = stage_runner()
    out = tmp_path / "out"
    out.mkdir()
    iso = out / "x.iso"
    iso.write_bytes(b"the ISO of these inputs")
    write_manifest(iso, iso_key(runner, loaded, outputs, grub))
    before = iso.stat()
    monkeypatch.setattr("xenlive.stages.iso.run", lambda *args, **kwargs: pytest.fail("xorriso ran"))
    image = make_iso_of(runner, loaded, outputs, grub, out)
    assert image.stage.cached and image.file == iso and (image.sha256, image.size) == (sha256_file(iso), 23)
    assert runner.results == [image.stage]
    after = iso.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def fake_xorriso(content: bytes) -> Callable[..., None]:
    """Stands in for xorriso: writes `content` where it is told to (-o)."""

    def run(argv: list[str], **kwargs: object) -> None:
        Path(argv[argv.index("-o") + 1]).write_bytes(content)

    return run


def test_an_iso_its_inputs_did_not_make_is_written_anew_into_outdir_and_not_into_the_cache(
    tmp_path: Path, stage_runner: Callable[..., StageRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded, outputs, grub = iso_stages(tmp_path)
    out = tmp_path / "out"
    monkeypatch.setattr("xenlive.stages.iso.run", fake_xorriso(b"first"))
    runner = stage_runner()
    first = make_iso_of(runner, loaded, outputs, grub, out)
    runner.close()  # the build ends: OUTDIR is free for the next
    assert not first.stage.cached and first.stage.reason == "no cached entry for this stage"
    iso = out / "x.iso"
    iso.write_bytes(b"booted with --no-snapshot")  # no longer what the manifest would say
    monkeypatch.setattr("xenlive.stages.iso.run", fake_xorriso(b"second"))
    second = make_iso_of(stage_runner(), loaded, outputs, grub, out)
    assert not second.stage.cached and second.stage.reason == f"{iso} was not made from these inputs"
    assert iso.read_bytes() == b"second" and (second.sha256, second.size) == (sha256_file(iso), 6)
    assert sorted(path.name for path in out.iterdir()) == ["x.iso"]  # no temporary file left
    cache = tmp_path / "cache"
    assert sorted(path.name for path in cache.iterdir()) == ["iso", "locks", "tmp"]
    assert [path.name for path in (cache / "iso").iterdir()] == ["last.json"]  # no copy of the ISO
    assert list((cache / "tmp").iterdir()) == []
