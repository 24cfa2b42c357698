"""Debian packages, downloaded once for every stage and every build: a caching HTTP proxy on 127.0.0.1 that apt
(inside mmdebstrap) downloads through, and the store it keeps under CACHE/debs.

apt verifies every file it gets through the proxy as it verifies any download: the archive's InRelease by its
signature, each index by the sha256 InRelease gives it, each .deb by the sha256 its index gives it; a file
from the store is no exception. So the store is trusted by no one, and a file enters it for good only once the
apt run that fetched it has succeeded (it checked the file); the files of a failed run are dropped. Files
that never change at their URL (`pool/` packages, `by-hash/` indexes) are served from the store without a
request; the others (InRelease, Release) are fetched every time while online, and the last copy is kept for
`--offline`, which serves only from the store (apt then accepts an archive state past its Valid-Until date).

The proxy is reachable by every local user while a build runs, so it is no open proxy: it fetches only from
the archives the build's apt sources name (scheme, host, port and path prefix) and answers anything else with
403.

Store: CACHE/debs/<host>/<path> and, once kept for good, <path>.sha256 (its digest, checked before the file
is served: a damaged file is fetched again). Nothing in it names where the cache is: it may move.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import posixpath
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from xenlive import __version__
from xenlive.errors import BuildError
from xenlive.fsutil import sha256_file
from xenlive.progress import note

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DIGEST = ".sha256"


def apt_session(debs: DebCache | None, sources: Sequence[str]) -> contextlib.AbstractContextManager[Session]:
    """A session of the package cache for one apt run from `sources` (one-line apt sources), or (without a
    cache, as in tests) one that is no proxy."""
    return debs.session(archive_urls(sources)) if debs is not None else contextlib.nullcontext(Session())


def archive_urls(sources: Sequence[str]) -> list[str]:
    """The archive URL of each one-line apt source (`deb [OPTIONS] URL SUITE COMPONENTS...`)."""
    urls = []
    for line in sources:
        words = line.split()
        if words and words[0] == "deb":
            words = words[1:]
        if words and words[0].startswith("["):
            words = words[next((i for i, w in enumerate(words) if w.endswith("]")), len(words) - 1) + 1 :]
        if words:
            urls.append(words[0])
    return urls


@dataclass(frozen=True)
class Archive:
    """Where the proxy may fetch from: an http:// archive's host, port and path prefix."""

    host: str
    port: int
    path: str  # normalised, without a trailing "/" (empty for the whole server)

    @classmethod
    def of(cls, url: str) -> Archive | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return None  # https:// and file:// archives do not go through the proxy
        path = posixpath.normpath(urllib.parse.unquote(parts.path or "/"))
        return cls(parts.hostname.lower(), parts.port or 80, "" if path in ("/", "//") else path)

    def allows(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port or 80
        except ValueError:
            return False
        if parts.scheme != "http" or (parts.hostname or "").lower() != self.host or port != self.port:
            return False
        path = posixpath.normpath(urllib.parse.unquote(parts.path or "/"))
        return path == self.path or path.startswith(self.path + "/")


def immutable(path: str) -> bool:
    """Whether what a URL path names never changes: a package in the pool, an index by its hash."""
    return "/pool/" in path or "/by-hash/" in path


@dataclass
class Session:
    """What one apt run (one mmdebstrap) got through the proxy."""

    url: str = ""  # the proxy, as apt's http_proxy
    from_store: int = 0  # bytes served from the store
    downloaded: int = 0  # bytes fetched from the network
    files_from_store: int = 0
    files_downloaded: int = 0
    fetched: list[str] = field(default_factory=list)  # store paths this session fetched (kept on success)
    missing: list[str] = field(default_factory=list)  # URLs it could not serve (offline, not in the store)

    def summary(self) -> str:
        mib = 2**20
        return (
            f"Debian packages and indexes: {self.files_from_store} from the cache ({self.from_store / mib:.0f} MiB), "
            f"{self.files_downloaded} downloaded ({self.downloaded / mib:.0f} MiB)"
        )

    def facts(self) -> dict[str, int]:
        """What a stage records of it (info.json, the manifest)."""
        return {
            "apt_from_cache_bytes": self.from_store,
            "apt_downloaded_bytes": self.downloaded,
            "apt_files_from_cache": self.files_from_store,
            "apt_files_downloaded": self.files_downloaded,
        }


class DebCache:
    """The store of Debian archive files under `root`, shared by concurrent sessions (one per apt run)."""

    def __init__(self, root: Path, *, offline: bool = False, timeout: float = 60.0) -> None:
        self.root = root
        self.offline = offline
        self._upstream = Upstream(timeout)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # Files fetched by sessions still running, not yet kept for good: how many sessions hold each. Another
        # session gets them from the store too (its apt checks them as well), and they go only when none keeps them.
        self._pending: dict[str, int] = {}

    def file(self, rel: str) -> Path:
        return self.root / rel

    def _lock(self, rel: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(rel, threading.Lock())

    @contextlib.contextmanager
    def session(self, archives: Sequence[str]) -> Iterator[Session]:
        """A proxy for one apt run, on 127.0.0.1 (its URL in the session), that fetches only from `archives`
        (URLs; a file's URL must lie under one). When the block succeeds, what it fetched is kept for good;
        when it fails, dropped (apt may have refused it)."""
        current = Session()
        server = _ProxyServer(("127.0.0.1", 0), _Handler)
        server.cache, server.current = self, current
        server.archives = [archive for url in archives if (archive := Archive.of(url)) is not None]
        current.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        try:
            try:
                yield current
            finally:
                server.shutdown()
                server.server_close()
                thread.join(10)
        except Exception as exc:
            self._drop(current.fetched)
            if current.missing:
                raise BuildError(self._offline_message(current.missing)) from exc
            raise
        except BaseException:
            self._drop(current.fetched)
            raise
        self._keep(current.fetched)
        note(current.summary())

    def _offline_message(self, missing: list[str]) -> str:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return (
            f"--offline: {len(missing)} file(s) of the Debian archive are not in the package cache {self.root} "
            f"({shown}); run the build once without --offline to fill it"
        )

    def _keep(self, fetched: list[str]) -> None:
        """The session's apt run succeeded: it checked every file it fetched, which the store now keeps."""
        for rel in fetched:
            path = self.file(rel)
            with self._lock(rel):
                self._release(rel)
                if path.is_file() and not path.with_name(path.name + DIGEST).exists():
                    _write_digest(path, sha256_file(path))

    def _drop(self, fetched: list[str]) -> None:
        """The session's apt run failed: its files go, unless kept meanwhile or held by a session still running."""
        for rel in fetched:
            path = self.file(rel)
            with self._lock(rel):
                if self._release(rel) == 0 and not path.with_name(path.name + DIGEST).exists():
                    path.unlink(missing_ok=True)

    def _hold(self, rel: str, current: Session) -> None:
        with self._locks_lock:
            self._pending[rel] = self._pending.get(rel, 0) + 1
        current.fetched.append(rel)

    def _release(self, rel: str) -> int:
        with self._locks_lock:
            left = self._pending.get(rel, 1) - 1
            if left > 0:
                self._pending[rel] = left
            else:
                self._pending.pop(rel, None)
            return max(left, 0)

    def kept(self, rel: str) -> Path | None:
        """The store's file for `rel` if it was kept for good and is intact (a damaged one is removed)."""
        path = self.file(rel)
        digest_file = path.with_name(path.name + DIGEST)
        try:
            want = digest_file.read_text().strip()
        except OSError:
            return None
        try:
            if sha256_file(path) == want:
                os.utime(path)  # its last use, for `cache prune --older-than`
                return path
        except OSError:
            pass
        log.warning("warning: package cache: %s is damaged; fetching it again", path)
        path.unlink(missing_ok=True)
        digest_file.unlink(missing_ok=True)
        return None

    def get(self, url: str, current: Session) -> Path | None:
        """The file to answer `url` with (from the store, or fetched into it), or None when there is none."""
        rel = store_path(url)
        if rel is None:
            return None
        path = self.file(rel)
        if not immutable(urllib.parse.urlsplit(url).path):
            return self._get_mutable(url, rel, path, current)
        with self._lock(rel):
            found = self.kept(rel)
            if found is None and rel in self._pending and path.is_file():
                found = path  # fetched by a session still running
                if rel not in current.fetched:
                    self._hold(rel, current)
            if found is not None:
                current.from_store += found.stat().st_size
                current.files_from_store += 1
                return found
            if self.offline:
                current.missing.append(url)
                return None
            fetched = self._fetch(url, path)
            if fetched is not None:
                self._hold(rel, current)
                current.downloaded += fetched.stat().st_size
                current.files_downloaded += 1
            return fetched

    def _get_mutable(self, url: str, rel: str, path: Path, current: Session) -> Path | None:
        """An index that changes (InRelease): fetched while online and kept for offline use."""
        with self._lock(rel):
            if self.offline:
                if path.is_file():
                    current.from_store += path.stat().st_size
                    current.files_from_store += 1
                    return path
                current.missing.append(url)
                return None
            fetched = self._fetch(url, path)
            if fetched is not None:
                current.downloaded += fetched.stat().st_size
                current.files_downloaded += 1
            return fetched

    def _fetch(self, url: str, path: Path) -> Path | None:
        """Download `url` into `path` (whole, or not at all); None when the server has no such file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                found = self._upstream.get(url, out)
            if not found:
                return None
            os.chmod(name, 0o644)  # readable by whoever saves the cache (a CI cache action runs unprivileged)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)
        return path


class Upstream:
    """Connections to the archive's servers, kept open and reused as apt keeps its own: one name lookup and one
    TCP handshake per server, not per file (a lookup that loses a packet costs the resolver's 5 s timeout, and a
    build fetches hundreds of files). Through the user's own proxy when the environment names one."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, out: BinaryIO, redirects: int = 5) -> bool:
        """Write the body of `url` to `out`; False when the server has no such file (404, 410)."""
        parts = urllib.parse.urlsplit(url)
        proxy = _proxy_for(url)
        where = urllib.parse.urlsplit(proxy) if proxy else parts
        server = (where.hostname or "", where.port or 80)
        target = url if proxy else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "User-Agent": f"xenlive/{__version__} (apt cache)"}
        for attempt in range(2):
            connection = self._take(server)
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException):
                connection.close()
                if attempt:
                    raise
                continue  # a kept connection the server closed meanwhile: once more on a new one
            try:
                if response.status in (301, 302, 303, 307, 308) and redirects:
                    location = urllib.parse.urljoin(url, response.getheader("Location") or "")
                    response.read()
                    self._give(server, connection, response)
                    return self.get(location, out, redirects - 1)
                if response.status in (404, 410):
                    response.read()
                    self._give(server, connection, response)
                    return False
                if response.status != 200:
                    raise OSError(f"HTTP {response.status} {response.reason}")
                shutil.copyfileobj(response, out, CHUNK)
            except BaseException:
                connection.close()
                raise
            self._give(server, connection, response)
            return True
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _take(self, server: tuple[str, int]) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(server)
            if idle:
                return idle.pop()
        return http.client.HTTPConnection(server[0], server[1], timeout=self.timeout)

    def _give(
        self, server: tuple[str, int], connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        if response.will_close:
            connection.close()
            return
        with self._lock:
            self._idle.setdefault(server, []).append(connection)


def _proxy_for(url: str) -> str | None:
    """The user's own HTTP proxy for `url` (http_proxy, no_proxy), if any."""
    proxy = urllib.request.getproxies().get("http")
    host = urllib.parse.urlsplit(url).hostname or ""
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def store_path(url: str) -> str | None:
    """Where a URL's file lives in the store: HOST/PATH, or None for a URL that names no file we keep."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.hostname in (".", "..") or parts.query:
        return None
    if parts.path.endswith("/"):
        return None  # a directory listing, not a file
    path = posixpath.normpath(urllib.parse.unquote(parts.path))  # "/a/../../b" is "/b": never above the host
    if not path.startswith("/") or path == "/" or path.endswith(DIGEST):
        return None
    host = parts.hostname + (f"_{parts.port}" if parts.port else "")
    return f"{host}{path}"


def _write_digest(path: Path, digest: str) -> None:
    tmp = path.with_name(f".{path.name}{DIGEST}.tmp")
    tmp.write_text(digest + "\n")
    os.replace(tmp, path.with_name(path.name + DIGEST))


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    cache: DebCache
    current: Session
    archives: list[Archive]


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET http://HOST/PATH, as apt asks a proxy: answered from the store or the network, always whole (200)."""

    protocol_version = "HTTP/1.1"  # keep-alive: apt sends many requests on one connection
    # Headers and body go out in separate writes: with Nagle's algorithm, the body waited for the client's
    # delayed ACK of the headers, some 200 ms per file (measured: 20 packages in 5.2 s, 0.1 s without it).
    disable_nagle_algorithm = True
    server: _ProxyServer

    def do_GET(self) -> None:
        if not any(archive.allows(self.path) for archive in self.server.archives):
            self._fail(403, f"{self.path}: xenlive's package cache fetches only from the build's archives")
            return
        try:
            found = self.server.cache.get(self.path, self.server.current)
        except (OSError, http.client.HTTPException) as exc:
            self._fail(502, f"cannot fetch {self.path}: {exc}")
            return
        if found is None:
            self._fail(404, f"{self.path}: not found")
            return
        try:
            f = found.open("rb")
        except OSError as exc:  # dropped meanwhile by a session that failed: apt retries
            self._fail(503, f"{self.path}: {exc}")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            shutil.copyfileobj(f, self.wfile, CHUNK)

    def _fail(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("apt cache: " + format, *args)
