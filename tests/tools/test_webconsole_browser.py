"""The web console in headless Chromium, on the build host, against a fake `xl`.

The screenshot is kept under pytest's tmp dir (path printed); XENLIVE_SCREENSHOT=PATH copies it there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.webconsole_fakes import make_fake_host, serve_webconsole

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()),
        reason="needs Debian's chromium and chromium-driver",
    ),
    pytest.mark.skipif(importlib.util.find_spec("selenium") is None, reason="needs selenium (the test extra)"),
]


def test_a_visitor_sees_the_guests_is_refused_without_the_token_and_shuts_one_down_with_it(tmp_path: Path) -> None:
    from tests.webconsole_browser import check_web_console

    host = make_fake_host(tmp_path / "dom0")
    screenshot = tmp_path / "webconsole.png"
    with serve_webconsole(host, cache_seconds=1.0) as console:
        try:
            check_web_console(
                console.url, console.token, guests=["web1", "web2"], shut_down="web2", screenshot=screenshot, timeout=20
            )
        finally:
            print(f"screenshot: {screenshot}")
            if target := os.environ.get("XENLIVE_SCREENSHOT"):
                shutil.copyfile(screenshot, target)

    assert host.actions() == [["shutdown", "web2"]]  # the refused attempt never reached xl
    assert [d["name"] for d in json.loads(host.state.read_text())["domains"]] == ["Domain-0", "web1"]
    assert screenshot.stat().st_size > 10_000
