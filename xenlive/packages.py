"""packages.tsv: the Debian packages (or release files) that went into a tree, one per line.

Each stage that makes a root filesystem writes one beside its output, as NAME<tab>VERSION<tab>ARCH
(files written before the ARCH column existed lack it). The build manifest lists them by name and
version, the SBOM with their architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE = "packages.tsv"


@dataclass(frozen=True)
class DebPackage:
    version: str
    arch: str  # "amd64", "all"; "" in a packages.tsv written before the column existed


Packages = Mapping[str, DebPackage]


def format_packages(packages: Packages) -> str:
    return "".join(f"{name}\t{p.version}\t{p.arch}\n" for name, p in sorted(packages.items()))


def parse_packages(text: str) -> dict[str, DebPackage]:
    """NAME<tab>VERSION<tab>ARCH per line (older files lack ARCH)."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition("\t")
        version, _, arch = rest.partition("\t")
        out[name] = DebPackage(version, arch)
    return out


def write_packages(packages: Packages, path: Path) -> None:
    path.write_text(format_packages(packages))


def read_packages(path: Path) -> dict[str, DebPackage]:
    return parse_packages(path.read_text())


def versions(packages: Packages) -> dict[str, str]:
    """Name -> version, as the build manifest lists them."""
    return {name: p.version for name, p in packages.items()}
