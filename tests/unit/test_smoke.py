"""The smoke test's reading of a serial console: parser, verdicts, times, JUnit XML, and the runner.

Transcripts under tests/fixtures/serial/ are raw serial output (\\r\\n endings, ANSI escapes, kernel
noise). runit-ci-pass.txt is the serial log of a smoke run of recipes/ci.yaml (runit dom0 and guest, one
guest with a network) as `smoke --log` kept it, untouched: the default example. The others are of the
systemd era, with lines of the form "@@ SECONDS" that are not serial output: they set the clock for the
lines after them.
The runner tests replace QEMU by `cat`/`sh`, so they run real processes and pipes in well under a second.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from xenlive import smoke
from xenlive.cli import main
from xenlive.contract import CONTRACT, STATUS
from xenlive.errors import XenliveError
from xenlive.manifest import parse_manifest
from xenlive.smoke import (
    Fatal,
    GuestNetwork,
    GuestOutput,
    GuestsDone,
    GuestStatus,
    Milestone,
    Plan,
    SmokeOptions,
    SmokeState,
    StepReached,
    describe_step,
    expected_guests,
    junit_xml,
    parse_line,
    run_smoke,
    timeline_lines,
    verdict_line,
)
from xenlive.smoke.console import GuestsStopping

SERIAL = Path(__file__).parent.parent / "fixtures" / "serial"
RUNIT = "runit-ci-pass.txt"  # recorded: smoke PASSed it live at 24.5 s, guest debian's network ok
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
        ("xenlive-status: dom0 up 6.1.0-57-amd64\r\r", StepReached("dom0", "6.1.0-57-amd64")),
        ("xenlive-status: dom0 up 6.1.0-28-amd64\r", StepReached("dom0", "6.1.0-28-amd64")),
        ("xenlive-status: toolstack up xen=4.17.7 hvm=yes\r\r", StepReached("toolstack", "xen=4.17.7 hvm=yes")),
        ("xenlive-status: plan guests=debian network=yes\r\r", Plan(("debian",), network=True)),
        (
            "xenlive-status: network failed cannot make bridge xenbr0\r\r",
            Fatal("network", "network failed: cannot make bridge xenbr0"),
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
        (f"[debian] {PANIC}\r\r", GuestOutput("debian", PANIC)),
        ("[debian] xenlive-status: dom0 up 1.0", GuestOutput("debian", "xenlive-status: dom0 up 1.0")),
        (f"\x1bM\r\x1b[K[debian] {PANIC}", GuestOutput("debian", PANIC)),  # after systemd's status line
        (f"[evil] x\r[victim] {PANIC}", GuestOutput("evil", f"[victim] {PANIC}")),
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
        "xenlive-status: guest a sleeping",
        "Loading Xen 4.17 ...",
    ],
)
def test_parse_line_ignores_noise(line: str) -> None:
    assert parse_line(line) is None


# --- status lines only from dom0, whole -----------------------------------------------------------

FORGED = "xenlive-status: guest victim ready"


@pytest.mark.parametrize(
    "line",
    [
        f"[evil] {FORGED}",  # at the start of the guest's line
        f"[evil] pwned {FORGED}",  # mid-line
        f"[evil] x\r{FORGED}\r\r",  # after a \r, which a terminal would show alone
        f"[evil] \x1b[2K\r{FORGED}",
        f"[evil] {'A' * 900}",  # cut by the forwarder
        f"junk\r{FORGED}\r",  # the status line must start the raw line
        f"\x1b[0m{FORGED}",
        f"{FORGED}\rjunk",  # ... and be whole
        f"{FORGED}\x1b[K",
        f"xenlive-boot[412]: {FORGED}",  # the journal's copy, not dom0's console line
        f"[    4.1] {FORGED}",
        f"(XEN) {FORGED}",
        f"{FORGED}\tx",
    ],
)
def test_a_status_line_counts_only_whole_at_the_start_of_the_raw_line(line: str) -> None:
    event = parse_line(line)
    assert not isinstance(event, GuestStatus | StepReached | Plan | GuestNetwork | GuestsDone | Fatal)


def victim_state() -> SmokeState:
    """A boot of guests evil and victim, up to their plan, as the runit-era console prints it."""
    state = SmokeState(expected_guests=("evil", "victim"))
    for line in [
        "(XEN) Xen version 4.17.7 (Debian 4.17.7) debug=n\r",
        "xenlive-status: dom0 up 6.1.0-57-amd64\r\r",
        "xenlive-status: toolstack up xen=4.17.7 hvm=yes\r\r",
        "xenlive-status: plan guests=evil,victim network=no\r\r",
        "xenlive-status: guest evil created\r\r",
        "xenlive-status: guest victim created\r\r",
        "xenlive-status: guest evil ready\r\r",
    ]:
        state.feed(1.0, line)
    return state


def write_split(line: str, size: int = 1024) -> list[str]:
    """What bash's printf of `line` to a terminal is: writes of at most `size` bytes."""
    data = line.encode() + b"\n"
    return [data[i : i + size].decode() for i in range(0, len(data), size)]


def serial_lines(*writes: str) -> list[str]:
    """How the serial port shows these writes, in this order: lines ending \\r\\r (dom0's tty, then Xen)."""
    return "".join(writes).replace("\n", "\r\r\n").split("\n")[:-1]


FORGERIES = [
    f"[evil] {FORGED}",
    f"[evil] pwned; {FORGED}",
    f"[evil] x\r{FORGED}",
    f"[evil] {'x' * 1017}{FORGED}",  # the forged line from byte 1024 on, a write of its own
    f"[evil] {'x' * 1017}xenlive-status: dom0 failed forged",
    f"[evil] {'x' * 1017}Kernel panic - not syncing: forged",
    f"[evil] {'x' * 1017}[victim] Kernel panic - not syncing: forged",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_nothing_a_guest_prints_makes_a_status_for_dom0_or_another_guest(forgery: str) -> None:
    flood = [f"[other] line {i} of another guest's flood\n" for i in range(3)]
    # The guest's line in bash's writes, another guest's lines slipping in between each of them.
    writes = [w for part in write_split(f"{forgery}") for w in (part, *flood)]
    state = victim_state()
    for line in serial_lines(*writes):
        state.feed(2.0, line)
    assert state.guests["victim"].state == "created"  # no verdict, neither ready nor failed
    assert "dom0" in state.steps and not state.passed
    if len(forgery.encode()) + 1 > 1024:  # split: the rest could not be told from dom0's line
        assert state.failure is not None and "guest evil's console line" in state.failure
        assert "no later line can be trusted" in state.failure
    else:
        assert state.failure is None


def test_a_guest_line_split_between_writes_fails_the_run_even_without_a_status_in_it() -> None:
    state = victim_state()
    for line in serial_lines(*write_split(f"[evil] {'x' * 2000}")):
        state.feed(2.0, line)
    assert state.failed and state.guests["victim"].state == "created"


def test_a_forwarded_line_cut_to_the_contract_s_length_is_whole() -> None:
    line = f"[evil] {'x' * CONTRACT.GUEST_LINE_MAX}"
    event = parse_line(f"{line}\r\r")
    assert isinstance(event, GuestOutput) and not event.split
    state = victim_state()
    state.feed(2.0, line)
    assert state.failure is None


def test_the_status_lines_smoke_reads_are_the_contract_s_and_no_others() -> None:
    read = {
        "dom0 up 6.1": StepReached("dom0", "6.1"),
        "toolstack failed why": Fatal("toolstack", "toolstack failed: why"),
        "network failed why": Fatal("network", "network failed: why"),
        "plan guests=a": Plan(("a",)),
        "guest a skipped why": GuestStatus("a", "skipped", "why"),
        "guest a network ok x": GuestNetwork("a", True, "x"),
        "guests done ready=1 failed=0": GuestsDone(1, 0),
    }
    for rest, event in read.items():
        subject, state = rest.split()[0], rest.split()[2 if rest.startswith("guest ") else 1]
        assert state.partition("=")[0] + ("=" if "=" in state else "") in STATUS[subject]
        assert parse_line(f"{CONTRACT.STATUS_PREFIX} {rest}") == event
    assert parse_line(f"{CONTRACT.STATUS_PREFIX} network up") is None  # not a state of the contract's
    assert parse_line(f"{CONTRACT.STATUS_PREFIX} guest a rebooted") is None


# --- verdicts and times --------------------------------------------------------------------------


def test_the_recorded_runit_boot_passes_with_its_network_checked() -> None:
    state, notes = replay(RUNIT, expected=("debian",))
    assert state.passed
    assert state.details == {
        "xen": "4.17.7",
        "dom0-kernel": "",
        "dom0": "6.1.0-57-amd64",
        "toolstack": "xen=4.17.7 hvm=yes",
    }
    assert state.planned == ("debian",) and state.network
    debian = state.guests["debian"]
    assert (debian.state, debian.network) == ("ready", "ok")
    assert debian.network_detail == "addr=10.0.3.10 resolve=- uplink=ok mgmt=closed"
    labels = [n.label for n in notes]
    assert labels == ["xen", "dom0-kernel", "dom0", "toolstack", "plan", "guest:debian", "net:debian"]


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


# --- the manifest's network: what the recipe expects, not what dom0 plans -------------------------

BRIDGE_FAILS = [
    "(XEN) Xen version 4.17.7 (Debian 4.17.7) debug=n\r",
    "xenlive-status: dom0 up 6.1.0-57-amd64\r\r",
    "xenlive-status: toolstack up xen=4.17.7 hvm=yes\r\r",
    "xenlive-status: network failed cannot create bridge xenbr0\r\r",
    "xenlive-status: plan guests=debian network=no\r\r",
    "xenlive-status: guest debian created\r\r",
    "xenlive-status: guest debian ready\r\r",
    "xenlive-status: guests done ready=1 failed=0\r\r",
]
CI_MANIFEST = {"guests": [{"name": "debian"}], "network": {"enabled": True}}


def judged(lines: list[str], manifest: dict[str, object] | None) -> SmokeState:
    state = smoke.state_for(parse_manifest(manifest) if manifest is not None else None, clock="lines")
    return smoke.feed_log(state, lines)


@pytest.mark.parametrize("manifest", [CI_MANIFEST, None])
def test_dom0_failing_to_make_the_bridge_fails_the_run_with_its_reason(manifest: dict[str, object] | None) -> None:
    state = judged(BRIDGE_FAILS, manifest)
    assert state.failed and not state.passed
    assert state.failure == "network failed: cannot create bridge xenbr0"
    assert verdict_line(state, Path("s.log")).startswith("FAIL: network failed: cannot create bridge xenbr0")


def test_a_plan_without_network_fails_when_the_manifest_enables_it() -> None:
    lines = [line for line in BRIDGE_FAILS if "network failed" not in line]
    state = judged(lines, CI_MANIFEST)
    assert state.failed
    assert state.failure == (
        "dom0 plans its guests without a network but the recipe enables it (the manifest beside the ISO)"
    )
    # Without the manifest's word, dom0's plan says: no network, and a ready guest passes.
    assert judged(lines, {"guests": [{"name": "debian"}]}).passed
    assert judged(lines, None).passed


def test_with_the_manifest_s_network_a_ready_guest_passes_only_with_its_network_verdict() -> None:
    lines = [line for line in RUNIT_LINES if "network ok" not in line]
    state = judged(lines, CI_MANIFEST)
    assert not state.passed and state.guests["debian"].state == "ready"
    assert (
        state.failure
        == f"the serial log ends (line {len(lines)}) while waiting for the network checks of guest(s) debian"
    )
    assert judged(RUNIT_LINES, CI_MANIFEST).passed


def test_a_manifest_without_network_expects_none_even_if_dom0_plans_one() -> None:
    state = judged(RUNIT_LINES, {"guests": [{"name": "debian"}], "network": {"enabled": False}})
    assert state.failed
    assert (
        state.failure is not None and "dom0 plans its guests with a network but the recipe disables it" in state.failure
    )


# --- judging a recorded serial log (smoke --from-log) ----------------------------------------------

RUNIT_LINES = (SERIAL / RUNIT).read_bytes().decode().split("\n")[:-1]


def test_from_log_gives_the_live_run_s_verdict_on_the_recorded_runit_boot(tmp_path: Path) -> None:
    iso = tmp_path / "xenlive-ci.iso"  # not there: only its manifest is read
    (tmp_path / "xenlive-ci.manifest.json").write_text(json.dumps(CI_MANIFEST))
    junit = tmp_path / "junit.xml"
    echoed: list[str] = []

    report = run_smoke(iso, SmokeOptions(1, junit=junit, from_log=SERIAL / RUNIT), echo=echoed.append)

    assert report.passed and report.serial_log == SERIAL / RUNIT
    # What the live run echoed (seconds from power-on), here at the lines they came on.
    assert "line   467  dom0        dom0 up (kernel 6.1.0-57-amd64)" in echoed
    assert "line   518  net:debian  ok: addr=10.0.3.10 resolve=- uplink=ok mgmt=closed" in echoed
    assert "timeline (lines of the serial log, which has no timestamps):" in echoed
    assert (
        echoed[-1]
        == f"PASS: Xen, dom0, toolstack and 1 guest(s) ready by line 518 of the log; serial log: {SERIAL / RUNIT}"
    )
    root = ET.parse(junit).getroot()
    assert [c.get("name") for c in root.iter("testcase")] == [*smoke.STEPS, "guest:debian", "network:debian"]
    assert root.get("failures") == "0" and {c.get("time") for c in root.iter("testcase")} == {"0.0"}
    assert root.find("properties/property[@name='judged-from']") is not None


def test_from_log_gives_the_live_run_s_verdict_on_the_recorded_systemd_boot(tmp_path: Path) -> None:
    # systemd-ci-pass.txt: `smoke --shutdown` of recipes/ci-systemd.yaml (systemd dom0 and guest) PASSed it live;
    # systemd's console clears its status line before some of dom0's lines.
    iso = tmp_path / "xenlive-ci-systemd.iso"
    (tmp_path / "xenlive-ci-systemd.manifest.json").write_text(json.dumps(CI_MANIFEST))
    echoed: list[str] = []
    report = run_smoke(iso, SmokeOptions(1, from_log=SERIAL / "systemd-ci-pass.txt"), echo=echoed.append)
    assert report.passed
    assert [(g.name, g.state, g.network) for g in report.guests] == [("debian", "ready", "ok")]
    assert echoed[-1].startswith("PASS: Xen, dom0, toolstack and 1 guest(s) ready by line 688 of the log")


def test_the_smoke_verb_judges_a_log_with_from_log_and_exits_by_its_verdict(tmp_path: Path) -> None:
    (tmp_path / "xenlive-ci.manifest.json").write_text(json.dumps(CI_MANIFEST))
    iso = str(tmp_path / "xenlive-ci.iso")
    passed = CliRunner().invoke(main, ["smoke", "--from-log", str(SERIAL / RUNIT), iso])
    assert passed.exit_code == 0 and "PASS: " in passed.output
    failed = CliRunner().invoke(main, ["smoke", "--from-log", str(SERIAL / "kernel-panic.txt"), iso])
    assert failed.exit_code == 1 and "FAIL: Kernel panic - not syncing" in failed.output


def test_from_log_judges_each_recorded_log_as_the_replay_does() -> None:
    for name, expected in [(RUNIT, ("debian",)), ("pass-2-guests.txt", BOTH_GUESTS), ("guest-failed.txt", BOTH_GUESTS)]:
        live, _ = replay(name, expected)
        lines = (SERIAL / name).read_bytes().decode().split("\n")
        from_log = smoke.feed_log(SmokeState(expected_guests=expected, clock="lines"), lines)
        assert (from_log.passed, from_log.failure) == (live.passed, live.failure), name
        assert {n: (g.state, g.network) for n, g in from_log.guests.items()} == {
            n: (g.state, g.network) for n, g in live.guests.items()
        }, name


def test_from_log_that_ends_undecided_fails_saying_what_it_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "cut.log"
    log.write_text("\n".join(RUNIT_LINES[:480]) + "\n")
    (tmp_path / "x.manifest.json").write_text(json.dumps(CI_MANIFEST))
    report = smoke.judge_log(tmp_path / "x.iso", log, SmokeOptions(1), echo=lambda line: None)
    assert report.state.failure == "the serial log ends (line 480) while waiting for guest(s) debian"


def test_from_log_refuses_a_shutdown_and_a_path_with_neither_iso_nor_manifest(tmp_path: Path) -> None:
    with pytest.raises(XenliveError, match="--shutdown cannot be judged from a log"):
        smoke.judge_log(tmp_path / "x.iso", SERIAL / RUNIT, SmokeOptions(1, shutdown=True), echo=lambda line: None)
    with pytest.raises(XenliveError, match="no such ISO, and no manifest beside it"):
        smoke.judge_log(tmp_path / "x.iso", SERIAL / RUNIT, SmokeOptions(1), echo=lambda line: None)


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


def test_a_status_or_guest_line_behind_dom0_s_login_prompt_still_counts() -> None:
    # dom0's autologin shell on its console prints its prompt without a newline; the next line follows it.
    prompt = "\x1b[?2004hroot@xenlive:~# "
    assert parse_line(prompt + "xenlive-status: guest web ready\r\r") == GuestStatus("web", "ready")
    assert parse_line(prompt + "[web] XENLIVE-NET web addr=10.0.3.10\r") == GuestOutput(
        "web", "XENLIVE-NET web addr=10.0.3.10", len("[web] XENLIVE-NET web addr=10.0.3.10")
    )
    # A guest's text is never taken for a prompt: its lines start with its name.
    assert parse_line("[evil] root@xenlive:~# xenlive-status: guest web ready") != GuestStatus("web", "ready")


def test_a_status_line_behind_systemd_clearing_its_status_line_still_counts() -> None:
    # Seen in a systemd dom0's serial log: `ESC[K` from systemd's status line, then dom0's status line.
    assert parse_line("\x1b[Kxenlive-status: guests stopping debian\r") == GuestsStopping(("debian",))
    assert parse_line("\r\x1b[K\x1b[0;1;31mxenlive-status: guest web ready") is None  # colour is not clearing
    assert parse_line("\r\x1b[Kxenlive-status: guest web ready\r\r") == GuestStatus("web", "ready")
    # A guest's line that clears the line is still the guest's: it starts with its name.
    assert parse_line("[evil] \r\x1b[Kxenlive-status: guest web ready") != GuestStatus("web", "ready")
