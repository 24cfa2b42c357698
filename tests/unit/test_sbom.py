"""The SBOM written beside the manifest: valid SPDX 2.3 (checked by spdx-tools), complete, deterministic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from xenlive.pipeline import make_build_sbom
from xenlive.stages import StageResult

DOM0 = (
    "xen-hypervisor-4.17-amd64\t4.17.3+10-g091466ba55-1\tamd64\n"
    "libstdc++6\t12.2.0-14\tamd64\n"
    "tzdata\t2024a-0+deb12u1\tall\n"
)
GUEST = "systemd\t252.30-1~deb12u2\tamd64\nlibstdc++6\t12.2.0-14\tamd64\n"


def manifest(
    iso_sha256: str = "ab" * 32, artifacts: list[dict[str, str]] | None = None, epoch: int = 0
) -> dict[str, Any]:
    return {
        "xenlive": "0.1.0",
        "source_date_epoch": epoch,
        "recipe": {"sha256": "cd" * 32},
        "iso": {"file": "xen-demo.iso", "sha256": iso_sha256},
        "artifacts": artifacts or [],
    }


@pytest.fixture
def stages(tmp_path: Path) -> list[StageResult]:
    out = []
    for name, table in (("dom0-rootfs", DOM0), ("guest-debian", GUEST), ("iso", None)):
        path = tmp_path / name
        path.mkdir()
        if table:
            (path / "packages.tsv").write_text(table)
        out.append(StageResult(name, "k", path, True, 0.0, "cached"))
    return out


def write_and_validate(doc: dict[str, Any], path: Path) -> Any:
    path.write_text(json.dumps(doc, indent=2))
    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed) == []
    return parsed


def test_sbom_is_valid_spdx_listing_every_package_with_purl(stages: list[StageResult], tmp_path: Path) -> None:
    artifact = {
        "name": "netbsd-XEN3_DOMU.gz",
        "url": "https://example.org/netbsd-XEN3_DOMU.gz",
        "digest": "sha256:" + "0f" * 32,
    }
    parsed = write_and_validate(make_build_sbom(manifest(artifacts=[artifact]), stages), tmp_path / "x.spdx.json")
    by_comment = {(p.name, p.comment): p for p in parsed.packages}
    xen = by_comment[("xen-hypervisor-4.17-amd64", "installed in dom0")]
    assert xen.version == "4.17.3+10-g091466ba55-1"
    assert (
        xen.external_references[0].locator
        == "pkg:deb/debian/xen-hypervisor-4.17-amd64@4.17.3%2B10-g091466ba55-1?arch=amd64"
    )
    assert by_comment[("tzdata", "installed in dom0")].external_references[0].locator.endswith("?arch=all")
    assert ("systemd", "installed in guest-debian") in by_comment
    assert ("libstdc++6", "installed in guest-debian") in by_comment and (
        "libstdc++6",
        "installed in dom0",
    ) in by_comment
    download = next(p for p in parsed.packages if p.name == "netbsd-XEN3_DOMU.gz")
    assert download.download_location == artifact["url"] and download.checksums[0].value == "0f" * 32
    iso = next(p for p in parsed.packages if p.name == "xen-demo.iso")
    assert iso.checksums[0].value == "ab" * 32 and "cd" * 32 in iso.comment and "xenlive 0.1.0" in iso.comment
    assert len(parsed.relationships) == 1 + 5 + 1  # describes the ISO; the ISO contains 5 packages and 1 download


def test_sbom_bytes_depend_only_on_what_it_describes(stages: list[StageResult], tmp_path: Path) -> None:
    first = make_build_sbom(manifest(), stages)
    assert first == make_build_sbom(manifest(), stages)
    assert first["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    other_iso = make_build_sbom(manifest(iso_sha256="ee" * 32), stages)
    assert other_iso["documentNamespace"] != first["documentNamespace"]
    dated = write_and_validate(make_build_sbom(manifest(epoch=1700000000), stages), tmp_path / "dated.spdx.json")
    assert dated.creation_info.created.isoformat().startswith("2023-11-14T22:13:20")


def test_packages_tsv_without_architecture_gives_a_purl_without_it(stages: list[StageResult], tmp_path: Path) -> None:
    (stages[0].path / "packages.tsv").write_text("bash\t5.2.15-2+b7\n")
    parsed = write_and_validate(make_build_sbom(manifest(), stages), tmp_path / "old.spdx.json")
    bash = next(p for p in parsed.packages if p.name == "bash")
    assert bash.external_references[0].locator == "pkg:deb/debian/bash@5.2.15-2%2Bb7"
