"""The mmdebstrap command line: what a build asks of the Debian archive."""

from __future__ import annotations

from pathlib import Path

from xenlive.recipe import Mirror
from xenlive.tools.mmdebstrap import mmdebstrap_argv

DEBIAN = Mirror(url="http://deb.debian.org/debian", suites=["bookworm", "bookworm-updates"])
SNAPSHOT = Mirror(url="http://snapshot.debian.org/archive/debian/20261101T000000Z", suites=["bookworm"])


def argv(*mirrors: Mirror) -> list[str]:
    sources = [line for mirror in mirrors for line in mirror.source_lines()]
    return mmdebstrap_argv(suite="bookworm", target=Path("/t"), sources=sources, packages=["b", "a", "b"])


def test_sources_come_last_one_per_suite_and_packages_are_sorted_once() -> None:
    args = argv(DEBIAN)
    assert args[-3:] == [
        "/t",
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
    ]
    assert "--include=a,b" in args
    assert '--aptopt=Acquire::Check-Valid-Until "false"' not in args


def test_a_snapshot_of_the_archive_is_accepted_past_its_valid_until_date() -> None:
    assert '--aptopt=Acquire::Check-Valid-Until "false"' in argv(SNAPSHOT)
