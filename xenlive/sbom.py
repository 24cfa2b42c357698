"""The SBOM: an SPDX 2.3 JSON document, NAME.spdx.json beside NAME.manifest.json.

It lists the ISO, every Debian package (with version and a purl) in dom0 and in each guest image,
every downloaded artifact with its URL and digest, and the xenlive version and recipe hash. Its bytes
depend only on what it describes: packages are sorted, the creation time is SOURCE_DATE_EPOCH (or the
Unix epoch when none is given), and the document namespace derives from the recipe hash and the
ISO's sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xenlive.packages import DebPackage

NAMESPACE_BASE = "https://xenlive.invalid/spdx"


@dataclass(frozen=True)
class Artifact:
    """A file fetched from the network: its name, where from, and "ALGO:HEX"."""

    name: str
    url: str
    digest: str


def spdx_id(*parts: str) -> str:
    """SPDXRef-… from parts; characters SPDX ids do not allow become -XX- (their hex code, in upper
    case, which no Debian package name contains, so two names never share an id)."""
    text = "-".join(parts)
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", lambda m: f"-{ord(m.group()):02X}-", text)


def deb_purl(name: str, package: DebPackage, suite: str | None = None) -> str:
    """The package's purl; its qualifiers (in the order the purl spec sorts them) name its architecture and the
    Debian suite it came from (`distro=trixie`, as the spec's own deb example does)."""
    version = urllib.parse.quote(package.version, safe="")
    qualifiers = [f"arch={package.arch}"] if package.arch else []
    qualifiers += [f"distro={suite}"] if suite else []
    return f"pkg:deb/debian/{name}@{version}" + (f"?{'&'.join(qualifiers)}" if qualifiers else "")


def make_sbom(
    *,
    iso_name: str,
    iso_sha256: str,
    recipe_sha256: str,
    xenlive_version: str,
    components: Mapping[str, Mapping[str, DebPackage]],
    suites: Mapping[str, str] | None = None,
    artifacts: Sequence[Artifact] = (),
    created_epoch: int = 0,
) -> dict[str, Any]:
    """The SPDX document. `components` maps "dom0" and "guest-IMAGE" to that tree's packages, `suites` each of
    those installed from Debian to its suite."""
    iso_id = spdx_id("iso", iso_name)
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": iso_id,
            "name": f"{iso_name}.iso",
            "versionInfo": iso_sha256[:12],
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "checksums": [{"algorithm": "SHA256", "checksumValue": iso_sha256}],
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "comment": f"built by xenlive {xenlive_version} from a recipe with sha256 {recipe_sha256}",
        }
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": iso_id}
    ]
    for label, table in sorted(components.items()):
        suite = (suites or {}).get(label)
        for name, package in sorted(table.items()):
            package_id = spdx_id(label, name)
            packages.append(
                {
                    "SPDXID": package_id,
                    "name": name,
                    "versionInfo": package.version,
                    "downloadLocation": "NOASSERTION",
                    "filesAnalyzed": False,
                    "supplier": "Organization: Debian",
                    "externalRefs": [
                        {
                            "referenceCategory": "PACKAGE-MANAGER",
                            "referenceType": "purl",
                            "referenceLocator": deb_purl(name, package, suite),
                        }
                    ],
                    "comment": f"installed in {label}" + (f" from Debian {suite}" if suite else ""),
                }
            )
            relationships.append(_contains(iso_id, package_id))
    for artifact in sorted(artifacts, key=lambda a: (a.name, a.url)):
        algorithm, _, value = artifact.digest.partition(":")
        artifact_id = spdx_id("download", artifact.name)
        packages.append(
            {
                "SPDXID": artifact_id,
                "name": artifact.name,
                "downloadLocation": artifact.url,
                "filesAnalyzed": False,
                "checksums": [{"algorithm": algorithm.upper(), "checksumValue": value}],
            }
        )
        relationships.append(_contains(iso_id, artifact_id))
    unique = hashlib.sha256(f"{recipe_sha256}:{iso_sha256}".encode()).hexdigest()
    created = dt.datetime.fromtimestamp(created_epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{iso_name}.iso",
        "documentNamespace": f"{NAMESPACE_BASE}/{iso_name}-{unique}",
        "creationInfo": {"created": created, "creators": [f"Tool: xenlive-{xenlive_version}"]},
        "comment": f"recipe sha256 {recipe_sha256}; xenlive {xenlive_version}",
        "packages": packages,
        "relationships": relationships,
    }


def _contains(container: str, element: str) -> dict[str, str]:
    return {"spdxElementId": container, "relationshipType": "CONTAINS", "relatedSpdxElement": element}
