"""The build manifest (NAME.manifest.json): written from the typed results of the stages, read back by one
reader that is lenient about what is absent and strict about what is there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import standins
from xenlive.manifest import (
    BuildManifest,
    ManifestError,
    NetworkRecord,
    build_record_path,
    find_manifest,
    parse_manifest,
    read_build_record,
    read_manifest,
)
from xenlive.publish import make_build_record, make_manifest
from xenlive.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
MIB = 2**20


def test_each_guest_image_records_its_disk_and_the_size_of_its_squashfs_on_the_iso(tmp_path: Path) -> None:
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    info = {"disk_mib": 579, "kernel": "6.1.0-28-amd64", "packages": 1}  # a count, which the list replaces
    outputs = standins.outputs(
        tmp_path, loaded, images={"debian": (info, "bash\t5.2\tamd64\n", 250 * MIB + 300 * 1024)}
    )

    manifest = make_manifest(loaded, outputs)

    record = manifest.guest_images["debian"].model_dump(mode="json", exclude_none=True)
    assert record == {"disk_mib": 579, "squashfs_mib": 250.3, "packages": {"bash": "5.2"}, "kernel": "6.1.0-28-amd64"}


def test_the_manifest_holds_what_was_built_and_the_build_record_how_the_build_ran(tmp_path: Path) -> None:
    """Two builds of the same inputs (by root, by a user, from a cold or a warm cache) write the same manifest:
    the stages' times, cache hits, reasons and apt's downloads are the build record's."""
    import dataclasses

    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    info = {"disk_mib": 1, "apt_downloaded_bytes": 5 * MIB, "apt_files_downloaded": 3}
    cold = standins.outputs(tmp_path / "cold", loaded, images={"debian": (info, "", 4096)})
    warm_stages = [dataclasses.replace(s, cached=True, seconds=0.0, reason="cached") for s in cold.stages]
    warm = dataclasses.replace(cold, stages=warm_stages, seconds=0.2)

    assert make_manifest(loaded, cold).to_json() == make_manifest(loaded, warm).to_json()
    # The stages that run at the same time finish in any order: the manifest lists them in one.
    finished = dataclasses.replace(cold, stages=[cold.stages[1], cold.stages[0], *cold.stages[2:]])
    assert make_manifest(loaded, finished).to_json() == make_manifest(loaded, cold).to_json()
    assert [s.name for s in make_build_record(finished).stages][:2] == ["guest-debian", "dom0-rootfs"]
    assert "apt_" not in make_manifest(loaded, cold).to_json()
    record = make_build_record(cold)
    assert [(s.name, s.cached, s.reason) for s in record.stages][-1] == ("iso", False, "built")
    assert record.build_seconds == 1.0
    path = build_record_path(tmp_path / "xenlive-ci.iso")
    path.write_text(record.to_json())
    assert path.name == "xenlive-ci.build.json"
    assert read_build_record(path) == record
    assert make_build_record(warm).stages[0].cached


def test_what_the_build_writes_reads_back_the_same(tmp_path: Path) -> None:
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    outputs = standins.outputs(tmp_path, loaded, images={"debian": ({"disk_mib": 1}, "", 4096)}, epoch=1700000000)
    manifest = make_manifest(loaded, outputs)
    path = tmp_path / "xenlive-ci.manifest.json"
    path.write_text(manifest.to_json())

    assert read_manifest(path) == manifest
    data = json.loads(path.read_text())
    assert list(data) == [
        "xenlive",
        "recipe",
        "iso",
        "machine",
        "source_date_epoch",
        "archive",
        "versions",
        "guests",
        "network",
        "left_out",
        "artifacts",
        "dom0_packages",
        "guest_images",
        "stages",
    ]
    assert data["versions"] == standins.DOM0_INFO
    assert data["source_date_epoch"] == 1700000000
    assert data["guests"][0] | {"image_file": "..."} == {
        "name": "debian",
        "image": "debian",
        "type": "pv",
        "memory": 128,
        "vcpus": 1,
        "autostart": True,
        "cmdline": "",
        "image_file": "...",
        "builder": "mmdebstrap",
    }
    assert [s["name"] for s in data["stages"]] == ["dom0-rootfs", "guest-debian", "dom0-config", "iso"]
    assert data["network"] == {"enabled": True}  # ci.yaml leaves the guests' network on


def test_absent_sections_have_defaults_and_say_so() -> None:
    manifest = parse_manifest({"machine": {"memory": 2048}})
    assert (manifest.machine.memory, manifest.machine.vcpus) == (2048, 2)
    assert manifest.guests is None and manifest.stages is None and manifest.autostart_guests() is None
    assert parse_manifest({"guests": [{"name": "a"}, {"name": "b", "autostart": False}]}).autostart_guests() == ("a",)


def test_the_manifest_records_whether_the_recipe_enables_the_network_and_older_ones_do_not_say(tmp_path: Path) -> None:
    loaded = load_recipe(ROOT / "recipes" / "ci.yaml")
    network_off = loaded.recipe.network.model_copy(update={"enabled": False})
    loaded_off = loaded.model_copy(update={"recipe": loaded.recipe.model_copy(update={"network": network_off})})
    outputs = standins.outputs(tmp_path, loaded, images={"debian": ({"disk_mib": 1}, "", 4096)})

    assert make_manifest(loaded_off, outputs).network == NetworkRecord(enabled=False)
    assert make_manifest(loaded, outputs).network == NetworkRecord(enabled=True)
    assert parse_manifest({}).network is None  # written before xenlive recorded it: smoke goes by dom0's plan
    assert parse_manifest({"network": {"enabled": False}}).network == NetworkRecord(enabled=False)


def test_a_value_of_the_wrong_type_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "demo.manifest.json"
    path.write_text(json.dumps({"machine": {"memory": "1G"}}))
    with pytest.raises(ManifestError, match=r"demo\.manifest\.json: machine\.memory: input should be a valid integer"):
        read_manifest(path)
    path.write_text("[]")
    with pytest.raises(ManifestError, match="not a JSON object"):
        read_manifest(path)


def test_an_iso_without_a_manifest_beside_it_has_none(tmp_path: Path) -> None:
    assert find_manifest(tmp_path / "demo.iso") is None
    (tmp_path / "demo.manifest.json").write_text(BuildManifest().to_json())
    assert find_manifest(tmp_path / "demo.iso") == BuildManifest()
