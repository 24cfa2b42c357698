"""The Debian package cache: apt downloads through a proxy on 127.0.0.1 that keeps every package once, for
every stage and build, only after the apt run that fetched it succeeded; --offline serves from it alone."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer
from xenlive.debcache import DebCache, Session, store_path
from xenlive.errors import BuildError

DEB = b"!<arch>\n" + b"x" * 5000
POOL = "/debian/pool/main/b/bash/bash_5.2.15-2+b7_amd64.deb"
INRELEASE = "/debian/dists/bookworm/InRelease"


def archives(server: FakeServer) -> list[str]:
    """The archive the build's sources name: the fake server's /debian."""
    return [server.url("/debian")]


def through(session: Session, url: str) -> bytes:
    """GET url as apt does, through the session's proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": session.url}))
    with opener.open(url, timeout=10) as response:
        data: bytes = response.read()
        return data


def test_a_package_is_downloaded_once_then_served_from_the_cache_by_every_later_build(
    server: FakeServer, tmp_path: Path
) -> None:
    url = server.serve(POOL, DEB)
    debs = DebCache(tmp_path / "debs")
    with debs.session(archives(server)) as first:
        assert through(first, url) == DEB
    with debs.session(archives(server)) as second:
        assert through(second, url) == DEB
    assert server.paths == [POOL]
    assert (first.files_downloaded, second.files_from_store, second.files_downloaded) == (1, 1, 0)
    assert second.facts()["apt_from_cache_bytes"] == len(DEB)


def test_what_a_failed_apt_run_fetched_is_not_kept(server: FakeServer, tmp_path: Path) -> None:
    """apt may have refused the file (a wrong sha256): only a successful run vouches for what it fetched."""
    url = server.serve(POOL, DEB)
    debs = DebCache(tmp_path / "debs")
    with pytest.raises(RuntimeError), debs.session(archives(server)) as failed:
        through(failed, url)
        raise RuntimeError("mmdebstrap failed")
    assert not debs.file(store_path(url) or "").exists()
    with debs.session(archives(server)) as again:
        through(again, url)
    assert server.paths == [POOL, POOL]


def test_two_stages_at_once_download_a_package_they_share_once(server: FakeServer, tmp_path: Path) -> None:
    url = server.serve(POOL, DEB)
    debs = DebCache(tmp_path / "debs")
    with debs.session(archives(server)) as dom0, debs.session(archives(server)) as guest:
        through(dom0, url)  # dom0's apt fetched it; its run has not finished yet
        assert through(guest, url) == DEB
    assert server.paths == [POOL]
    assert debs.kept(store_path(url) or "") is not None


def test_a_damaged_package_in_the_cache_is_fetched_again(server: FakeServer, tmp_path: Path) -> None:
    url = server.serve(POOL, DEB)
    debs = DebCache(tmp_path / "debs")
    with debs.session(archives(server)) as first:
        through(first, url)
    stored = debs.file(store_path(url) or "")
    stored.write_bytes(b"!<arch>\n" + b"y" * 5000)  # same size, other bytes
    with debs.session(archives(server)) as second:
        assert through(second, url) == DEB
    assert server.paths == [POOL, POOL]


def test_the_archive_index_is_fetched_every_time_online_and_kept_for_offline(
    server: FakeServer, tmp_path: Path
) -> None:
    url = server.serve(INRELEASE, b"Origin: Debian\n")
    debs = DebCache(tmp_path / "debs")
    for _ in range(2):
        with debs.session(archives(server)) as online:
            through(online, url)
    assert server.paths == [INRELEASE, INRELEASE]
    with DebCache(tmp_path / "debs", offline=True).session(archives(server)) as offline:
        assert through(offline, url) == b"Origin: Debian\n"
    assert server.paths == [INRELEASE, INRELEASE]


def test_offline_serves_what_the_cache_holds_and_names_what_it_lacks(server: FakeServer, tmp_path: Path) -> None:
    url = server.serve(POOL, DEB)
    other = server.serve("/debian/pool/main/z/zsh/zsh_5.9-4+b2_amd64.deb", DEB)
    with DebCache(tmp_path / "debs").session(archives(server)) as online:
        through(online, url)
    offline = DebCache(tmp_path / "debs", offline=True)
    with pytest.raises(BuildError) as failure, offline.session(archives(server)) as session:
        assert through(session, url) == DEB
        with pytest.raises(urllib.error.HTTPError) as missing:
            through(session, other)
        assert missing.value.code == 404
        raise RuntimeError("apt failed: 404")  # as mmdebstrap does once apt gives up
    assert "--offline: 1 file(s) of the Debian archive are not in the package cache" in str(failure.value)
    assert "zsh_5.9-4+b2_amd64.deb" in str(failure.value)
    assert "run the build once without --offline" in str(failure.value)
    assert server.paths == [POOL]


def test_a_file_the_archive_lacks_is_a_404_for_apt(server: FakeServer, tmp_path: Path) -> None:
    with (
        DebCache(tmp_path / "debs").session(archives(server)) as session,
        pytest.raises(urllib.error.HTTPError) as failure,
    ):
        through(session, server.url("/debian/dists/bookworm/InRelease"))
    assert failure.value.code == 404


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://deb.debian.org/debian/pool/main/b/bash/bash.deb", "deb.debian.org/debian/pool/main/b/bash/bash.deb"),
        ("http://127.0.0.1:8080/d/dists/x/InRelease", "127.0.0.1_8080/d/dists/x/InRelease"),
        ("http://deb.debian.org/debian/../../etc/passwd", "deb.debian.org/etc/passwd"),  # still in the store
        ("http://../debian/pool/x.deb", None),
        ("http://deb.debian.org/debian/pool/x.deb.sha256", None),
        ("https://deb.debian.org/debian/pool/x.deb", None),
        ("http://deb.debian.org/debian/dists/", None),
    ],
)
def test_the_store_names_files_by_host_and_path_relative_to_itself(url: str, expected: str | None) -> None:
    assert store_path(url) == expected


def test_the_proxy_fetches_only_from_the_archives_the_builds_sources_name(server: FakeServer, tmp_path: Path) -> None:
    """While a build runs, any local user can reach the proxy on 127.0.0.1: it must not be an open proxy."""
    url = server.serve(POOL, DEB)
    server.serve("/other/secret", b"secret")
    with DebCache(tmp_path / "debs").session(archives(server)) as session:
        assert through(session, url) == DEB
        for refused in (
            server.url("/other/secret"),
            server.url("/debian/../other/secret"),
            server.url("/debianx/pool/a.deb"),
            "http://127.0.0.1:9/debian/pool/main/b/bash/bash.deb",
            "http://example.invalid/debian/pool/main/b/bash/bash.deb",
            server.url("/debian/pool/a.deb").replace("http://127.0.0.1", "http://localhost"),
        ):
            with pytest.raises(urllib.error.HTTPError) as failure:
                through(session, refused)
            assert failure.value.code == 403, refused
            assert b"fetches only from the build's archives" in failure.value.read()
    assert server.paths == [POOL]


def test_the_archives_of_a_build_come_from_its_apt_sources() -> None:
    from xenlive.debcache import archive_urls

    assert archive_urls(
        [
            "deb http://deb.debian.org/debian bookworm main",
            "deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/20261101T000000Z bookworm main",
            "deb https://example.org/debian bookworm main",
        ]
    ) == [
        "http://deb.debian.org/debian",
        "http://snapshot.debian.org/archive/debian/20261101T000000Z",
        "https://example.org/debian",
    ]
