"""tar: unpack BSD release sets (tar.xz / txz) into a guest root tree, as root, keeping owners and modes."""

from __future__ import annotations

from pathlib import Path

from xenlive.run import run


def extract_argv(archive: Path, tree: Path) -> list[str]:
    """GNU tar reads xz by itself; --numeric-owner keeps the BSD uids/gids (the build host's names differ)."""
    return [
        "tar",
        "-x",
        "-f",
        str(archive),
        "-C",
        str(tree),
        "--numeric-owner",
        "--same-owner",
        "--preserve-permissions",
        "--xattrs",
        "--warning=no-unknown-keyword",  # BSD tar writes SCHILY.fflags and LIBARCHIVE.* pax keys
    ]


def extract(archive: Path, tree: Path) -> None:
    tree.mkdir(parents=True, exist_ok=True)
    run(extract_argv(archive, tree), capture=True)
