"""Which guest lines reach dom0's console (dom0.console_forwarding: until-ready, always, never), and the
per-guest log every line goes to: the real xenlive-console and xenlive-boot under a fake dom0."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.scripts.fakedom0 import FakeDom0, fake_dom0
from xenlive.contract import CONTRACT


def booted(dom0: FakeDom0) -> list[str]:
    dom0.start_forwarders()
    result = dom0.boot()
    assert result.returncode == 0, result.stderr
    time.sleep(0.4)  # the guest's last lines, printed after its verdicts, reach the forwarder
    return dom0.console.status()


def forwarded(dom0: FakeDom0, name: str) -> list[str]:
    return [line.removeprefix(f"[{name}] ") for line in dom0.console.lines() if line.startswith(f"[{name}] ")]


def guest_log(dom0: FakeDom0, name: str) -> list[str]:
    return dom0.path(f"{CONTRACT.GUEST_LOGS}/{name}.log").read_text().splitlines()


EVERY_LINE = [
    "Linux version 6.1.0 (a guest booting)",
    "XENLIVE-READY web 10.7s",
    "root@web:~# XENLIVE-NET web addr=10.0.3.11 dom0=ok resolve=- uplink=- mgmt=closed",
    "still talking 1",
    "still talking 2",
    "still talking 3",
]


def test_until_ready_forwards_a_guests_lines_until_its_verdicts_and_logs_them_all(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "chatty")}) as dom0:
        lines = booted(dom0)
        assert "guest web ready" in lines
        assert any(line.startswith("guest web network ok") for line in lines)
        assert lines[-1] == "guests done ready=1 failed=0 skipped=0"
        assert forwarded(dom0, "web") == EVERY_LINE[:3]  # nothing after its network line
        assert guest_log(dom0, "web") == EVERY_LINE
        # dom0's shutdown: the guests' last words reach the console again.
        assert dom0.boot("stop").returncode == 0
        with dom0.path(f"{CONTRACT.CONSOLE_LOGS}/guest-web.log").open("a") as console:
            console.write("reboot: Power down\n")
        time.sleep(0.3)
        assert forwarded(dom0, "web")[-1] == "reboot: Power down"


def test_until_ready_without_a_network_stops_at_the_ready_line(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "chatty")}, network=False) as dom0:
        assert booted(dom0)[-1] == "guests done ready=1 failed=0 skipped=0"
        assert forwarded(dom0, "web") == EVERY_LINE[:2]
        assert guest_log(dom0, "web") == EVERY_LINE[:2] + EVERY_LINE[3:]


def test_always_forwards_every_line(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "chatty")}, forwarding="always") as dom0:
        booted(dom0)
        assert forwarded(dom0, "web") == EVERY_LINE
        assert guest_log(dom0, "web") == EVERY_LINE


@pytest.mark.parametrize("forwarding", ["never", "until-ready"])
def test_a_panic_reaches_smoke_through_dom0s_status_line_in_every_mode(tmp_path: Path, forwarding: str) -> None:
    with fake_dom0(tmp_path, {"bad": ("pv", "panic")}, network=False, forwarding=forwarding) as dom0:
        lines = booted(dom0)
        panic = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        assert f"guest bad failed crashed: {panic}" in lines
        assert guest_log(dom0, "bad")[-1] == panic
        assert (panic in forwarded(dom0, "bad")) == (forwarding == "until-ready")


def test_never_forwards_no_line_and_the_verdicts_still_come(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "chatty")}, forwarding="never") as dom0:
        lines = booted(dom0)
        assert "guest web ready" in lines
        assert any(line.startswith("guest web network ok") for line in lines)
        assert forwarded(dom0, "web") == []
        assert guest_log(dom0, "web") == EVERY_LINE
