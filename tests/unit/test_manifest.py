"""The build manifest (NAME.manifest.json), from stand-in stages: what it records of each guest image."""

from __future__ import annotations

from pathlib import Path

from xenlive.pipeline import make_manifest
from xenlive.recipe import load_recipe
from xenlive.stages import StageResult

ROOT = Path(__file__).resolve().parents[2]
MIB = 2**20


def stand_in(tmp_path: Path, name: str, info: dict[str, object], files: dict[str, int]) -> StageResult:
    """A finished stage, its files of the given sizes (sparse: only their size matters here)."""
    path = tmp_path / name
    path.mkdir()
    (path / "packages.tsv").write_text("bash\t5.2.15-2+b7\tamd64\n")
    for file, size in files.items():
        with (path / file).open("wb") as out:
            out.truncate(size)
    return StageResult(name, "k", path, True, 0.0, "cached", info)


def test_each_guest_image_records_its_disk_and_the_size_of_its_squashfs_on_the_iso(tmp_path: Path) -> None:
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    dom0 = stand_in(tmp_path, "dom0-rootfs", {"xen": "4.17"}, {})
    guest = stand_in(
        tmp_path, "guest-debian", {"disk_mib": 579, "packages": 1}, {"image.squashfs": 250 * MIB + 300 * 1024}
    )
    iso = stand_in(tmp_path, "iso", {"sha256": "0" * 64, "size": 3}, {})

    manifest = make_manifest(loaded, iso, [dom0, guest, iso], 1.0, [])

    assert manifest["guest_images"] == {
        "debian": {"disk_mib": 579, "squashfs_mib": 250.3, "packages": {"bash": "5.2.15-2+b7"}}
    }
