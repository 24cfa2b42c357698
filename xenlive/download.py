"""Files fetched from the network (guest release images), pinned by digest and kept in a download cache.

A file is named by what it must contain, not where it came from: CACHE/by-digest/<algo>/<hex>, with a
small <hex>.json beside it recording the URL and file name. A download is written to
CACHE/partial/<hex>.part, resumed with an HTTP Range request after an interruption, verified against
its digest and only then renamed into by-digest, so a cache entry is always a complete, verified file.
The partial file is private (0600) until then: it holds whatever the URL gave, not yet known to be the pin.
A download stops as soon as it is larger than the size its pin states, or, for a pin that states none,
than MAX_DOWNLOAD: a server that sends without end fills no disk.
A local (file://) pin is confined to the recipe's project when the recipe is loaded (project.url_refusal());
here, /proc, /sys, /dev and /run are refused once more, before anything is read.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from xenlive import __version__
from xenlive.errors import XenliveError
from xenlive.fsutil import atomic_path, hash_file
from xenlive.pins import MAX_DOWNLOAD, Pinned
from xenlive.project import NEVER_READ, is_within

log = logging.getLogger(__name__)

CHUNK = 1 << 16

Progress = Callable[[int, int | None], None]


class DownloadError(XenliveError):
    """A pinned file could not be fetched, or what was fetched is not what the pin says."""


class DigestMismatch(DownloadError):
    """What was fetched is not what the pin says: always an error, never a reason to try elsewhere."""


def file_digest(path: Path, algorithm: str) -> str:
    """The digest of a file, as "ALGO:HEX"."""
    return f"{algorithm}:{hash_file(path, algorithm)}"


class DownloadCache:
    """Fetched files by digest under `root`; partial downloads under root/partial."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial_dir = root / "partial"

    def entry(self, pinned: Pinned) -> Path:
        return self.root / "by-digest" / pinned.algorithm / pinned.hexdigest

    def partial(self, pinned: Pinned) -> Path:
        return self.partial_dir / f"{pinned.hexdigest}.part"

    def lookup(self, pinned: Pinned) -> Path | None:
        """The cached file, or None. Cheap: a file only ever reaches by-digest after its digest was checked."""
        path = self.entry(pinned)
        try:
            return path if path.is_file() and path.stat().st_size > 0 else None
        except OSError:
            return None

    def verify(self, path: Path, pinned: Pinned) -> bool:
        """Re-hash a file (e.g. a cache entry suspected of damage) and compare it with the pin."""
        return file_digest(path, pinned.algorithm) == pinned.digest

    def store(self, part: Path, pinned: Pinned, source: str) -> Path:
        """Move a verified partial file into by-digest (atomically), with its .json record beside it."""
        final = self.entry(pinned)
        final.parent.mkdir(parents=True, exist_ok=True)
        record_data = {"url": pinned.url, "name": pinned.name, "digest": pinned.digest, "fetched_from": source}
        with atomic_path(final.with_name(final.name + ".json")) as tmp:
            tmp.write_text(json.dumps(record_data, indent=2) + "\n")
        os.chmod(part, 0o644)  # verified: as public as the URL it came from
        os.replace(part, final)
        return final


def fetch(
    pinned: Pinned,
    cache: DownloadCache,
    *,
    offline: bool = False,
    artifacts: str | None = None,
    timeout: float = 30.0,
    retries: int = 4,
    backoff: float = 1.0,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    ceiling: int = MAX_DOWNLOAD,
) -> Path:
    """Return the path of the pinned file in the cache, fetching it first if it is not there.

    `artifacts` is a local directory or a base URL (http://, https://, file://) holding files by their
    names; it is tried before the pinned URL. With `offline`, only the cache and a local `artifacts`
    directory are used. Transient failures (timeouts, cut connections, HTTP 5xx and 429) are retried
    `retries` times, waiting backoff * 2**attempt seconds; `timeout` bounds the connect and every read.
    A download larger than the pin's size, or than `ceiling` for a pin that states none, is an error.
    """
    hit = cache.lookup(pinned)
    if hit is not None:
        log.debug("%s: in the download cache at %s", pinned.name, hit)
        return hit
    sources = _sources(pinned, artifacts, offline)
    if not sources:
        raise DownloadError(_offline_message(pinned, cache, artifacts))
    getter = _Getter(cache, pinned, timeout, retries, backoff, progress, sleep, _Limit.of(pinned, ceiling))
    for i, url in enumerate(sources):
        following = f"; trying {sources[i + 1]}" if i + 1 < len(sources) else ""
        try:
            return getter.get(url)
        except _Absent as exc:
            if not following:
                raise DownloadError(_offline_message(pinned, cache, artifacts) if offline else str(exc)) from None
            log.info("%s%s", exc, following)
        except DigestMismatch:
            raise
        except DownloadError as exc:
            if not following:
                raise
            log.warning("%s%s", exc, following)
    raise AssertionError("unreachable: the last source either returns or raises")


def _sources(pinned: Pinned, artifacts: str | None, offline: bool) -> list[str]:
    """URLs to try, in order; local directories become file:// URLs."""
    out: list[str] = []
    if artifacts:
        if _is_local(artifacts):
            base = _local_path(artifacts)
            if not base.is_dir():
                raise DownloadError(f"artifacts directory {base} does not exist")
            out.append((base / pinned.name).as_uri())
        elif not offline:
            out.append(artifacts.rstrip("/") + "/" + urllib.parse.quote(pinned.name))
    if not offline or _is_local(pinned.url):
        out.append(pinned.url)
    return out


def _offline_message(pinned: Pinned, cache: DownloadCache, artifacts: str | None) -> str:
    where = f"the download cache {cache.root}"
    if artifacts and _is_local(artifacts):
        where += f" nor in the artifacts directory {_local_path(artifacts)}"
    return (
        f"{pinned.name} ({pinned.url}) is not in {where}, and offline mode forbids downloading it; "
        f"run once without --offline to fill the cache, or pass --artifacts DIR with {pinned.name} in DIR"
    )


def local_dir(location: str) -> Path | None:
    """The directory an --artifacts location names (a path or a file:// URL); None for a remote URL."""
    return _local_path(location) if _is_local(location) else None


def _is_local(location: str) -> bool:
    scheme = urllib.parse.urlsplit(location).scheme
    return scheme in ("", "file")


def _local_path(location: str) -> Path:
    if location.startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(location).path))
    return Path(location)


@dataclass(frozen=True)
class _Limit:
    """The most a download may be: the size its pin states, else the ceiling."""

    bytes: int
    stated: bool

    @classmethod
    def of(cls, pinned: Pinned, ceiling: int) -> _Limit:
        return cls(pinned.size, True) if pinned.size is not None else cls(ceiling, False)

    def what(self) -> str:
        if self.stated:
            return "the size its pin states"
        return "the most xenlive downloads for a file (a larger file needs `size:` in its pin)"

    def exceeded(self, url: str, part: Path) -> DownloadError:
        part.unlink(missing_ok=True)
        return DownloadError(
            f"cannot download {url}: the server sent more than {self.bytes} bytes, {self.what()}; "
            "the file was discarded"
        )

    def announced(self, url: str, total: int, part: Path) -> DownloadError:
        part.unlink(missing_ok=True)
        if self.stated:
            return DownloadError(
                f"cannot download {url}: it announces {total} bytes, more than the {self.bytes} its pin states"
            )
        return DownloadError(
            f"cannot download {url}: it announces {total} bytes, more than {self.bytes}, {self.what()}"
        )


class _Absent(Exception):
    """The source does not have the file (HTTP 404, or no such local file): try the next one."""


class _Transient(Exception):
    """A failure worth retrying: timeout, cut connection, HTTP 5xx or 429."""


@dataclass
class _Getter:
    cache: DownloadCache
    pinned: Pinned
    timeout: float
    retries: int
    backoff: float
    progress: Progress | None
    sleep: Callable[[float], None]
    limit: _Limit

    def get(self, url: str) -> Path:
        """Fetch `url` into the partial file, verify it, move it into the cache."""
        part = self.cache.partial(self.pinned)
        part.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s", url)
        start = time.monotonic()
        resumed = self._transfer(url, part)
        actual = file_digest(part, self.pinned.algorithm)
        if actual != self.pinned.digest and resumed:
            # The bytes before the resume point may be stale (a different file, an earlier run): start over.
            log.warning("%s: digest mismatch after resuming; downloading it again from the start", url)
            part.unlink()
            self._transfer(url, part)
            actual = file_digest(part, self.pinned.algorithm)
        if actual != self.pinned.digest:
            size = part.stat().st_size
            part.unlink()
            raise DigestMismatch(
                f"digest mismatch for {url}: expected {self.pinned.digest}, got {actual} ({size} bytes); "
                "the file was discarded"
            )
        path = self.cache.store(part, self.pinned, url)
        size = path.stat().st_size
        log.info("fetched %s (%d bytes in %.1fs) into %s", self.pinned.name, size, time.monotonic() - start, path)
        return path

    def _transfer(self, url: str, part: Path) -> bool:
        """Fill `part` with the whole file, retrying transient failures. True if it resumed earlier bytes."""
        if url.startswith("file:"):
            _copy_local(url, part, self.progress, self.limit)
            return False
        opener = urllib.request.build_opener()  # reads the *_proxy environment now, not at import
        attempt = 0
        while True:
            try:
                return _http_get(opener, url, part, self.timeout, self.progress, self.limit)
            except _Transient as exc:
                if attempt >= self.retries:
                    tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                    raise DownloadError(f"cannot download {url}: {exc} (gave up after {tries})") from None
                delay = self.backoff * 2**attempt
                log.warning("%s: %s; retrying in %.1fs", url, exc, delay)
                self.sleep(delay)
                attempt += 1


def _http_get(
    opener: urllib.request.OpenerDirector,
    url: str,
    part: Path,
    timeout: float,
    progress: Progress | None,
    limit: _Limit,
) -> bool:
    """One attempt: append to `part` from where it ends (Range), or rewrite it if the server sends it all.

    Returns True if the bytes already in `part` were kept. Raises _Transient, _Absent or DownloadError.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"xenlive/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            log.debug("%s: range from %d not satisfiable; taking the partial file as complete", url, offset)
            return True
        if exc.code == 404:
            raise _Absent(f"cannot download {url}: HTTP 404 {exc.reason}") from None
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, socket.gaierror) and exc.reason.errno == socket.EAI_NONAME:
            # The name does not exist (EAI_AGAIN would be a resolver hiccup): retrying only costs time.
            host = urllib.parse.urlsplit(url).hostname
            raise DownloadError(f"cannot download {url}: host {host} not found ({exc.reason.strerror})") from None
        raise _Transient(_describe(exc, timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(_describe(exc, timeout)) from None
    with response:
        if response.status == 206 and offset:
            first, total = _content_range(response.headers.get("Content-Range", ""))
            if first != offset:
                part.unlink()
                raise _Transient(f"asked for bytes from {offset}, server sent bytes from {first}; restarting")
            mode = "ab"
        elif response.status == 200:
            if offset:
                log.info("%s: server ignored the range request; downloading from the start", url)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        else:
            raise DownloadError(f"cannot download {url}: unexpected HTTP {response.status} {response.reason}")
        if total is not None and total > limit.bytes:
            raise limit.announced(url, total, part)
        done = offset
        with _open_part(part, mode) as f:
            if progress:
                progress(done, total)
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(_describe(exc, timeout) + f" after {done} bytes") from None
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if done > limit.bytes:
                    f.close()
                    raise limit.exceeded(url, part)
                if progress:
                    progress(done, total)
    if total is not None and done < total:
        raise _Transient(f"connection closed after {done} of {total} bytes")
    return bool(offset)


def _content_range(value: str) -> tuple[int, int | None]:
    """(first byte, full size or None) from a `Content-Range: bytes FIRST-LAST/SIZE` header."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value)
    if not match:
        raise _Transient(f"bad Content-Range header {value!r} in a 206 response")
    size = match.group(2)
    return int(match.group(1)), (int(size) if size.isdigit() else None)


def _describe(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"timed out (no data for {timeout:g}s)"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return str(reason)


def _open_part(part: Path, mode: str) -> IO[bytes]:
    """The partial file, created 0600 (a file of someone else's is not reused: it is replaced)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    fd = os.open(part, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode)


def _copy_local(url: str, part: Path, progress: Progress | None, limit: _Limit) -> None:
    source = _local_path(url)
    real = Path(os.path.realpath(source))
    for never in NEVER_READ:
        if is_within(real, Path(os.path.realpath(never))):
            raise DownloadError(f"cannot copy {source}: it is in {never}, which xenlive never reads")
    if not source.is_file():
        raise _Absent(f"cannot copy {source}: no such file")
    try:
        total = source.stat().st_size
        if total > limit.bytes:
            raise DownloadError(
                f"cannot copy {source}: it has {total} bytes, more than {limit.bytes} bytes, {limit.what()}"
            )
        done = 0
        with source.open("rb") as src, _open_part(part, "wb") as dst:
            if progress:
                progress(done, total)
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                done += len(chunk)
                if done > limit.bytes:
                    dst.close()
                    raise limit.exceeded(url, part)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise DownloadError(f"cannot copy {source}: {exc}") from None
