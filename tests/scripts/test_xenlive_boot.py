"""dom0's xenlive-boot and xenlive-console, the real scripts, under a fake dom0 (tests/scripts/fakedom0.py):
the status lines a boot prints for each thing that can happen to its guests, in seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.scripts.fakedom0 import Console, FakeDom0, fake_dom0


def boot(dom0: FakeDom0, **env: str) -> list[str]:
    dom0.start_forwarders()
    result = dom0.boot(**env)
    assert result.returncode == 0, result.stderr
    time.sleep(0.1)  # the console reader has the last line
    return dom0.console.status()


def test_every_guest_ready_with_its_network(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready"), "db": ("pvh", "ready")}) as dom0:
        lines = boot(dom0)
        assert lines[:3] == [
            lines[0],
            "toolstack up xen=4.17.5 hvm=yes",
            "plan guests=web,db network=yes",
        ]
        assert lines[0].startswith("dom0 up ")
        assert {"guest web created", "guest db created", "guest web ready", "guest db ready"} <= set(lines)
        assert "guest web network ok addr=10.0.3.11 resolve=db:ok uplink=- mgmt=closed" in lines
        assert any(line.startswith("guest db network ok addr=10.0.3.12 resolve=web:ok") for line in lines)
        assert lines[-1] == "guests done ready=2 failed=0 skipped=0"
        # The first guest is created alone, before the others.
        assert lines.index("guest web created") < lines.index("guest db created")
        # What the guests print reaches dom0's console, each line whole and named.
        assert "[web] XENLIVE-READY web 10.7s" in dom0.console.lines()
        # Each guest runs from a copy-on-write snapshot of its image, and its xl config.
        calls = dom0.calls()
        assert any(call.startswith("dmsetup create xenlive-web --table 0 2048 snapshot") for call in calls)
        assert any(call.startswith("xl create ") and call.endswith("/etc/xen/xenlive/db.cfg") for call in calls)
        # dom0's other services: those for the guests' network once they are created, the logins once ready.
        assert "sv up xenlive-dnsmasq xenlive-coldplug xenlive-uplink" in calls
        assert "sv up xenlive-getty-hvc0 xenlive-getty-tty1 xenlive-acpid" in calls
        # dnsmasq names dom0's own gateway (proc/net/route: 10.0.2.2) for the guests' NAT check.
        assert (dom0.path("/run/xenlive/hosts.d/uplink")).read_text().startswith("10.0.2.2 uplink-gateway ")


def test_a_guest_that_panics_is_reported_with_the_panic(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready"), "bad": ("pv", "panic")}, network=False) as dom0:
        lines = boot(dom0)
        assert "plan guests=web,bad network=no" in lines
        failed = [line for line in lines if line.startswith("guest bad failed")]
        assert failed == [
            "guest bad failed crashed: Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        ]
        assert lines[-1] == "guests done ready=1 failed=1 skipped=0"


def test_a_guest_that_crashes_without_a_panic_line_is_reported_crashed(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"bad": ("pv", "crash")}, network=False) as dom0:
        lines = boot(dom0)
        assert "guest bad failed crashed" in lines
        assert lines[-1] == "guests done ready=0 failed=1 skipped=0"


def test_a_guest_that_reboots_before_it_is_ready_is_awaited_again(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"flaky": ("pvh", "restart")}, network=False) as dom0:
        lines = boot(dom0)
        assert "guest flaky restarted it rebooted before it was ready" in lines
        assert lines.index("guest flaky restarted it rebooted before it was ready") < lines.index("guest flaky ready")
        assert lines[-1] == "guests done ready=1 failed=0 skipped=0"


def test_a_left_out_guest_is_skipped_with_the_reason_and_never_created(tmp_path: Path) -> None:
    left_out = {"bsd": "its files could not be downloaded"}
    guests = {"web": ("pv", "ready"), "bsd": ("pvh", "ready")}
    with fake_dom0(tmp_path, guests, left_out=left_out, network=False) as dom0:
        lines = boot(dom0)
        assert "guest bsd skipped its files could not be downloaded" in lines
        assert not any("bsd.cfg" in call for call in dom0.calls())
        assert lines[-1] == "guests done ready=1 failed=0 skipped=1"
        # Nor can it be started later: the ISO has no image for it.
        later = dom0.boot("start", "bsd")
        assert later.returncode == 1
        assert "guest bsd is not on this medium: its files could not be downloaded" in later.stderr


def test_a_bridge_that_never_comes_is_a_network_failure_and_the_guests_start_without_it(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "nonet")}, bridge=False) as dom0:
        lines = boot(dom0)
        assert "network failed bridge xenbr0 did not appear: guests start without it" in lines
        assert lines.index("network failed bridge xenbr0 did not appear: guests start without it") < lines.index(
            "plan guests=web network=no"
        )
        assert lines[-1] == "guests done ready=1 failed=0 skipped=0"


def test_a_guest_that_never_reports_fails_after_the_time_limit(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"mute": ("pv", "silent")}, network=False) as dom0:
        lines = boot(dom0, XENLIVE_READY_TIMEOUT="2")
        assert "guest mute created" in lines
        assert "guest mute failed not ready after 2s" in lines
        assert lines[-1] == "guests done ready=0 failed=1 skipped=0"


def test_a_guest_xl_cannot_create_is_reported_with_xls_error(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"big": ("pv", "fail-create")}, network=False) as dom0:
        lines = boot(dom0)
        assert "guest big failed xl create: libxl: error: domain big: cannot allocate memory" in lines
        assert lines[-1] == "guests done ready=0 failed=1 skipped=0"


def test_the_clean_shutdown_stops_every_guest(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready"), "db": ("pv", "ready")}, network=False) as dom0:
        boot(dom0)
        result = dom0.boot("stop")
        assert result.returncode == 0, result.stderr
        time.sleep(0.1)
        lines = dom0.console.status()
        assert lines[-2] in ("guests stopping web db", "guests stopping db web")
        assert lines[-1] == "guests stopped"
        assert "xl shutdown -a -w" in dom0.calls()
        # With no guest left, the shutdown has nothing to wait for.
        assert dom0.boot("stop").returncode == 0
        time.sleep(0.1)
        assert dom0.console.status()[-1] == "guests stopped"


def test_a_guests_terminal_escapes_and_control_characters_never_reach_dom0s_console(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"esc": ("pv", "escapes")}, network=False) as dom0:
        assert "guest esc ready" in boot(dom0)
        forwarded = [line for line in bytes(dom0.console.data).split(b"\n") if line.startswith(b"[esc] ")]
    texts = [line.decode(errors="replace") for line in forwarded]
    assert texts == [
        "[esc] Linux version 6.1.0 (a guest booting)",
        "[esc] clearhidden text",
        "[esc] ?2J?0;title? after C1",  # a C1 or bidirectional control shows as '?', so that none re-forms
        "[esc] re\ufffd?\ufffdformed 2J",
        "[esc] ?evil ?x",
        "[esc] caf\u00e9 \u2713 \u2014 a\tb",
        "[esc] bell del",
        "[esc] XENLIVE-READY esc 10.7s",
    ]
    assert all(text.replace("\t", " ").isprintable() for text in texts)


def wait_for(predicate: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_guest_lines_reach_the_console_after_a_getty_hung_it_up(tmp_path: Path) -> None:
    # A getty starting on dom0's console hangs up every descriptor opened on it before (vhangup): the
    # forwarder must open the console anew for each line. Here the console is replaced while it runs.
    with fake_dom0(tmp_path, {"web": ("pv", "silent")}, network=False) as dom0:
        dom0.start_forwarders()
        log = dom0.path("/var/log/xen/console/guest-web.log")
        wait_for(log.exists)
        with log.open("a") as guest:
            guest.write("before the getty\n")
        wait_for(lambda: "[web] before the getty" in dom0.console.lines())
        old = dom0.console
        old.stop()
        old.path.unlink()
        dom0.console = Console(old.path)
        dom0.console.start()
        with log.open("a") as guest:
            guest.write("after the getty\n")
        wait_for(lambda: "[web] after the getty" in dom0.console.lines())
