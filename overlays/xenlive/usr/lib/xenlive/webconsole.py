#!/usr/bin/python3
"""xenlive web console: the domains of this Xen host in a browser, and start/shutdown/reboot/destroy.

Runs in dom0 as xenlive-web.service, with Python's standard library only (dom0 has Debian's python3
because Xen's tools need it). Reading is open; every action needs the per-boot token, which this
program writes to /run/xenlive/web-token and announces on dom0's console as

    xenlive-status: web up port=8080 token=TOKEN

Where the data comes from:
  - `xl list` and `xl uptime` (cached for CACHE_SECONDS, so many browsers cost no more processes);
  - the configured guests in /etc/xenlive/guests.tsv (a stopped guest is listed and can be started; one
    the build left out, its skip column not "-", is listed as "not on this ISO" with the reason, and no action);
  - IP addresses from dnsmasq's leases, matched by host name, else by the MAC in the guest's xl config;
  - console output from xenconsoled's logs /var/log/xen/console/guest-NAME.log.
Actions run `xenlive-boot start NAME` or `xl shutdown|reboot|destroy NAME`: argv lists with a
timeout, never a shell, and NAME is always one of the listed domains.

Endpoints: GET / (the page), GET /static/FILE, GET /api/domains (JSON), GET /api/console/NAME (JSON),
GET /console/NAME (HTML), POST /api/action (form: action, name, token; JSON answer).

Who is answered: only requests whose Host header names dom0 (localhost, 127.0.0.1, [::1], its host
name, HOSTNAME.DOMAIN, or the address the request came in on; any port) get an answer with data, so
that a web page whose DNS name is rebound to dom0's address cannot read it (421 otherwise). A client
has REQUEST_SECONDS to send a whole request, and at most MAX_CLIENTS connections are served at once;
more wait in the listen queue, and while they do, connections are not kept alive.
"""

from __future__ import annotations

import argparse
import hmac
import html
import io
import ipaddress
import json
import os
import re
import secrets
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DOM0 = "Domain-0"
ACTIONS = ("start", "shutdown", "reboot", "destroy")
CACHE_SECONDS = 1.0
MAX_BODY = 4096  # bytes of a POST body; anything larger is refused unread
SOCKET_TIMEOUT = 10.0  # seconds a client may stay silent mid-request, or take to accept an answer
REQUEST_SECONDS = 10.0  # seconds a client has to send a whole request (line, headers and body)
MAX_CLIENTS = 32  # connections served at once (one thread each); more wait in the listen queue
LISTEN_BACKLOG = 128  # connections the kernel queues before the console accepts them
LIST_TIMEOUT = 10.0  # seconds for `xl list` / `xl uptime`
ACTION_TIMEOUTS = {"start": 180.0, "shutdown": 30.0, "reboot": 30.0, "destroy": 30.0}
CONSOLE_TAIL_BYTES = 16384
CONSOLE_TAIL_LINES = 60
STATIC_FILES = {  # the only files served from the static directory: name -> content type
    "webconsole.js": "text/javascript; charset=utf-8",
    "webconsole.css": "text/css; charset=utf-8",
}
# Terminal escapes, in their 7-bit (ESC ...) and C1 forms (CSI U+009B, OSC U+009D ... ST U+009C).
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\^_=>])"
    r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c|\x1b\\)"
)
# C0 controls but tab and line feed, DEL, C1 controls, and the bidirectional controls (U+061C, U+200E,
# U+200F, U+202A-U+202E, U+2066-U+2069), which would reorder the text around them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UPTIME = re.compile(r"(?P<name>.+?)\s+(?P<id>\d+)\s+(?:(?P<days>\d+) days?,\s+)?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)")
_MAC = re.compile(r"\bmac=([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")
_HOST = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")
_SETTING = re.compile(r"(?P<key>[A-Z_]+)=(?P<value>[^\s#]*)")
LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1"})


# --- what the toolstack says ---------------------------------------------------------------------


@dataclass
class Domain:
    name: str
    state: str  # running, paused, shutting down, crashed, dying, stopped, unknown
    domid: int | None = None
    flags: str = ""  # xl's six state letters, e.g. "-b----"
    memory: int | None = None  # MiB
    vcpus: int | None = None
    uptime: int | None = None  # seconds
    ip: str = "-"
    configured: bool = False  # listed in guests.tsv: it can be started when stopped
    left_out: str = ""  # why the ISO has no image for it (guests.tsv's skip column): it cannot be started

    @property
    def actions(self) -> list[str]:
        if self.name == DOM0 or self.left_out:
            return []
        if self.domid is None:
            return ["start"] if self.configured and self.state == "stopped" else []
        return ["shutdown", "reboot", "destroy"]


NOT_ON_ISO = "not on this ISO"  # the state of a guest the build left out (its image could not be made)


def state_from_flags(flags: str) -> str:
    """A word for xl's state letters (r b p s <reason> d); a blocked (idle) domain is running."""
    if len(flags) != 6:
        return "unknown"
    if flags[5] == "d":
        return "dying"
    if flags[4] == "c":
        return "crashed"
    if flags[3] == "s":
        return "shut down"
    if flags[2] == "p":
        return "paused"
    return "running"


def parse_xl_list(text: str) -> list[Domain]:
    """Domains from `xl list`: `NAME ID MEM VCPUS FLAGS TIME`, the name padded (and possibly wider)."""
    domains = []
    for line in text.splitlines()[1:]:
        fields = line.rsplit(None, 5)
        if len(fields) != 6:
            continue
        name, domid, memory, vcpus, flags, _cpu_time = fields
        if not (domid.isdigit() and memory.isdigit() and vcpus.isdigit()):
            continue
        domains.append(
            Domain(
                name=name.strip(),
                state=state_from_flags(flags),
                domid=int(domid),
                flags=flags,
                memory=int(memory),
                vcpus=int(vcpus),
            )
        )
    return domains


def parse_xl_uptime(text: str) -> dict[str, int]:
    """Seconds up per domain name from `xl uptime` (`NAME ID [D day[s], ]HH:MM:SS`)."""
    uptimes = {}
    for line in text.splitlines()[1:]:
        if found := _UPTIME.fullmatch(line.strip()):
            days = int(found["days"] or 0)
            uptimes[found["name"]] = ((days * 24 + int(found["h"])) * 60 + int(found["m"])) * 60 + int(found["s"])
    return uptimes


def parse_leases(text: str, now: float) -> list[tuple[str, str, str]]:
    """Unexpired (mac, ip, hostname) from a dnsmasq leases file, the newest lease last.

    Each line: `EXPIRY MAC IP HOSTNAME|* CLIENT-ID|*`; expiry 0 means an infinite lease.
    """
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        expiry = int(fields[0])
        if expiry and expiry < now:
            continue
        leases.append((expiry or float("inf"), fields[1].lower(), fields[2], fields[3]))
    leases.sort(key=lambda lease: lease[0])
    return [(mac, ip, host) for _expiry, mac, ip, host in leases]


def parse_guests_tsv(text: str, columns: Sequence[str] = ("name",)) -> list[str]:
    """Guest names from the guest table (tab-separated, in the contract's GUEST_COLUMNS)."""
    return list(parse_guest_rows(text, columns))


def parse_guest_rows(text: str, columns: Sequence[str] = ("name",)) -> dict[str, str]:
    """Guest name -> why the ISO has no image for it ("" when it has one: the skip column is "-" or absent),
    from the guest table, in its order."""
    column = list(columns).index("name")
    skip = list(columns).index("skip") if "skip" in columns else None
    rows = {}
    for line in text.splitlines():
        fields = line.split("\t")
        name = fields[column].strip() if len(fields) > column else ""
        if name and not line.startswith("#") and NAME_RE.fullmatch(name):
            why = fields[skip].strip() if skip is not None and len(fields) > skip else ""
            rows[name] = "" if why in ("", "-") else why
    return rows


_CONTRACT_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=(\$\{XENLIVE_ROOT-\})?'([^']*)'")


def read_contract(path: Path, root: str = "") -> dict[str, str]:
    """dom0's runtime contract (contract.sh, generated from xenlive/contract.py): NAME='value' lines, paths
    written ${XENLIVE_ROOT-}'/path' put under `root`. The same rules as xenlive.contract.parse_shell."""
    values = {}
    for line in path.read_text().splitlines():
        if found := _CONTRACT_LINE.fullmatch(line):
            values[found[1]] = (root + found[3]) if found[2] else found[3]
    return values


def parse_settings(text: str) -> dict[str, str]:
    """KEY=VALUE lines of xenlive-boot's settings (a file bash sources; values are single words)."""
    return {found["key"]: found["value"] for line in text.splitlines() if (found := _SETTING.match(line.strip()))}


def host_of(header: str) -> str | None:
    """The host a Host header names, lower case, without port or trailing dot; None if it is not one."""
    found = _HOST.fullmatch(header.strip().lower())
    if found is None:
        return None
    return canonical_host(found["ipv6"] or found["name"])


def canonical_host(host: str) -> str:
    """A name without its trailing dot, an address in its one usual spelling (::ffff:10.0.2.15 is 10.0.2.15)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.rstrip(".")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def clean_console(raw: bytes) -> str:
    """The last lines of a console log as a terminal would show them: no escapes, no control characters."""
    text = raw.decode("utf-8", errors="replace")
    lines = []
    for line in text.split("\n"):
        segments = [s for s in line.split("\r") if s]
        lines.append(_CONTROL.sub("", _ANSI.sub("", segments[-1] if segments else "")))
    return "\n".join(lines[-CONSOLE_TAIL_LINES:]).strip("\n")


# --- the host: toolstack, files, actions ---------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Every command and file the console uses (from dom0's runtime contract: `from_contract`); tests point
    them at fakes."""

    xl: str = "/usr/sbin/xl"
    xenlive_boot: str = "/usr/lib/xenlive/xenlive-boot"
    guests_tsv: Path = Path("/etc/xenlive/guests.tsv")
    xl_configs: Path = Path("/etc/xen/xenlive")
    leases: Path = Path("/var/lib/misc/dnsmasq.leases")
    console_logs: Path = Path("/var/log/xen/console")
    token_file: Path = Path("/run/xenlive/web-token")
    console: Path = Path("/dev/hvc0")
    settings: Path = Path("/etc/xenlive/xenlive.conf")  # xenlive-boot's settings: DOMAIN=...
    static: Path = Path(__file__).resolve().parent / "web"
    guest_columns: tuple[str, ...] = ("name", "image", "type", "autostart", "skip")

    @classmethod
    def from_contract(cls, contract: Mapping[str, str]) -> Paths:
        """The paths dom0's runtime contract names (read_contract); the rest as by default."""
        return cls(
            xenlive_boot=f"{contract['LIB']}/xenlive-boot",
            guests_tsv=Path(contract["GUESTS_TSV"]),
            xl_configs=Path(contract["XL_CONFIGS"]),
            console_logs=Path(contract["CONSOLE_LOGS"]),
            token_file=Path(contract["WEB_TOKEN"]),
            console=Path(contract["CONSOLE"]),
            settings=Path(contract["SETTINGS"]),
            guest_columns=tuple(contract["GUEST_COLUMNS"].split()),
        )


@dataclass
class ActionResult:
    ok: bool
    message: str


class CommandFailed(Exception):
    pass


def run_command(argv: Sequence[str], timeout: float) -> str:
    """Run argv (never a shell) with stdin closed; its stdout, or CommandFailed saying why."""
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{' '.join(argv)}: no answer after {timeout:.0f} s") from None
    except OSError as e:
        raise CommandFailed(f"{argv[0]}: {e.strerror}") from None
    if done.returncode != 0:
        detail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise CommandFailed(f"{' '.join(argv)} exited with {done.returncode}: {detail}".rstrip(": "))
    return done.stdout


@dataclass
class Host:
    """What the web console knows of this Xen host, and the actions it may take on it."""

    paths: Paths = field(default_factory=Paths)
    cache_seconds: float = CACHE_SECONDS
    run: Callable[[Sequence[str], float], str] = run_command
    _cache: tuple[float, list[Domain], str] | None = field(default=None, init=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _busy: set[str] = field(default_factory=set, init=False)
    _busy_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def domains(self) -> tuple[list[Domain], str]:
        """Every domain and configured guest, and an error text when the toolstack did not answer.

        One `xl list` + `xl uptime` per CACHE_SECONDS at most, whatever the number of clients.
        """
        with self._cache_lock:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] >= self.cache_seconds:
                domains, error = self._read_domains()
                self._cache = (time.monotonic(), domains, error)
            _at, domains, error = self._cache
        return [Domain(**asdict(d)) for d in domains], error

    def forget(self) -> None:
        with self._cache_lock:
            self._cache = None

    def _read_domains(self) -> tuple[list[Domain], str]:
        error = ""
        try:
            running = parse_xl_list(self.run([self.paths.xl, "list"], LIST_TIMEOUT))
            uptimes = parse_xl_uptime(self.run([self.paths.xl, "uptime"], LIST_TIMEOUT))
        except CommandFailed as e:
            running, uptimes, error = [], {}, str(e)
        configured = self.configured_rows()
        by_name = {d.name: d for d in running}
        for name, left_out in configured.items():
            if name not in by_name:
                state = NOT_ON_ISO if left_out else "unknown" if error else "stopped"
                by_name[name] = Domain(name=name, state=state, left_out=left_out)
            by_name[name].configured = True
        leases = self._leases()
        for domain in by_name.values():
            domain.uptime = uptimes.get(domain.name) if domain.domid is not None else None
            domain.ip = self._ip(domain.name, leases) if domain.domid is not None else "-"
        order = {name: i for i, name in enumerate(configured)}
        domains = sorted(by_name.values(), key=lambda d: (d.name != DOM0, order.get(d.name, len(order)), d.name))
        return domains, error

    def configured_guests(self) -> list[str]:
        return list(self.configured_rows())

    def configured_rows(self) -> dict[str, str]:
        """The guest table's guests -> why each left-out one is not on the ISO ("" for the others)."""
        try:
            return parse_guest_rows(self.paths.guests_tsv.read_text(errors="replace"), self.paths.guest_columns)
        except OSError:
            return {}

    def _leases(self) -> list[tuple[str, str, str]]:
        try:
            return parse_leases(self.paths.leases.read_text(errors="replace"), time.time())
        except OSError:
            return []

    def _ip(self, name: str, leases: list[tuple[str, str, str]]) -> str:
        if name == DOM0 or not leases:
            return "-"
        for _mac, ip, host in reversed(leases):
            if host == name:
                return ip
        mac = self._mac(name)
        for lease_mac, ip, _host in reversed(leases):
            if mac and lease_mac == mac:
                return ip
        return "-"

    def _mac(self, name: str) -> str | None:
        """The MAC address of the guest's first vif, from its xl config (cheaper than `xl network-list`)."""
        try:
            text = (self.paths.xl_configs / f"{name}.cfg").read_text(errors="replace")
        except OSError:
            return None
        found = _MAC.search(text)
        return found[1].lower() if found else None

    def find(self, name: str) -> Domain | None:
        """The domain or configured guest called name; name must already match NAME_RE."""
        domains, _error = self.domains()
        return next((d for d in domains if d.name == name), None)

    def console_tail(self, name: str) -> str:
        """The end of the guest's console log; name must be a listed domain (it becomes part of a path)."""
        path = self.paths.console_logs / f"guest-{name}.log"
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - CONSOLE_TAIL_BYTES))
                raw = log.read(CONSOLE_TAIL_BYTES)
        except OSError:
            return ""
        if size > CONSOLE_TAIL_BYTES:
            raw = raw.split(b"\n", 1)[-1]  # drop the partial first line
        return clean_console(raw)

    def act(self, action: str, domain: Domain) -> ActionResult:
        """Run one action on a listed domain; one action at a time per domain."""
        if action not in domain.actions:
            return ActionResult(False, f"cannot {action} {domain.name} while it is {domain.state}")
        with self._busy_lock:
            if domain.name in self._busy:
                return ActionResult(False, f"another action on {domain.name} is still running")
            self._busy.add(domain.name)
        try:
            if action == "start":
                argv = [self.paths.xenlive_boot, "start", domain.name]
            else:
                argv = [self.paths.xl, action, domain.name]
            self.run(argv, ACTION_TIMEOUTS[action])
            return ActionResult(True, f"{action} {domain.name}: done")
        except CommandFailed as e:
            return ActionResult(False, str(e))
        finally:
            with self._busy_lock:
                self._busy.discard(domain.name)
            self.forget()


# --- the token and the console -------------------------------------------------------------------


def load_or_make_token(path: Path) -> str:
    """The per-boot token: kept in /run (a tmpfs), so a restarted service keeps the token it announced."""
    try:
        token = path.read_text().strip()
        if re.fullmatch(r"[A-Za-z0-9_-]{32,}", token) and path.stat().st_mode & 0o077 == 0:
            return token
    except OSError:
        pass
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(token + "\n")
    return token


class Announcer:
    """Lines for dom0's console (hvc0, which reaches the serial port) and for the journal (stdout)."""

    def __init__(self, console: Path) -> None:
        self.console = console
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            try:  # never created: without a console (e.g. on a build host) the line goes to stdout only
                fd = os.open(self.console, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY)
                with os.fdopen(fd, "w") as out:
                    out.write(line + "\n")
            except OSError:
                pass
            print(line, flush=True)


# --- HTTP ----------------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebConsole(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG
    max_clients = MAX_CLIENTS

    def __init__(
        self, address: tuple[str, int], host: Host, token: str, announce: Callable[[str], None] = print
    ) -> None:
        self.host = host
        self.token = token
        self.announce = announce
        self.page = string.Template((host.paths.static / "index.html").read_text())
        try:
            self.domain = parse_settings(host.paths.settings.read_text(errors="replace")).get("DOMAIN", "").lower()
        except OSError:
            self.domain = ""
        self.slots = threading.BoundedSemaphore(self.max_clients)
        self.crowded = False  # a connection is waiting for a thread
        super().__init__(address, Handler)

    def own_hosts(self, local_address: str) -> frozenset[str]:
        """What a Host header may name: localhost, dom0's names, and the address a request came in on."""
        name = socket.gethostname().lower()
        names = {name, f"{name}.{self.domain}"} if self.domain else {name}
        return LOCALHOST | names | {canonical_host(local_address)}

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, at most max_clients at once. The next connection waits (and those
        behind it in the listen queue) until one is free: while it waits, every connection closes after
        its current answer instead of being kept alive, and an idle one lasts at most REQUEST_SECONDS."""
        if not self.slots.acquire(blocking=False):
            self.crowded = True
            self.slots.acquire()
            self.crowded = False
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Deadline(io.RawIOBase):
    """A connection's input, readable only until the handler's deadline: a client that trickles its
    request a byte at a time cannot hold a thread for longer than REQUEST_SECONDS."""

    def __init__(self, connection: socket.socket, handler: Handler) -> None:
        self.connection = connection
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not complete in time")
        self.connection.settimeout(min(left, self.handler.timeout))
        try:
            return self.connection.recv_into(buffer)
        finally:
            self.connection.settimeout(self.handler.timeout)  # for the answer


class Handler(BaseHTTPRequestHandler):
    server: WebConsole
    timeout = SOCKET_TIMEOUT
    request_seconds = REQUEST_SECONDS
    deadline = 0.0
    server_version = "xenlive-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so that even an unparseable request line gets a status line

    # -- plumbing

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_Deadline(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.request_seconds  # includes waiting for a kept-alive one
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The request line and headers; then only a request for dom0 itself goes on (DNS rebinding)."""
        if not super().parse_request():
            return False
        given = self.headers.get_all("Host") or []
        host = host_of(given[0]) if len(given) == 1 else None
        if host is None or host not in self.server.own_hosts(str(self.connection.getsockname()[0])):
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "use dom0's name or address in the URL")
            return False
        # A body is read whole (a POST's form) or refused with the connection closed: a body left unread
        # would be read as the next request on the connection, one a proxy in front never saw.
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            self.send_error(HTTPStatus.BAD_REQUEST, "one Content-Length only")
            return False
        if self.command in ("GET", "HEAD") and (self.headers.get("Transfer-Encoding") or lengths not in ([], ["0"])):
            self.send_error(HTTPStatus.BAD_REQUEST, f"a {self.command} request has no body")
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per action is logged instead of one per request

    def send_body(self, status: HTTPStatus, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        if close or self.server.crowded:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: HTTPStatus, data: Mapping[str, Any], close: bool = False) -> None:
        self.send_body(status, json.dumps(data).encode(), "application/json", close)

    def send_html(self, status: HTTPStatus, text: str) -> None:
        self.send_body(status, text.encode(), "text/html; charset=utf-8")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method, ...) as JSON too."""
        self.send_json(HTTPStatus(code), {"ok": False, "error": message or HTTPStatus(code).phrase}, close=True)

    @contextmanager
    def answering(self) -> Iterator[None]:
        try:
            yield
        except Refused as e:
            self.send_json(e.status, {"ok": False, "error": e.message}, close=e.status >= 400)

    @property
    def client(self) -> str:
        return str(self.client_address[0])

    # -- GET: reading only

    def do_GET(self) -> None:
        with self.answering():
            path = request_path(self.path)
            if path == "/":
                self.send_html(HTTPStatus.OK, self.render_page())
            elif path.startswith("/static/"):
                self.send_static(path.removeprefix("/static/"))
            elif path == "/api/domains":
                domains, error = self.server.host.domains()
                self.send_json(HTTPStatus.OK, {"domains": [self.domain_json(d) for d in domains], "error": error})
            elif path.startswith("/api/console/"):
                domain = self.listed_domain(path.removeprefix("/api/console/"))
                tail = self.server.host.console_tail(domain.name)
                self.send_json(HTTPStatus.OK, {"name": domain.name, "console": tail})
            elif path.startswith("/console/"):
                domain = self.listed_domain(path.removeprefix("/console/"))
                self.send_html(HTTPStatus.OK, self.render_console(domain))
            elif path == "/api/action":
                raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, "actions need POST")
            else:
                raise Refused(HTTPStatus.NOT_FOUND, "no such page")

    def do_HEAD(self) -> None:
        self.do_GET()

    def send_static(self, name: str) -> None:
        if name not in STATIC_FILES:  # a fixed list: no path from the request reaches the file system
            raise Refused(HTTPStatus.NOT_FOUND, "no such file")
        body = (self.server.host.paths.static / name).read_bytes()
        self.send_body(HTTPStatus.OK, body, STATIC_FILES[name])

    def listed_domain(self, name: str) -> Domain:
        if not NAME_RE.fullmatch(name):
            raise Refused(HTTPStatus.BAD_REQUEST, "invalid domain name")
        domain = self.server.host.find(name)
        if domain is None:
            raise Refused(HTTPStatus.NOT_FOUND, f"no domain called {name}")
        return domain

    @staticmethod
    def domain_json(domain: Domain) -> dict[str, Any]:
        return {**asdict(domain), "uptime_text": format_uptime(domain.uptime), "actions": domain.actions}

    def render_page(self) -> str:
        domains, error = self.server.host.domains()
        rows = "\n".join(render_row(d) for d in domains)
        return self.server.page.substitute(rows=rows, error=html.escape(error))

    def render_console(self, domain: Domain) -> str:
        name = html.escape(domain.name)
        tail = html.escape(self.server.host.console_tail(domain.name))
        return (
            f'<!doctype html><meta charset="utf-8"><title>{name}: console</title>'
            f'<link rel="stylesheet" href="/static/webconsole.css">'
            f'<p><a href="/">all domains</a></p><h1>{name}: console</h1><pre class="console">{tail}</pre>'
        )

    # -- POST: the only way to act

    def do_POST(self) -> None:
        with self.answering():
            if request_path(self.path) != "/api/action":
                raise Refused(HTTPStatus.NOT_FOUND, "no such page")
            self.check_same_origin()
            form = self.read_form()
            action, name, token = form.get("action", ""), form.get("name", ""), form.get("token", "")
            if not hmac.compare_digest(token.encode(), self.server.token.encode()):
                # Journal only, and only validated words: request data never reaches dom0's console.
                shown = f"{action if action in ACTIONS else '?'} {name if NAME_RE.fullmatch(name) else '?'}"
                print(f"xenlive-web: {shown} by {self.client}: refused, missing or wrong token", flush=True)
                raise Refused(HTTPStatus.FORBIDDEN, "refused: missing or wrong token")
            if action not in ACTIONS:
                raise Refused(HTTPStatus.BAD_REQUEST, f"unknown action; one of {', '.join(ACTIONS)}")
            if not NAME_RE.fullmatch(name):
                raise Refused(HTTPStatus.BAD_REQUEST, "invalid domain name")
            if name == DOM0:
                raise Refused(HTTPStatus.FORBIDDEN, f"{DOM0} cannot be acted on here")
            domain = self.server.host.find(name)
            if domain is None:
                raise Refused(HTTPStatus.NOT_FOUND, f"no domain called {name}")
            if action not in domain.actions:
                raise Refused(HTTPStatus.CONFLICT, f"cannot {action} {name} while it is {domain.state}")
            result = self.server.host.act(action, domain)
            verdict = "ok" if result.ok else "failed"
            self.server.announce(f"xenlive-web: {action} {name} by {self.client}: {verdict}")
            if not result.ok:
                raise Refused(HTTPStatus.INTERNAL_SERVER_ERROR, result.message)
            self.send_json(HTTPStatus.OK, {"ok": True, "message": result.message})

    def check_same_origin(self) -> None:
        """Refuse requests a browser sends on behalf of another site (CSRF)."""
        if self.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise Refused(HTTPStatus.FORBIDDEN, "refused: cross-site request")
        host = (self.headers.get("Host") or "").lower()
        for header in ("Origin", "Referer"):
            value = self.headers.get(header)
            if value is None:
                continue
            origin = urlsplit(value)
            if not host or origin.scheme != "http" or origin.netloc.lower() != host:
                raise Refused(HTTPStatus.FORBIDDEN, f"refused: {header} is not this site")
            break  # Origin decides when both are present

    def read_form(self) -> dict[str, str]:
        if self.headers.get("Transfer-Encoding"):
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not chunks")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        if not (length_text.isascii() and length_text.isdigit()):  # "²" is a digit to isdigit(), not to int()
            raise Refused(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the form as application/x-www-form-urlencoded")
        body = self.rfile.read(length)
        if len(body) != length:
            raise Refused(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
        try:
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=8, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise Refused(HTTPStatus.BAD_REQUEST, "malformed form") from None
        if any(len(values) != 1 for values in fields.values()):
            raise Refused(HTTPStatus.BAD_REQUEST, "malformed form: a field given twice")
        return {key: values[0] for key, values in fields.items()}

    # -- everything else

    def refuse_method(self) -> None:
        with self.answering():
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = refuse_method


def request_path(target: str) -> str:
    """The decoded path of a request target, without its query (which GET ignores)."""
    return unquote(target.split("?", 1)[0].split("#", 1)[0])


def format_uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def render_row(domain: Domain) -> str:
    """One table row of the page as first served; the script keeps it current (same markup)."""
    e = html.escape
    why = f' <span class="why">{e(domain.left_out)}</span>' if domain.left_out else ""
    cells = [
        e(domain.name),
        f'<span class="state state-{e(domain.state.replace(" ", "-"))}">{e(domain.state)}</span>{why}',
        "-" if domain.memory is None else f"{domain.memory} MiB",
        "-" if domain.vcpus is None else str(domain.vcpus),
        e(format_uptime(domain.uptime)),
        e(domain.ip),
    ]
    buttons = "".join(
        f'<button type="button" data-action="{a}" data-name="{e(domain.name)}">{a}</button>' for a in domain.actions
    )
    link = f'<a class="console-link" href="/console/{e(domain.name)}">console</a>'
    console = "" if domain.name == DOM0 or domain.left_out else link
    tds = "".join(f"<td>{c}</td>" for c in cells)
    actions = " ".join(domain.actions)
    tds += f'<td class="actions">{buttons} {console}</td>'
    return f'<tr data-name="{e(domain.name)}" data-actions="{actions}">{tds}</tr>'


# --- main ----------------------------------------------------------------------------------------


def default_paths() -> Paths:
    """The paths of dom0's runtime contract, under $XENLIVE_ROOT; built-in ones where it has no contract."""
    root = os.environ.get("XENLIVE_ROOT", "")
    contract = Path(f"{root}/usr/lib/xenlive/contract.sh")
    return Paths.from_contract(read_contract(contract, root)) if contract.is_file() else Paths()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    defaults = default_paths()
    p = argparse.ArgumentParser(description="xenlive web console for the domains of this Xen host")
    p.add_argument("--listen", default=env("XENLIVE_WEB_LISTEN", "0.0.0.0"), help="address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=int(env("XENLIVE_WEB_PORT", "8080")), help="port (default 8080)")
    p.add_argument("--xl", default=defaults.xl, help="xl command")
    p.add_argument("--xenlive-boot", default=defaults.xenlive_boot, help="runs `start NAME`")
    p.add_argument("--guests-tsv", type=Path, default=defaults.guests_tsv, help="configured guests")
    p.add_argument("--xl-configs", type=Path, default=defaults.xl_configs, help="directory of NAME.cfg")
    p.add_argument("--leases", type=Path, default=defaults.leases, help="dnsmasq leases file")
    p.add_argument("--console-logs", type=Path, default=defaults.console_logs, help="xenconsoled's log directory")
    p.add_argument("--token-file", type=Path, default=defaults.token_file, help="where the token is kept (0600)")
    p.add_argument("--console", type=Path, default=defaults.console, help="dom0's console for status lines")
    p.add_argument("--settings", type=Path, default=defaults.settings, help="xenlive-boot's settings (DOMAIN)")
    p.add_argument("--static", type=Path, default=defaults.static, help="directory of index.html and assets")
    return p.parse_args(argv)


def make_server(args: argparse.Namespace) -> WebConsole:
    paths = Paths(
        xl=args.xl,
        xenlive_boot=args.xenlive_boot,
        guests_tsv=args.guests_tsv,
        xl_configs=args.xl_configs,
        leases=args.leases,
        console_logs=args.console_logs,
        token_file=args.token_file,
        console=args.console,
        settings=args.settings,
        static=args.static,
        guest_columns=default_paths().guest_columns,
    )
    token = load_or_make_token(paths.token_file)
    return WebConsole((args.listen, args.port), Host(paths), token, Announcer(paths.console))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        server = make_server(args)
    except OSError as e:
        print(f"xenlive-status: web failed {e}", flush=True)
        return 1
    port = server.server_address[1]
    server.announce(f"xenlive-status: web up port={port} token={server.token}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
