"""A real HTTP server on 127.0.0.1 whose answers each test scripts: bodies per path, cut connections,
stalls, ignored ranges, error statuses. The `server` fixture (tests/conftest.py) starts one per test."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = os.urandom(300_000)
HALF = len(BODY) // 2
ENDLESS = 64 << 20  # what an "endless" answer sends at most: enough to tell a bounded client from one that is not


@dataclass
class Route:
    body: bytes
    plan: list[str | int]  # behaviour of each request in turn; "ok" once the plan is used up


@dataclass
class Seen:
    path: str
    range: str | None


@dataclass
class FakeServer:
    """What the handler serves, per path, and every request it got."""

    base: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends the waits of "slow" handlers
    sent: dict[str, int] = field(default_factory=dict)  # bytes an "endless" answer sent, by path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, path: str, body: bytes = BODY, *plan: str | int) -> str:
        """Serve `body` at `path`. Behaviours: "ok", "cut" (half the body, then close), "ignore-range"
        (always 200), "slow-headers" / "slow-body" (stall before them), "endless" (the body again and again
        without a length, until the client goes or ENDLESS bytes are sent), or an HTTP status to answer with."""
        self.routes[path] = Route(body, list(plan))
        return self.url(path)

    def url(self, path: str) -> str:
        return self.base + path

    def next(self, path: str, range_header: str | None) -> tuple[Route | None, str | int]:
        with self.lock:
            self.requests.append(Seen(path, range_header))
            route = self.routes.get(path)
            if route is None:
                return None, 404
            return route, route.plan.pop(0) if route.plan else "ok"

    @property
    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


class Handler(BaseHTTPRequestHandler):
    timeout = 10  # a client that never sends its request does not keep the thread alive

    def do_GET(self) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        route, behaviour = fake.next(self.path, range_header)
        try:
            if route is None or isinstance(behaviour, int):
                self.send_error(404 if route is None else int(behaviour))
                return
            if behaviour == "slow-headers":
                fake.release.wait(10)
            if behaviour == "endless":
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent = 0
                while sent < ENDLESS and not fake.release.is_set():
                    self.wfile.write(route.body)
                    sent += len(route.body)
                with fake.lock:
                    fake.sent[self.path] = sent
                return
            body, start = route.body, 0
            if range_header and behaviour != "ignore-range":
                match = re.fullmatch(r"bytes=(\d+)-", range_header)
                assert match, range_header
                start = int(match.group(1))
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if behaviour == "slow-body":
                fake.release.wait(10)
            if behaviour == "cut":
                self.wfile.write(body[start : start + (len(body) - start) // 2])
                self.close_connection = True
                return
            self.wfile.write(body[start:])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins every handler thread
    block_on_close = True
