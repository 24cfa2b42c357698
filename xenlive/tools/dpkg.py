"""dpkg-query: the packages installed in a dpkg database, read from the host (no chroot, no mount)."""

from __future__ import annotations

from pathlib import Path

from xenlive.packages import DebPackage, parse_packages
from xenlive.run import run

QUERY_FORMAT = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"


def dpkg_query_argv(admindir: Path) -> list[str]:
    return ["dpkg-query", f"--admindir={admindir}", "-W", "-f", QUERY_FORMAT]


def package_version_argv(package: str) -> list[str]:
    return ["dpkg-query", "-W", "-f", "${Version}", package]


def package_version(package: str) -> str:
    """The version of a Debian package installed on the build host: the version of a tool that cannot tell
    its own (makefs has no --version)."""
    return (run(package_version_argv(package), capture=True).stdout or b"").decode().strip() or "unknown"


def list_installed(admindir: Path) -> dict[str, DebPackage]:
    """Installed packages recorded in a dpkg database directory (one holding `status`): name -> version, arch."""
    proc = run(dpkg_query_argv(admindir), capture=True)
    installed = [
        line.partition("\t")[2] for line in (proc.stdout or b"").decode().splitlines() if line.startswith("ii")
    ]
    return parse_packages("".join(f"{line}\n" for line in installed))
