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


SECURITY = Mirror(url="http://security.debian.org/debian-security", suites=["bookworm-security"])


def test_a_snapshot_of_the_archive_is_accepted_past_its_valid_until_date_and_no_other_source() -> None:
    args = argv(SNAPSHOT, SECURITY)
    assert args[-2:] == [
        "deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/20261101T000000Z bookworm main",
        "deb http://security.debian.org/debian-security bookworm-security main",
    ]
    assert not any("Valid-Until" in arg for arg in args)


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/snapshot.debian.org/archive/debian/20261101T000000Z",
        "http://snapshot.debian.org.evil.example/archive/debian/20261101T000000Z",
        "http://snapshot.debian.org@evil.example/debian",
    ],
)
def test_only_a_source_whose_host_is_the_snapshot_service_skips_the_valid_until_check(url: str) -> None:
    args = argv(Mirror(url=url, suites=["bookworm"]), DEBIAN)
    assert not any("alid-until" in arg.lower() for arg in args), args
    assert args[-3] == f"deb {url} bookworm main"


def test_a_diskimage_builder_guest_skips_the_check_for_the_snapshot_only() -> None:
    from xenlive.builders.dib import dib_env

    sources = [*SNAPSHOT.source_lines(), *SECURITY.source_lines()]
    env = dib_env(
        suite="bookworm", sources=sources, element_dirs=[], bin_dir=Path("/b"), home=Path("/h"), tmp=Path("/t")
    )
    assert env["DIB_APT_SOURCES_CONF"].splitlines() == [
        "xenlive-0:deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/20261101T000000Z bookworm main",
        "xenlive-1:deb http://security.debian.org/debian-security bookworm-security main",
    ]
    assert env["DIB_DISTRIBUTION_MIRROR"] == SNAPSHOT.url


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
    monkeypatch.setattr(rootfs, "make_dev", lambda tree: None)  # no tree: mmdebstrap did not run
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
