"""The ISO stage: where each artifact goes on the ISO, and when an ISO already in OUTDIR is kept."""

from __future__ import annotations

from pathlib import Path

from tests import standins
from xenlive.fsutil import sha256_file
from xenlive.manifest import BuildManifest, IsoRecord, StageRecord, manifest_path
from xenlive.stages.iso import iso_layout, kept_iso


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
