"""The smoke test's reading of a serial console: parser, verdicts, times, JUnit XML, and the runner.

Transcripts under tests/fixtures/serial/ are raw serial output (\\r\\n endings, ANSI escapes, kernel
noise). Lines of the form "@@ SECONDS" are not serial output: they set the clock for the lines after them.
The runner, with QEMU replaced by `cat`/`sh`, runs real processes: tests/tools/test_smoke_runner.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xenlive import smoke
from xenlive.manifest import parse_manifest
from xenlive.smoke import (
    Fatal,
    GuestNetwork,
    GuestOutput,
    GuestsDone,
    GuestStatus,
    Milestone,
    Plan,
    SmokeState,
    StepReached,
    describe_step,
    expected_guests,
    junit_xml,
    parse_line,
    timeline_lines,
    verdict_line,
)

SERIAL = Path(__file__).parent.parent / "fixtures" / "serial"
BOTH_GUESTS = ("debian", "debian-pvh")
PANIC = "Kernel panic - not syncing: VFS: Unable to mount root fs"


def replay(name: str, expected: tuple[str, ...] | None = None) -> tuple[SmokeState, list[Milestone]]:
    """Feed a transcript like the runner does: stop at a pass, read on after a failure."""
    state = SmokeState(expected_guests=expected)
    notes: list[Milestone] = []
    at = 0.0
    for line in (SERIAL / name).read_bytes().decode().split("\n"):
        if line.startswith("@@ "):
            at = float(line.removeprefix("@@ "))
            continue
        notes += state.feed(at, line)
        if state.passed:
            break
    return state, notes


# --- parse_line ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (
            "\x1b[0m(XEN) Xen version 4.17.5-pre (Debian 4.17.5+72-g01140da4e8-1) (pkg) debug=n\r",
            StepReached("xen", "4.17.5-pre"),
        ),
        ("(XEN) [    2.100] Xen version 4.17.5 (root@) (gcc) debug=n", StepReached("xen", "4.17.5")),
        ("(XEN) *** Serial input to DOM0 (type 'CTRL-a' three times to switch input)\r", StepReached("dom0-kernel")),
        ("xenlive-status: dom0 up 6.1.0-28-amd64\r", StepReached("dom0", "6.1.0-28-amd64")),
        ("xenlive-boot[412]: xenlive-status: dom0 up 6.1.0-28-amd64", StepReached("dom0", "6.1.0-28-amd64")),
        ("xenlive-status: toolstack up xen=4.17.5 hvm=yes", StepReached("toolstack", "xen=4.17.5 hvm=yes")),
        (
            "spinner (3s / no limit)\r\x1b[Kxenlive-status: toolstack up xen=4.17.5 hvm=no\r",
            StepReached("toolstack", "xen=4.17.5 hvm=no"),
        ),
        (
            "xenlive-status: toolstack failed xenstored is not running",
            Fatal("toolstack", "toolstack failed: xenstored is not running"),
        ),
        ("xenlive-status: plan guests=debian,debian-pvh", Plan(("debian", "debian-pvh"))),
        ("xenlive-status: plan guests=", Plan(())),
        ("xenlive-status: guest debian created", GuestStatus("debian", "created")),
        ("xenlive-status: guest debian ready\r", GuestStatus("debian", "ready")),
        (
            "xenlive-status: guest hvm1 failed xl create: libxl: error",
            GuestStatus("hvm1", "failed", "xl create: libxl: error"),
        ),
        (
            "xenlive-status: guest pvh1 skipped pvh needs hardware virtualisation",
            GuestStatus("pvh1", "skipped", "pvh needs hardware virtualisation"),
        ),
        ("xenlive-status: guests done ready=2 failed=0", GuestsDone(2, 0)),
        (f"[debian] {PANIC}", GuestOutput("debian", PANIC)),
        ("[debian] xenlive-status: dom0 up 1.0", GuestOutput("debian", "xenlive-status: dom0 up 1.0")),
        (f"[    4.120000] {PANIC}\r", Fatal("dom0", PANIC)),
        ("(XEN) Panic on CPU 0:", Fatal("xen", "Xen: Panic on CPU 0")),
        (
            "(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.",
            Fatal("dom0", "Xen: Hardware Dom0 crashed: rebooting machine in 5 seconds."),
        ),
    ],
)
def test_parse_line_recognises_markers(line: str, event: object) -> None:
    assert parse_line(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\r",
        "[    9.843210] squashfs: version 4.0 (2009/01/31) Phillip Lougher",
        "[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mbasic.target\x1b[0m - Basic System.",
        "(XEN) ****************************************",
        "xenlive-status: dom0 pondering",
        "xenlive-status: frobnicate on",
        "Loading Xen 4.17 ...",
    ],
)
def test_parse_line_ignores_noise(line: str) -> None:
    assert parse_line(line) is None


# --- verdicts and times --------------------------------------------------------------------------


def test_a_two_guest_boot_passes_with_the_time_of_each_step() -> None:
    state, notes = replay("pass-2-guests.txt", expected=BOTH_GUESTS)
    assert state.passed and not state.failed
    assert state.steps == {"xen": 2.1, "dom0-kernel": 3.4, "dom0": 24.9, "toolstack": 26.3}
    assert state.details["xen"] == "4.17.5-pre"
    assert state.planned == BOTH_GUESTS
    assert [(g.name, g.state, g.at, g.created_at) for g in state.guests.values()] == [
        ("debian", "ready", 41.7, 31.0),
        ("debian-pvh", "ready", 47.9, 36.2),
    ]
    assert state.ended_at == 47.9
    labels = [n.label for n in notes]
    assert labels == ["xen", "dom0-kernel", "dom0", "toolstack", "plan", "guest:debian", "guest:debian-pvh"]
    assert str(notes[0]) == "   2.1s  xen         Xen 4.17.5-pre booted"


def test_a_guest_kernel_panic_fails_that_guest_at_once_but_does_not_stop_the_others() -> None:
    state, _ = replay("guest-failed.txt", expected=BOTH_GUESTS)
    assert state.failed and not state.passed
    assert state.failure is None  # nothing fatal for the run: the other guest goes on
    assert state.guests["debian"].state == "ready"
    pvh = state.guests["debian-pvh"]
    panic = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    # At the panic line (36.2 s), not when dom0 gives up on the guest (96.3 s).
    assert (pvh.state, pvh.reason, pvh.at) == ("failed", f"kernel panic: {panic}", 36.2)
    assert f"failed guest(s): debian-pvh (kernel panic: {panic})" in verdict_line(state, Path("x.serial.log"))


def test_a_skipped_guest_is_reported_with_its_reason_but_is_not_a_failure() -> None:
    state, _ = replay("guest-skipped.txt", expected=BOTH_GUESTS)
    assert state.passed
    assert state.details["toolstack"] == "xen=4.17.5-pre hvm=no"
    assert [(g.name, g.reason) for g in state.skipped_guests] == [
        ("debian-pvh", "pvh needs hardware virtualisation, which Xen does not report on this CPU")
    ]
    verdict = verdict_line(state, Path("out/demo.serial.log"))
    assert verdict.startswith("PASS: Xen, dom0, toolstack and 1 guest(s) ready in 41.7 s")
    assert "skipped: debian-pvh (pvh needs hardware virtualisation" in verdict
    assert verdict.endswith("serial log: out/demo.serial.log")


def test_a_dom0_kernel_panic_fails_at_once() -> None:
    state, notes = replay("kernel-panic.txt")
    assert state.failed
    assert state.failure == "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert list(state.steps) == ["xen", "dom0-kernel"]
    assert state.failed_step == "dom0"
    assert notes[-1] == Milestone(4.1, "FAIL", state.failure)


def test_a_xen_panic_fails_with_the_reason_xen_prints_after_it() -> None:
    state, _ = replay("xen-panic.txt")
    assert state.failure == "Xen: Panic on CPU 0: Could not set up DOM0 guest OS"
    assert state.failed_step == "dom0-kernel"


def test_a_plan_that_disagrees_with_the_manifest_fails_naming_both() -> None:
    state, notes = replay("plan-mismatch.txt", expected=BOTH_GUESTS)
    assert state.failed
    assert state.failure is not None
    assert "dom0 plans guests [debian, netbsd]" in state.failure
    assert "autostart guests [debian, debian-pvh]" in state.failure
    assert "rebuild the ISO" in state.failure
    assert notes[-1].label == "FAIL" and notes[-1].at == 26.4


def test_without_a_manifest_any_plan_is_accepted() -> None:
    state, _ = replay("plan-mismatch.txt")
    assert not state.finished
    assert state.waiting_for() == "guest(s) debian, netbsd"


def test_xen_420_without_its_banner_is_seen_booting_by_its_first_message_and_dom0s_kernel_by_its_first_line() -> None:
    """At loglvl=warning Xen 4.20 prints neither its version banner nor "Serial input to DOM0"."""
    state = SmokeState()
    state.feed(1.5, "(XEN) No SSBD controls available")
    state.feed(1.6, "(XEN) TSC only partially writable")
    state.feed(4.0, "[    0.000000] Linux version 6.12.118+deb13-amd64 (debian-kernel@lists.debian.org) (gcc-14)")
    state.feed(9.0, "[debian] [    0.000000] Linux version 6.12.118+deb13-amd64 (a guest's)")
    assert (state.steps, state.details["xen"]) == ({"xen": 1.5, "dom0-kernel": 4.0}, "")
    assert describe_step("xen", "") == "Xen booted"


def test_a_timeout_says_what_was_still_missing() -> None:
    state = SmokeState()
    state.feed(2.0, "(XEN) Xen version 4.17.5 (x) debug=n")
    assert state.time_out(300.0, 300) == [Milestone(300.0, "FAIL", "timeout after 300 s waiting for step dom0")]
    assert state.failed


def test_qemu_exiting_early_fails_quoting_its_last_output() -> None:
    state = SmokeState()
    state.feed(0.1, "qemu-system-x86_64: -cdrom x.iso: Could not open 'x.iso': Permission denied\n")
    state.qemu_exited(0.2, 1)
    assert state.failure == (
        "QEMU exited (code 1) while waiting for step xen; "
        "its last output: qemu-system-x86_64: -cdrom x.iso: Could not open 'x.iso': Permission denied"
    )


def test_guests_done_fails_planned_guests_that_never_reported() -> None:
    state = SmokeState()
    for line in ["xenlive-status: plan guests=a,b", "xenlive-status: guest a ready"]:
        state.feed(1.0, line)
    state.feed(2.0, "xenlive-status: guests done ready=1 failed=0")
    assert state.guests["b"].state == "failed"
    assert "guests done" in state.guests["b"].reason


def test_an_empty_plan_passes_once_the_toolstack_is_up() -> None:
    state = SmokeState(expected_guests=())
    for line in ["(XEN) Xen version 4.17.5 x", "xenlive-status: dom0 up 6.1", "xenlive-status: plan guests="]:
        state.feed(1.0, line)
    assert not state.finished
    state.feed(2.0, "xenlive-status: toolstack up xen=4.17.5 hvm=yes")
    assert state.passed


def test_expected_guests_are_the_autostart_guests_of_the_manifest() -> None:
    manifest = {
        "guests": [
            {"name": "debian", "autostart": True, "type": "pv"},
            {"name": "spare", "autostart": False, "type": "pv"},
            {"name": "debian-pvh", "type": "pvh"},
        ]
    }
    assert expected_guests(parse_manifest(manifest)) == BOTH_GUESTS
    assert expected_guests(parse_manifest({"machine": {}})) is None
    assert expected_guests(None) is None


def test_the_timeline_table_lists_steps_and_guests_with_seconds_from_power_on() -> None:
    state, _ = replay("guest-skipped.txt", expected=BOTH_GUESTS)
    table = timeline_lines(state)
    assert table[0].split() == ["step", "at", "result"]
    assert table[1].split()[:3] == ["xen", "2.1", "s"]
    assert table[-2].split()[:4] == ["guest:debian", "41.7", "s", "ready"]
    assert table[-1].split()[:3] == ["guest:debian-pvh", "31.0", "s"]
    assert "skipped: pvh needs hardware virtualisation" in table[-1]


# --- JUnit ---------------------------------------------------------------------------------------


def cases(tree: ET.ElementTree[ET.Element]) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in tree.getroot().iter("testcase")}


def failure_message(case: ET.Element) -> str | None:
    failure = case.find("failure")
    return None if failure is None else failure.get("message")


def roundtrip(tree: ET.ElementTree[ET.Element]) -> ET.ElementTree[ET.Element]:
    return ET.ElementTree(ET.fromstring(ET.tostring(tree.getroot(), encoding="unicode")))


def test_junit_of_a_pass_has_one_testcase_per_step_and_guest_with_stage_durations() -> None:
    state, _ = replay("pass-2-guests.txt", expected=BOTH_GUESTS)
    tree = roundtrip(junit_xml(state, serial_tail="(XEN) Xen version 4.17.5-pre"))
    suite = tree.getroot()
    assert (suite.tag, suite.get("name"), suite.get("tests"), suite.get("failures")) == (
        "testsuite",
        "xenlive-smoke",
        "6",
        "0",
    )
    assert {name: case.get("time") for name, case in cases(tree).items()} == {
        "xen": "2.1",
        "dom0-kernel": "1.3",
        "dom0": "21.5",
        "toolstack": "1.4",
        "guest:debian": "15.3",
        "guest:debian-pvh": "21.5",
    }
    assert all(len(case) == 0 for case in cases(tree).values())
    assert suite.findtext("system-out") == "(XEN) Xen version 4.17.5-pre"


def test_junit_marks_failed_guests_as_failures_and_skipped_guests_as_skipped() -> None:
    failed, _ = replay("guest-failed.txt", expected=BOTH_GUESTS)
    assert failure_message(cases(roundtrip(junit_xml(failed, serial_tail="")))["guest:debian-pvh"]) == (
        "kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    )

    skipped, _ = replay("guest-skipped.txt", expected=BOTH_GUESTS)
    tree = roundtrip(junit_xml(skipped, serial_tail=""))
    skip = cases(tree)["guest:debian-pvh"].find("skipped")
    assert skip is not None and skip.get("message", "").startswith("pvh needs hardware virtualisation")
    assert (tree.getroot().get("failures"), tree.getroot().get("skipped")) == ("0", "1")


def test_junit_after_a_panic_fails_the_unreached_steps_and_the_expected_guests() -> None:
    state, _ = replay("kernel-panic.txt", expected=BOTH_GUESTS)
    by_name = cases(roundtrip(junit_xml(state, serial_tail="")))
    messages = {name: failure_message(case) for name, case in by_name.items()}
    panic = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert messages == {
        "xen": None,
        "dom0-kernel": None,
        "dom0": panic,
        "toolstack": f"not reached: {panic}",
        "guest:debian": f"no verdict (pending): {panic}",
        "guest:debian-pvh": f"no verdict (pending): {panic}",
    }


def test_write_junit_produces_valid_xml_from_a_raw_serial_log(tmp_path: Path) -> None:
    state, _ = replay("pass-2-guests.txt")
    log = tmp_path / "demo.serial.log"
    log.write_bytes((SERIAL / "pass-2-guests.txt").read_bytes())
    junit = tmp_path / "junit.xml"
    smoke.write_junit(junit, state, iso=tmp_path / "demo.iso", serial_log=log)
    root = ET.parse(junit).getroot()
    out = root.findtext("system-out") or ""
    assert "xenlive-status: guests done ready=2 failed=0" in out
    assert "\x1b" not in out and "\r" not in out
    assert {case.get("classname") for case in root.iter("testcase")} == {"xenlive-smoke.demo"}
    assert not (tmp_path / "junit.xml.partial").exists()


# --- the guests' network checks ------------------------------------------------------------------


def network_boot(*guest_lines: str) -> SmokeState:
    """Xen, dom0 and the toolstack up, a plan of two guests with a network, then `guest_lines` from dom0."""
    state = SmokeState(expected_guests=BOTH_GUESTS)
    lines = [
        "(XEN) Xen version 4.17.5 (Debian)",
        "xenlive-status: dom0 up 6.1.0-28-amd64",
        "xenlive-status: toolstack up xen=4.17.5 hvm=yes",
        "xenlive-status: plan guests=debian,debian-pvh network=yes",
        *guest_lines,
    ]
    for i, line in enumerate(lines):
        state.feed(float(i), line)
    return state


def test_parse_line_reads_the_plan_network_and_a_guest_network_verdict() -> None:
    assert parse_line("xenlive-status: plan guests=a,b network=yes") == Plan(("a", "b"), network=True)
    assert parse_line("xenlive-status: plan guests=a") == Plan(("a",), network=False)
    assert parse_line("xenlive-status: guest a network ok addr=10.0.3.10 resolve=b:ok") == GuestNetwork(
        "a", True, "addr=10.0.3.10 resolve=b:ok"
    )
    assert parse_line("xenlive-status: guest a network failed no DHCP address") == GuestNetwork(
        "a", False, "no DHCP address"
    )


def test_with_a_network_ready_guests_pass_only_after_their_network_checks() -> None:
    state = network_boot("xenlive-status: guest debian ready", "xenlive-status: guest debian-pvh ready")
    assert not state.finished
    assert state.waiting_for() == "the network checks of guest(s) debian, debian-pvh"
    state.feed(10.0, "xenlive-status: guest debian network ok addr=10.0.3.10 resolve=debian-pvh:ok")
    state.feed(11.0, "xenlive-status: guest debian-pvh network ok addr=10.0.3.11 resolve=debian:ok")
    assert state.passed
    rows = timeline_lines(state)
    assert any("net:debian" in row and "10.0 s" in row and "ok: addr=10.0.3.10" in row for row in rows)


def test_a_failed_network_check_fails_the_run_naming_guest_and_reason(tmp_path: Path) -> None:
    state = network_boot(
        "xenlive-status: guest debian ready",
        "xenlive-status: guest debian network failed guest cannot ping dom0",
        "xenlive-status: guest debian-pvh ready",
        "xenlive-status: guest debian-pvh network ok addr=10.0.3.11 resolve=debian:ok",
    )
    assert state.failed and not state.passed
    assert "network failed on: debian (guest cannot ping dom0)" in verdict_line(state, tmp_path / "serial.log")
    junit = cases(roundtrip(junit_xml(state, serial_tail="")))
    assert failure_message(junit["network:debian"]) == "guest cannot ping dom0"
    assert failure_message(junit["network:debian-pvh"]) is None
    assert failure_message(junit["guest:debian"]) is None


def test_guests_done_before_a_network_verdict_fails_that_check_but_not_the_guest() -> None:
    state = network_boot(
        "xenlive-status: guest debian ready",
        "xenlive-status: guest debian-pvh skipped pvh needs hardware virtualisation",
        "xenlive-status: guests done ready=1 failed=0 skipped=1",
    )
    assert state.failed
    assert state.guests["debian"].state == "ready"
    assert state.guests["debian"].network == "failed"
    assert "no network verdict" in state.guests["debian"].network_detail
    junit = cases(roundtrip(junit_xml(state, serial_tail="")))
    assert "network:debian-pvh" not in junit  # a guest that never ran has no network to check


# --- the shutdown (smoke --shutdown) --------------------------------------------------------------

STOPPED = ["xenlive-status: guests stopping debian debian-pvh", "xenlive-status: guests stopped"]
HALTED = "(XEN) Hardware Dom0 halted: halting machine"


def shut_down(*lines: str, off: int | None = 0) -> SmokeState:
    """The passing two-guest boot, the power button, `lines` on the console, then QEMU exiting with `off`
    (None: it does not exit)."""
    state, _ = replay("pass-2-guests.txt", BOTH_GUESTS)
    at = state.ended_at + 1
    state.begin_shutdown(at)
    for line in lines:
        at += 1
        state.feed(at, line)
    if off is not None:
        state.powered_off(at + 1, off)
    return state


def test_a_clean_shutdown_passes_once_the_guests_stopped_and_the_machine_is_off() -> None:
    state = shut_down(*STOPPED, HALTED)
    assert state.shutdown is not None and state.shutdown.ok
    assert state.passed
    rows = timeline_lines(state)
    assert any("guests-stopped" in row and "stopped" in row for row in rows)
    assert any("power-off" in row and "the machine is off" in row for row in rows)
    shutdown_case = cases(junit_xml(state, serial_tail=""))["shutdown"]
    assert shutdown_case.find("failure") is None
    assert "machine off" in verdict_line(state, Path("s.log"))


@pytest.mark.parametrize(
    ("lines", "off", "reason"),
    [
        (["xenlive-status: guests destroyed not shut down after 60s"], 0, "guests destroyed: not shut down after 60s"),
        ([*STOPPED, "(XEN) Hardware Dom0 shutdown: rebooting machine"], 0, "dom0 rebooted instead of powering off"),
        ([HALTED], 0, "the machine went off without dom0 reporting its guests stopped"),
        (STOPPED, 1, "QEMU exited with code 1"),
    ],
)
def test_a_shutdown_that_is_not_clean_fails_saying_why(lines: list[str], off: int, reason: str) -> None:
    state = shut_down(*lines, off=off)
    assert not state.passed and state.failed
    assert state.shutdown is not None and reason in (state.shutdown.failure or "")
    assert reason in (failure_message(cases(junit_xml(state, serial_tail=""))["shutdown"]) or "")


def test_a_machine_that_stays_on_fails_the_shutdown_saying_what_it_waited_for() -> None:
    state = shut_down(off=None)
    state.shutdown_timed_out(state.ended_at + 180, 180)
    assert not state.passed
    assert state.shutdown is not None
    assert state.shutdown.failure == "no power-off 180 s after the power button (waiting for dom0 to stop its guests)"


def test_dom0_rebooting_during_the_boot_fails_the_run() -> None:
    state = network_boot("(XEN) Hardware Dom0 shutdown: rebooting machine")
    assert state.failure is not None and state.failure.startswith("dom0 rebooted")


def test_a_shutdown_line_that_dom0_prints_twice_is_one_milestone() -> None:
    state, _ = replay("pass-2-guests.txt", BOTH_GUESTS)
    notes = state.begin_shutdown(100.0)
    for line in (*STOPPED, "xenlive-status: guests stopping debian debian-pvh (dom0 uptime 90.1s)", STOPPED[1]):
        notes += state.feed(101.0, line)
    assert [n.text for n in notes] == [
        "power button pressed",
        "dom0 stops guest(s) debian, debian-pvh",
        "guests stopped",
    ]
