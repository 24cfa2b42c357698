"""The mmdebstrap command line: what a build asks of the Debian archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlive import rootfs
from xenlive.recipe import Mirror
from xenlive.tools.mmdebstrap import apt_config_hooks, mmdebstrap_argv, proxy_env

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


def test_apt_downloads_through_the_package_cache_and_nothing_bypasses_it() -> None:
    assert proxy_env("http://127.0.0.1:4711") == {"http_proxy": "http://127.0.0.1:4711", "no_proxy": "", "NO_PROXY": ""}


def test_an_apt_setting_for_the_build_only_is_laid_in_before_apt_runs_and_taken_out_after() -> None:
    add, remove = apt_config_hooks("00xenlive-offline", 'Acquire::Check-Valid-Until "false";')
    assert add == "printf '%s\\n' 'Acquire::Check-Valid-Until \"false\";' > \"$1\"/etc/apt/apt.conf.d/00xenlive-offline"
    assert remove == 'rm -f "$1"/etc/apt/apt.conf.d/00xenlive-offline'


def test_offline_builds_accept_the_cached_archive_state_without_leaving_that_in_the_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(rootfs, "run", lambda argv, env: ran.append((list(argv), dict(env))))
    rootfs.make_rootfs(
        Path("/t"),
        suite="bookworm",
        sources=DEBIAN.source_lines(),
        packages=["a"],
        epoch=1704067200,
        proxy="http://127.0.0.1:4711",
        offline=True,
    )
    args, env = ran[0]
    add, remove = apt_config_hooks("00xenlive-offline", 'Acquire::Check-Valid-Until "false";')
    assert f"--setup-hook={add}" in args and f"--customize-hook={remove}" in args
    assert not any(arg.startswith("--aptopt=Acquire::Check-Valid-Until") for arg in args)  # those stay in the image
    assert env == {"SOURCE_DATE_EPOCH": "1704067200", **proxy_env("http://127.0.0.1:4711")}
