"""The SBOM written beside the manifest: valid SPDX 2.3 (checked by spdx-tools), complete, deterministic."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests import standins
from xenlive.publish import BuildOutputs, make_build_sbom, recipe_sha256
from xenlive.recipe import LoadedRecipe, load_recipe
from xenlive.stages.guest import LeftOut

DOM0 = (  # trixie's
    "xen-hypervisor-4.20-amd64\t4.20.4+63-g7abfd2bce2-0+deb13u1\tamd64\n"
    "libstdc++6\t14.2.0-19\tamd64\n"
    "tzdata\t2025b-4+deb13u1\tall\n"
)
GUEST = "systemd\t252.30-1~deb12u2\tamd64\nlibstdc++6\t12.2.0-14\tamd64\n"  # a bookworm guest's
KERNEL_URL = "https://example.org/netbsd-XEN3_DOMU.gz"
KERNEL_SHA256 = "0f" * 32


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedRecipe:
    """A recipe with a Debian guest and a guest from a downloaded (pinned) kernel and disk."""
    images = tmp_path / "recipe" / "guest-images"
    images.mkdir(parents=True)
    (images / "x.cfg.j2").write_text("")
    (images / "debian.yaml").write_text("config: x.cfg.j2\n")
    (images / "prebuilt.yaml").write_text(
        "builder: url\nconfig: x.cfg.j2\nurl:\n"
        f"  disk:\n    url: https://example.org/disk.raw\n    sha256: {hashlib.sha256(b'disk').hexdigest()}\n"
        f"  kernel:\n    url: {KERNEL_URL}\n    sha256: {KERNEL_SHA256}\n"
    )
    recipe = tmp_path / "recipe" / "xen-demo.yaml"
    recipe.write_text(
        "iso:\n  name: xen-demo\nguests:\n  - {name: debian, image: debian}\n  - {name: p, image: prebuilt}\n"
    )
    return load_recipe(recipe)


def build_outputs(root: Path, loaded: LoadedRecipe, dom0_packages: str = DOM0) -> BuildOutputs:
    images = {
        "debian": ({"suite": "bookworm"}, GUEST, 4096),
        "prebuilt": ({}, "disk.img\thttps://example.org/disk.raw\t\n", 4096),
    }
    return standins.outputs(root, loaded, dom0_packages=dom0_packages, images=images)


def write_and_validate(doc: dict[str, Any], path: Path) -> Any:
    path.write_text(json.dumps(doc, indent=2))
    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed) == []
    return parsed


def test_sbom_is_valid_spdx_listing_every_package_with_purl(loaded: LoadedRecipe, tmp_path: Path) -> None:
    outputs = build_outputs(tmp_path / "stages", loaded)
    parsed = write_and_validate(make_build_sbom(loaded, outputs), tmp_path / "x.spdx.json")
    by_comment = {(p.name, p.comment): p for p in parsed.packages}
    # Each package names the suite it came from: dom0's trixie, the guest image's own bookworm.
    xen = by_comment[("xen-hypervisor-4.20-amd64", "installed in dom0 from Debian trixie")]
    assert xen.version == "4.20.4+63-g7abfd2bce2-0+deb13u1"
    assert (
        xen.external_references[0].locator
        == "pkg:deb/debian/xen-hypervisor-4.20-amd64@4.20.4%2B63-g7abfd2bce2-0%2Bdeb13u1?arch=amd64&distro=trixie"
    )
    tzdata = by_comment[("tzdata", "installed in dom0 from Debian trixie")]
    assert tzdata.external_references[0].locator.endswith("?arch=all&distro=trixie")
    systemd = by_comment[("systemd", "installed in guest-debian from Debian bookworm")]
    assert systemd.external_references[0].locator.endswith("?arch=amd64&distro=bookworm")
    assert ("libstdc++6", "installed in guest-debian from Debian bookworm") in by_comment and (
        "libstdc++6",
        "installed in dom0 from Debian trixie",
    ) in by_comment
    assert ("disk.img", "installed in guest-prebuilt") in by_comment  # a downloaded image names no suite
    download = next(p for p in parsed.packages if p.name == "netbsd-XEN3_DOMU.gz")
    assert download.download_location == KERNEL_URL and download.checksums[0].value == KERNEL_SHA256
    iso = next(p for p in parsed.packages if p.name == "xen-demo.iso")
    assert iso.checksums[0].value == outputs.iso.sha256 and recipe_sha256(loaded) in iso.comment
    # describes the ISO; the ISO contains 3 + 2 + 1 packages (dom0, debian, prebuilt) and 2 downloads
    assert len(parsed.relationships) == 1 + 6 + 2


def test_sbom_bytes_depend_only_on_what_it_describes(loaded: LoadedRecipe, tmp_path: Path) -> None:
    outputs = build_outputs(tmp_path / "stages", loaded)
    first = make_build_sbom(loaded, outputs)
    assert first == make_build_sbom(loaded, outputs)
    assert first["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    other_iso = dataclasses.replace(outputs, iso=dataclasses.replace(outputs.iso, sha256="ee" * 32))
    assert make_build_sbom(loaded, other_iso)["documentNamespace"] != first["documentNamespace"]
    dated = dataclasses.replace(outputs, epoch=1700000000)
    parsed = write_and_validate(make_build_sbom(loaded, dated), tmp_path / "dated.spdx.json")
    assert parsed.creation_info.created.isoformat().startswith("2023-11-14T22:13:20")


def test_packages_tsv_without_architecture_gives_a_purl_without_it(loaded: LoadedRecipe, tmp_path: Path) -> None:
    outputs = build_outputs(tmp_path / "stages", loaded, dom0_packages="bash\t5.2.15-2+b7\n")
    parsed = write_and_validate(make_build_sbom(loaded, outputs), tmp_path / "old.spdx.json")
    bash = next(p for p in parsed.packages if p.name == "bash")
    assert bash.external_references[0].locator == "pkg:deb/debian/bash@5.2.15-2%2Bb7?distro=trixie"


def test_a_left_out_image_brings_neither_packages_nor_downloads(loaded: LoadedRecipe, tmp_path: Path) -> None:
    outputs = build_outputs(tmp_path / "stages", loaded)
    without = dataclasses.replace(
        outputs,
        images={"debian": outputs.images["debian"]},
        left_out=[LeftOut("p", "prebuilt", "image prebuilt not built: offline")],
    )
    names = {p["name"] for p in make_build_sbom(loaded, without)["packages"]}
    assert "netbsd-XEN3_DOMU.gz" not in names and "disk.raw" not in names and "disk.img" not in names
