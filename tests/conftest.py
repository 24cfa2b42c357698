"""Fixtures shared by the test layers: a scripted HTTP server, and a stage runner on a cache of the test's own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer, Handler, Server
from xenlive.builders import BUILDERS
from xenlive.cache import Cache
from xenlive.context import BuildContext, Dates
from xenlive.stages import StageRunner, config, dom0, grub, iso

EPOCH = 1700000000  # what the stages of a test build date their output by
# A version for every tool whose version keys a stage: tests need not ask the real tools.
STAND_IN_VERSIONS = {
    tool: "stand-in"
    for probes in (
        dom0.VERSIONS,
        config.VERSIONS,
        grub.VERSIONS,
        iso.VERSIONS,
        *(b.versions for b in BUILDERS.values()),
    )
    for tool in probes
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeServer()
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.fake = fake  # type: ignore[attr-defined]
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if "process_request" in t.name]


@pytest.fixture
def stage_runner(tmp_path: Path) -> Iterator[Callable[..., StageRunner]]:
    """Make a StageRunner on a cache under tmp_path (or the one named), dated EPOCH, with stand-in tool
    versions; every runner it made is closed afterwards (its cache too)."""
    opened: list[StageRunner] = []

    def make(cache_dir: Path | None = None) -> StageRunner:
        runner = StageRunner(
            Cache(cache_dir or tmp_path / "cache"), BuildContext(Dates(environment=EPOCH), STAND_IN_VERSIONS)
        )
        opened.append(runner)
        return runner

    yield make
    for runner in opened:
        runner.close()
