"""Pinned downloads against a real HTTP server on 127.0.0.1: cache by digest, resume, retry, timeouts, offline."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest

from tests.fakeserver import BODY, HALF, FakeServer
from xenlive.download import DownloadCache, DownloadError, fetch
from xenlive.pins import Pinned


@pytest.fixture
def cache(tmp_path: Path) -> DownloadCache:
    return DownloadCache(tmp_path / "downloads")


def pin(url: str, body: bytes = BODY, algorithm: str = "sha256") -> Pinned:
    return Pinned(url, f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}")


def no_sleep(delay: float) -> None:
    raise AssertionError(f"unexpected retry (sleep {delay})")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_good_file_lands_by_digest_and_the_second_fetch_makes_no_request(
    server: FakeServer, cache: DownloadCache
) -> None:
    pinned = pin(server.serve("/pub/NetBSD-10.0-amd64.img"))
    seen: list[tuple[int, int | None]] = []
    path = fetch(pinned, cache, sleep=no_sleep, progress=lambda done, total: seen.append((done, total)))
    assert path == cache.root / "by-digest" / "sha256" / hashlib.sha256(BODY).hexdigest()
    assert path.read_bytes() == BODY
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["url"] == pinned.url
    assert record["name"] == "NetBSD-10.0-amd64.img"
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert files_under(cache.partial_dir) == []
    assert cache.verify(path, pinned)

    assert fetch(pinned, cache, sleep=no_sleep) == path
    assert len(server.requests) == 1


def test_wrong_checksum_names_url_and_both_digests_and_caches_nothing(server: FakeServer, cache: DownloadCache) -> None:
    url = server.serve("/pub/guest.img")
    pinned = pin(url, b"something else")
    with pytest.raises(DownloadError) as info:
        fetch(pinned, cache, sleep=no_sleep)
    message = str(info.value)
    assert url in message
    assert pinned.digest in message
    assert f"sha256:{hashlib.sha256(BODY).hexdigest()}" in message
    assert files_under(cache.root / "by-digest") == []
    assert files_under(cache.partial_dir) == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_fail_at_once_without_retry(server: FakeServer, cache: DownloadCache, status: int) -> None:
    url = server.serve("/pub/guest.img", BODY, status)
    with pytest.raises(DownloadError, match=f"HTTP {status}") as info:
        fetch(pin(url), cache, sleep=no_sleep)
    assert url in str(info.value)
    assert len(server.requests) == 1


def test_a_host_name_that_does_not_exist_fails_at_once_without_retry(
    cache: DownloadCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_such_name(*args: object, **kwargs: object) -> None:  # a fake resolver: the name does not exist
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    url = "https://download.example.invalid/releases/base.txz"
    with pytest.raises(DownloadError) as info:
        fetch(pin(url), cache, sleep=no_sleep)
    assert (
        str(info.value) == f"cannot download {url}: host download.example.invalid not found (Name or service not known)"
    )


def test_cut_connection_is_resumed_with_a_range_request(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img", BODY, "cut"))
    delays: list[float] = []
    path = fetch(pinned, cache, sleep=delays.append)
    assert path.read_bytes() == BODY
    assert [seen.range for seen in server.requests] == [None, f"bytes={HALF}-"]
    assert delays == [1.0]


def test_server_ignoring_the_range_request_restarts_from_zero(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img", BODY, "cut", "ignore-range"))
    path = fetch(pinned, cache, sleep=lambda _: None)
    assert path.read_bytes() == BODY
    assert [seen.range for seen in server.requests] == [None, f"bytes={HALF}-"]


def test_stale_partial_file_from_an_earlier_run_is_discarded(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img"))
    cache.partial_dir.mkdir(parents=True)
    cache.partial(pinned).write_bytes(b"\0" * 1000)  # not the start of BODY
    path = fetch(pinned, cache, sleep=no_sleep)
    assert path.read_bytes() == BODY
    assert [seen.range for seen in server.requests] == ["bytes=1000-", None]


def test_complete_partial_file_left_before_the_rename_is_taken_as_is(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img"))
    cache.partial_dir.mkdir(parents=True)
    cache.partial(pinned).write_bytes(BODY)
    path = fetch(pinned, cache, sleep=no_sleep)
    assert path.read_bytes() == BODY
    assert [seen.range for seen in server.requests] == [f"bytes={len(BODY)}-"]  # answered 416


@pytest.mark.parametrize("stall", ["slow-headers", "slow-body"])
def test_stalled_server_times_out_instead_of_hanging(server: FakeServer, cache: DownloadCache, stall: str) -> None:
    url = server.serve("/pub/guest.img", BODY, stall, stall)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as info:
        fetch(pin(url), cache, timeout=0.5, retries=1, backoff=0.05)
    assert time.monotonic() - start < 10
    assert url in str(info.value)
    assert "2 attempts" in str(info.value)
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [503, 429])
def test_transient_errors_are_retried_with_growing_delays(
    server: FakeServer, cache: DownloadCache, status: int
) -> None:
    pinned = pin(server.serve("/pub/guest.img", BODY, status, status))
    delays: list[float] = []
    path = fetch(pinned, cache, sleep=delays.append, backoff=1.0)
    assert path.read_bytes() == BODY
    assert delays == [1.0, 2.0]
    assert len(server.requests) == 3


def test_retries_give_up_with_the_last_error(server: FakeServer, cache: DownloadCache) -> None:
    url = server.serve("/pub/guest.img", BODY, 503, 503, 503)
    delays: list[float] = []
    with pytest.raises(DownloadError, match=r"HTTP 503 .*gave up after 3 attempts"):
        fetch(pin(url), cache, retries=2, backoff=0.5, sleep=delays.append)
    assert delays == [0.5, 1.0]
    assert len(server.requests) == 3


def test_offline_miss_names_the_url_and_how_to_fill_the_cache(server: FakeServer, cache: DownloadCache) -> None:
    url = server.serve("/pub/FreeBSD-14.1-RELEASE-amd64.raw.xz")
    with pytest.raises(DownloadError) as info:
        fetch(pin(url), cache, offline=True)
    message = str(info.value)
    assert url in message
    assert "FreeBSD-14.1-RELEASE-amd64.raw.xz" in message
    assert "not in" in message
    assert "--artifacts" in message
    assert server.requests == []


def test_offline_hit_uses_the_cache(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img"))
    path = fetch(pinned, cache)
    assert fetch(pinned, cache, offline=True) == path
    assert len(server.requests) == 1


@pytest.mark.parametrize("as_uri", [False, True])
@pytest.mark.parametrize("offline", [False, True])
def test_artifacts_directory_is_used_without_any_request(
    server: FakeServer, cache: DownloadCache, tmp_path: Path, as_uri: bool, offline: bool
) -> None:
    pinned = pin(server.serve("/pub/guest.img"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "guest.img").write_bytes(BODY)
    location = artifacts.as_uri() if as_uri else str(artifacts)
    path = fetch(pinned, cache, artifacts=location, offline=offline, sleep=no_sleep)
    assert path == cache.entry(pinned)
    assert path.read_bytes() == BODY
    assert server.requests == []


def test_offline_with_artifacts_directory_missing_the_file(
    server: FakeServer, cache: DownloadCache, tmp_path: Path
) -> None:
    url = server.serve("/pub/guest.img")
    with pytest.raises(DownloadError, match=r"not in the download cache .* nor in the artifacts directory") as info:
        fetch(pin(url), cache, artifacts=str(tmp_path), offline=True)
    assert url in str(info.value)
    assert server.requests == []


def test_missing_artifacts_directory_is_an_error(server: FakeServer, cache: DownloadCache, tmp_path: Path) -> None:
    pinned = pin(server.serve("/pub/guest.img"))
    with pytest.raises(DownloadError, match=r"artifacts directory .*nope does not exist"):
        fetch(pinned, cache, artifacts=str(tmp_path / "nope"))
    assert server.requests == []


def test_artifacts_base_url_is_tried_before_the_pinned_url(server: FakeServer, cache: DownloadCache) -> None:
    server.serve("/mirror/guest.img")
    pinned = pin(server.url("/official/guest.img"))
    path = fetch(pinned, cache, artifacts=server.url("/mirror/"), sleep=no_sleep)
    assert path.read_bytes() == BODY
    assert server.paths == ["/mirror/guest.img"]


def test_artifacts_base_url_without_the_file_falls_back_to_the_pinned_url(
    server: FakeServer, cache: DownloadCache
) -> None:
    pinned = pin(server.serve("/official/guest.img"))
    path = fetch(pinned, cache, artifacts=server.url("/mirror"), sleep=no_sleep)
    assert path.read_bytes() == BODY
    assert server.paths == ["/mirror/guest.img", "/official/guest.img"]


def test_sha512_pins(server: FakeServer, cache: DownloadCache) -> None:
    pinned = pin(server.serve("/pub/guest.img"), algorithm="sha512")
    path = fetch(pinned, cache, sleep=no_sleep)
    assert path == cache.root / "by-digest" / "sha512" / hashlib.sha512(BODY).hexdigest()
    assert path.read_bytes() == BODY
    assert cache.verify(path, pinned)
    path.write_bytes(b"damaged")
    assert not cache.verify(path, pinned)


def test_pinned_name_comes_from_the_url_and_digest_is_normalised() -> None:
    hexdigest = hashlib.sha256(b"x").hexdigest()
    pinned = Pinned(
        "https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.0/images/NetBSD-10.0-amd64.iso?x=1", f"sha256:{hexdigest.upper()}"
    )
    assert pinned.name == "NetBSD-10.0-amd64.iso"
    assert pinned.digest == f"sha256:{hexdigest}"
    assert Pinned("https://example.org/dl?id=7", f"sha256:{hexdigest}", name="guest.img").name == "guest.img"


@pytest.mark.parametrize(
    ("url", "digest", "error"),
    [
        ("https://h/a.img", "md5:" + "0" * 32, r"ALGO:HEX with ALGO one of sha256, sha512"),
        ("https://h/a.img", "0" * 64, r"ALGO:HEX"),
        ("https://h/a.img", "sha256:abc", r"a sha256 digest is 64 hex digits"),
        ("https://h/a.img", "sha512:" + "0" * 64, r"a sha512 digest is 128 hex digits"),
        ("https://h/a.img", "sha256:" + "g" * 64, r"64 hex digits"),
        ("https://h/dir/", "sha256:" + "0" * 64, r"does not end in a file name"),
        ("ftp://h/a.img", "sha256:" + "0" * 64, r"must start with http://, https:// or file://"),
    ],
)
def test_pinned_validation(url: str, digest: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Pinned(url, digest)


def test_a_local_pin_never_reads_proc_and_says_nothing_of_what_it_holds(cache: DownloadCache) -> None:
    with pytest.raises(DownloadError) as caught:
        fetch(Pinned("file:///proc/self/status", "sha256:" + "0" * 64), cache, sleep=no_sleep)
    assert "/proc" in str(caught.value)
    assert "got sha256" not in str(caught.value) and "bytes" not in str(caught.value)
    assert files_under(cache.root) == []


def test_a_download_is_private_until_verified_then_readable(
    server: FakeServer, cache: DownloadCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local.img"
    local.write_bytes(BODY)
    modes: list[int] = []
    store = DownloadCache.store

    def spy(self: DownloadCache, part: Path, pinned: Pinned, source: str) -> Path:
        modes.append(part.stat().st_mode & 0o777)
        return store(self, part, pinned, source)

    monkeypatch.setattr(DownloadCache, "store", spy)
    fetched = [fetch(pin(server.serve("/a.img")), cache, sleep=no_sleep)]
    cache = DownloadCache(tmp_path / "other")
    fetched.append(fetch(pin(local.as_uri()), cache, sleep=no_sleep))
    assert modes == [0o600, 0o600]
    assert [path.stat().st_mode & 0o777 for path in fetched] == [0o644, 0o644]


# ---- sizes: a download stops at the size its pin states, or at a ceiling -----------------------------------


def sized_pin(url: str, size: int | None, body: bytes = BODY) -> Pinned:
    return Pinned(url, f"sha256:{hashlib.sha256(body).hexdigest()}", size=size)


def test_an_endless_answer_stops_at_the_size_the_pin_states(server: FakeServer, cache: DownloadCache) -> None:
    url = server.serve("/endless.img", BODY, "endless")
    with pytest.raises(DownloadError) as caught:
        fetch(sized_pin(url, len(BODY)), cache, sleep=no_sleep)
    assert str(caught.value) == (
        f"cannot download {url}: the server sent more than {len(BODY)} bytes, the size its pin states; "
        "the file was discarded"
    )
    assert files_under(cache.root) == []
    server.release.set()


def test_an_endless_answer_without_a_size_stops_at_the_ceiling(server: FakeServer, cache: DownloadCache) -> None:
    from xenlive.download import MAX_DOWNLOAD

    assert MAX_DOWNLOAD == 8 << 30
    url = server.serve("/endless.img", BODY, "endless")
    with pytest.raises(DownloadError, match=r"more than 1048576 bytes, the most xenlive downloads for a file"):
        fetch(pin(url), cache, sleep=no_sleep, ceiling=1 << 20)
    assert files_under(cache.root) == []


def test_an_announced_length_over_the_size_is_refused_before_reading(server: FakeServer, cache: DownloadCache) -> None:
    url = server.serve("/big.img")
    with pytest.raises(DownloadError, match=r"announces 300000 bytes, more than the 1000 its pin states"):
        fetch(sized_pin(url, 1000), cache, sleep=no_sleep)
    assert fetch(sized_pin(url, len(BODY)), cache, sleep=no_sleep).read_bytes() == BODY


def test_a_local_file_over_the_size_is_refused(cache: DownloadCache, tmp_path: Path) -> None:
    local = tmp_path / "local.img"
    local.write_bytes(BODY)
    with pytest.raises(DownloadError, match=r"more than 1000 bytes, the size its pin states"):
        fetch(sized_pin(local.as_uri(), 1000), cache, sleep=no_sleep)


def test_a_pin_states_its_size_in_a_guest_image_recipe() -> None:
    from xenlive.pins import PinnedFile

    pinned = PinnedFile.model_validate({"url": "https://h/a.img", "sha256": "0" * 64, "size": 1234}).pinned()
    assert pinned.size == 1234
    assert PinnedFile.model_validate({"url": "https://h/a.img", "sha256": "0" * 64}).pinned().size is None
