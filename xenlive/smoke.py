"""Smoke test: boot an ISO headless and follow its serial console until it passes, fails or times out.

The booted system reports progress on the serial port (Xen's com1):
  (XEN) Xen version 4.17.5-...                 -> step "xen"
  (XEN) *** Serial input to DOM0 ...           -> step "dom0-kernel"
  xenlive-status: dom0 up 6.1.0-28-amd64       -> step "dom0"
  xenlive-status: toolstack up xen=... hvm=... -> step "toolstack"
  xenlive-status: plan guests=a,b network=yes  -> the guests dom0 will start, and whether they have a network
  xenlive-status: guest NAME created|ready|failed REASON|skipped REASON
  xenlive-status: guest NAME network ok DETAIL|failed REASON  -> the guest's network checks (after ready)
  xenlive-status: guests done ready=N failed=M
  [NAME] ...                                   -> a guest's console line, forwarded by dom0
Kernel panics, Xen panics and dom0 crashes fail the run at once. The lines dom0 and the guests print are
written down in docs/console-protocol.md.

Parsing (`parse_line`) and bookkeeping (`SmokeState`) are pure; `run_smoke` drives QEMU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, cast

from xenlive.errors import XenliveError
from xenlive.fsutil import atomic_path
from xenlive.manifest import BuildManifest, find_manifest
from xenlive.qemu import (
    QEMU,
    AccelChoice,
    QemuSpec,
    machine_size,
    qemu_argv,
    resolve_accel,
    running_qemu,
    stop_process,
)
from xenlive.run import require_tools

log = logging.getLogger(__name__)

STEPS = ("xen", "dom0-kernel", "dom0", "toolstack")
REQUIRED_STEPS = ("xen", "dom0", "toolstack")
GuestReport = Literal["created", "ready", "failed", "skipped"]
GuestState = Literal["pending", "created", "ready", "failed", "skipped"]
VERDICTS = ("ready", "failed", "skipped")

# Seconds of serial output still read after a failure, so the log holds e.g. the reason of a Xen panic.
FAILURE_DRAIN = 1.5
# Lines of the serial log copied into the JUnit report.
JUNIT_TAIL_LINES = 200


# --- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReached:
    step: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    guests: tuple[str, ...]
    network: bool = False


@dataclass(frozen=True)
class GuestNetwork:
    """A guest's network checks: its DHCP address, ping to dom0, names of the other guests; dom0's ping."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class GuestStatus:
    name: str
    state: GuestReport
    reason: str = ""


@dataclass(frozen=True)
class GuestsDone:
    ready: int
    failed: int


@dataclass(frozen=True)
class Fatal:
    """Something that ends the run at once: a panic, a crashed dom0, a toolstack that did not start."""

    source: str  # xen, dom0 or toolstack
    reason: str


@dataclass(frozen=True)
class XenMessage:
    """Any other line from Xen; right after a panic it says why."""

    text: str


@dataclass(frozen=True)
class GuestOutput:
    name: str
    text: str


Event = StepReached | Plan | GuestStatus | GuestNetwork | GuestsDone | Fatal | XenMessage | GuestOutput

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\^_=>])")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_XEN_VERSION = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?Xen version (\S+)")
_XEN_PANIC = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?(Panic on CPU \d+)")
_XEN_LINE = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?(.*)")
_DOM0_CRASH = re.compile(r"\(XEN\).*(Hardware Dom0 (?:crashed|halted|shutdown).*)")
_KERNEL_PANIC = re.compile(r"Kernel panic - not syncing:?.*")
_STATUS = re.compile(r"xenlive-status: (\S+)\s*(.*)")
_GUEST_LINE = re.compile(r"^\[([a-z0-9][a-z0-9-]{0,30})\] ?(.*)")
_GUEST_STATUS = re.compile(r"(\S+) (created|ready|failed|skipped)\b\s*(.*)")
_GUEST_NETWORK = re.compile(r"(\S+) network (ok|failed)\b\s*(.*)")
_GUESTS_DONE = re.compile(r"done ready=(\d+) failed=(\d+)")


def clean_line(raw: str) -> str:
    """What a terminal would show of one serial line: no ANSI escapes, no \\r overwrites, no controls."""
    segments = [s for s in raw.split("\r") if s.strip()]
    text = segments[-1] if segments else ""
    return _CONTROL.sub("", _ANSI.sub("", text)).strip()


def parse_line(line: str) -> Event | None:
    """The event one serial line reports, or None for ordinary boot noise."""
    text = clean_line(line)
    if not text:
        return None
    if guest := _GUEST_LINE.match(text):
        return GuestOutput(guest[1], guest[2])
    if status := _STATUS.search(text):
        return _parse_status(status[1], status[2].strip())
    return _parse_xen(text) or _parse_kernel(text)


def _parse_xen(text: str) -> Event | None:
    if "(XEN)" not in text:
        return None
    if version := _XEN_VERSION.search(text):
        return StepReached("xen", version[1])
    if "*** Serial input to DOM0" in text:
        return StepReached("dom0-kernel")
    if panic := _XEN_PANIC.search(text):
        return Fatal("xen", f"Xen: {panic[1]}")
    if crash := _DOM0_CRASH.search(text):
        return Fatal("dom0", f"Xen: {crash[1]}")
    if (line := _XEN_LINE.search(text)) and line[1].strip("* "):
        return XenMessage(line[1].strip())
    return None


def _parse_kernel(text: str) -> Event | None:
    if panic := _KERNEL_PANIC.search(text):
        return Fatal("dom0", panic[0])
    return None


def _parse_status(subject: str, rest: str) -> Event | None:
    state, _, detail = rest.partition(" ")
    if subject in ("dom0", "toolstack"):
        if state == "up":
            return StepReached(subject, detail)
        if state == "failed":
            return Fatal(subject, f"{subject} failed: {detail or 'no reason given'}")
        return None
    if subject == "plan" and rest.startswith("guests="):
        fields = dict(word.partition("=")[::2] for word in rest.split())
        return Plan(tuple(name for name in fields["guests"].split(",") if name), fields.get("network") == "yes")
    if subject == "guest" and (network := _GUEST_NETWORK.match(rest)):
        return GuestNetwork(network[1], network[2] == "ok", network[3].strip())
    if subject == "guest" and (guest := _GUEST_STATUS.match(rest)):
        return GuestStatus(guest[1], cast(GuestReport, guest[2]), guest[3].strip())
    if subject == "guests" and (done := _GUESTS_DONE.match(rest)):
        return GuestsDone(int(done[1]), int(done[2]))
    return None


# --- state ---------------------------------------------------------------------------------------


@dataclass
class GuestVerdict:
    name: str
    state: GuestState = "pending"
    reason: str = ""
    created_at: float | None = None
    at: float | None = None  # seconds from power-on to ready/failed/skipped
    network: Literal["pending", "ok", "failed", "none"] = "none"  # pending once dom0 plans a network
    network_detail: str = ""
    network_at: float | None = None

    @property
    def decided(self) -> bool:
        """Nothing more to wait for: a verdict, and for a ready guest with a network, its network checks."""
        return self.state in VERDICTS and not (self.state == "ready" and self.network == "pending")


@dataclass(frozen=True)
class Milestone:
    """One line of progress worth showing: seconds from power-on, a label, what happened."""

    at: float
    label: str
    text: str

    def __str__(self) -> str:
        return f"{self.at:6.1f}s  {self.label:<11} {self.text}"


@dataclass
class SmokeState:
    """Everything learnt from the serial console so far: the timeline and each guest's verdict.

    `expected_guests` are the autostart guests of the manifest beside the ISO (None: no manifest);
    dom0's plan must name the same guests.
    """

    expected_guests: tuple[str, ...] | None = None
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds from power-on
    details: dict[str, str] = field(default_factory=dict)
    planned: tuple[str, ...] | None = None
    plan_at: float | None = None
    network: bool = False  # dom0 plans a network: every ready guest must pass its network checks
    guests: dict[str, GuestVerdict] = field(default_factory=dict)
    failure: str | None = None
    failed_step: str | None = None
    ended_at: float = 0.0
    last_output: str = ""
    after_xen_panic: bool = field(default=False, init=False, repr=False)

    # -- what it concludes

    @property
    def all_guests_decided(self) -> bool:
        return self.planned is not None and all(self.guests[name].decided for name in self.planned)

    @property
    def failed_guests(self) -> list[GuestVerdict]:
        return [g for g in self.guests.values() if g.state == "failed"]

    @property
    def network_failures(self) -> list[GuestVerdict]:
        return [g for g in self.guests.values() if g.network == "failed"]

    @property
    def skipped_guests(self) -> list[GuestVerdict]:
        return [g for g in self.guests.values() if g.state == "skipped"]

    @property
    def passed(self) -> bool:
        return (
            self.failure is None
            and all(step in self.steps for step in REQUIRED_STEPS)
            and self.all_guests_decided
            and not self.failed_guests
            and not self.network_failures
        )

    @property
    def failed(self) -> bool:
        bad = bool(self.failed_guests or self.network_failures)
        return self.failure is not None or (self.all_guests_decided and bad)

    @property
    def finished(self) -> bool:
        return self.passed or self.failed

    def waiting_for(self) -> str:
        """What the run still waits for, in words."""
        missing = [step for step in REQUIRED_STEPS if step not in self.steps]
        if missing:
            return f"step {missing[0]}"
        if self.planned is None:
            return "dom0's guest plan"
        pending = [name for name in self.planned if not self.guests[name].decided]
        if not pending:
            return "nothing"
        if all(self.guests[name].state == "ready" for name in pending):
            return f"the network checks of guest(s) {', '.join(pending)}"
        return f"guest(s) {', '.join(pending)}"

    def guest_names(self) -> list[str]:
        """Guests to report on: planned or expected first, then any other guest dom0 mentioned."""
        names = [*(self.planned or ()), *(self.expected_guests or ()), *self.guests]
        return list(dict.fromkeys(names))

    # -- what changes it

    def feed(self, at: float, line: str) -> list[Milestone]:
        """Take one serial line seen `at` seconds after power-on; the milestones it marks."""
        self.ended_at = max(self.ended_at, at)
        self.last_output = clean_line(line) or self.last_output
        event = parse_line(line)
        if event is None:
            return []
        return self.apply(at, event)

    def apply(self, at: float, event: Event) -> list[Milestone]:
        if isinstance(event, XenMessage):
            return self._xen_message(event)
        self.after_xen_panic = False
        if isinstance(event, StepReached):
            return self._step(at, event)
        if isinstance(event, Plan):
            return self._plan(at, event)
        if isinstance(event, GuestStatus):
            return self._guest(at, event)
        if isinstance(event, GuestNetwork):
            return self._guest_network(at, event)
        if isinstance(event, GuestsDone):
            return self._guests_done(at, event)
        if isinstance(event, Fatal):
            self.after_xen_panic = event.source == "xen"
            return self.fail(at, event.reason)
        log.debug("guest %s: %s", event.name, event.text)
        return []

    def fail(self, at: float, reason: str) -> list[Milestone]:
        """End the run as failed; the first failure is the one reported, against the step it waited for."""
        if self.failure is not None:
            return []
        self.failure = reason
        self.failed_step = next((step for step in STEPS if step not in self.steps), None)
        self.ended_at = max(self.ended_at, at)
        return [Milestone(at, "FAIL", reason)]

    def time_out(self, at: float, timeout: float) -> list[Milestone]:
        return self.fail(at, f"timeout after {timeout:g} s waiting for {self.waiting_for()}")

    def qemu_exited(self, at: float, code: int | None) -> list[Milestone]:
        if self.finished:
            return []
        last = f"; its last output: {self.last_output}" if self.last_output else ""
        return self.fail(at, f"QEMU exited (code {code}) while waiting for {self.waiting_for()}{last}")

    def _step(self, at: float, event: StepReached) -> list[Milestone]:
        if event.step in self.steps:
            return []  # dom0 may print a status line twice (console and journal)
        self.steps[event.step] = at
        self.details[event.step] = event.detail
        return [Milestone(at, event.step, describe_step(event.step, event.detail))]

    def _plan(self, at: float, event: Plan) -> list[Milestone]:
        if self.planned is not None:
            return []
        self.planned, self.plan_at, self.network = event.guests, at, event.network
        for name in event.guests:
            guest = self.guests.setdefault(name, GuestVerdict(name))
            if event.network and guest.network == "none":
                guest.network = "pending"
        shown = (", ".join(event.guests) or "no guests") + (" (with network)" if event.network else "")
        notes = [Milestone(at, "plan", shown)]
        if self.expected_guests is not None and sorted(self.expected_guests) != sorted(event.guests):
            expected = ", ".join(self.expected_guests) or "none"
            notes += self.fail(
                at,
                f"dom0 plans guests [{shown}] but the manifest beside the ISO lists autostart guests "
                f"[{expected}]: the ISO and its manifest do not match (rebuild the ISO)",
            )
        return notes

    def _guest(self, at: float, event: GuestStatus) -> list[Milestone]:
        guest = self.guests.setdefault(event.name, GuestVerdict(event.name))
        if event.state == "created":
            if guest.created_at is None:
                guest.created_at = at
                if guest.state not in VERDICTS:
                    guest.state = "created"
            return []
        if guest.state in VERDICTS:
            return []
        guest.state, guest.reason, guest.at = event.state, event.reason, at
        if event.state != "ready" and guest.network == "pending":
            guest.network = "none"  # a guest that never ran has no network to check
        text = event.state + (f": {event.reason}" if event.reason else "")
        return [Milestone(at, f"guest:{event.name}", text)]

    def _guest_network(self, at: float, event: GuestNetwork) -> list[Milestone]:
        guest = self.guests.setdefault(event.name, GuestVerdict(event.name))
        if guest.network in ("ok", "failed"):
            return []
        guest.network, guest.network_detail, guest.network_at = ("ok" if event.ok else "failed"), event.detail, at
        text = ("ok" if event.ok else "failed") + (f": {event.detail}" if event.detail else "")
        return [Milestone(at, f"net:{event.name}", text)]

    def _guests_done(self, at: float, event: GuestsDone) -> list[Milestone]:
        notes: list[Milestone] = []
        for name in self.planned or ():
            notes += self._guest(at, GuestStatus(name, "failed", "no verdict before dom0 reported 'guests done'"))
            if self.guests[name].network == "pending":
                notes += self._guest_network(at, GuestNetwork(name, False, "no network verdict before 'guests done'"))
        return notes

    def _xen_message(self, event: XenMessage) -> list[Milestone]:
        if self.after_xen_panic and self.failure is not None:
            self.failure = f"{self.failure}: {event.text}"
            self.after_xen_panic = False
        return []


def describe_step(step: str, detail: str) -> str:
    if step == "xen":
        return f"Xen {detail} booted"
    if step == "dom0-kernel":
        return "Xen handed over to the dom0 kernel"
    if step == "dom0":
        return f"dom0 up (kernel {detail})" if detail else "dom0 up"
    return f"toolstack up ({detail})" if detail else "toolstack up"


def expected_guests(manifest: BuildManifest | None) -> tuple[str, ...] | None:
    """Names of the autostart guests in a build manifest; None when there is no manifest or no guest list."""
    return manifest.autostart_guests() if manifest is not None else None


# --- report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmokeReport:
    iso: Path
    state: SmokeState
    serial_log: Path
    junit: Path | None
    accel: str

    @property
    def passed(self) -> bool:
        return self.state.passed

    @property
    def guests(self) -> list[GuestVerdict]:
        return [self.state.guests.get(name, GuestVerdict(name)) for name in self.state.guest_names()]


def timeline_lines(state: SmokeState) -> list[str]:
    """The table echoed at the end: seconds from power-on to each step and each guest's verdict."""
    rows = [("step", "at", "result")]
    for step in STEPS:
        at = state.steps.get(step)
        result = describe_step(step, state.details.get(step, "")) if at is not None else "not reached"
        rows.append((step, _seconds(at), result))
    for name in state.guest_names():
        guest = state.guests.get(name, GuestVerdict(name))
        result = guest.state + (f": {guest.reason}" if guest.reason else "")
        rows.append((f"guest:{name}", _seconds(guest.at), result))
        if guest.network != "none":
            result = guest.network + (f": {guest.network_detail}" if guest.network_detail else "")
            rows.append((f"net:{name}", _seconds(guest.network_at), result))
    width = max(len(row[0]) for row in rows)
    return [f"  {label:<{width}}  {at:>8}  {result}" for label, at, result in rows]


def _seconds(at: float | None) -> str:
    return "-" if at is None else f"{at:.1f} s"


def verdict_line(state: SmokeState, serial_log: Path) -> str:
    skipped_names = ", ".join(f"{g.name} ({g.reason})" for g in state.skipped_guests)
    skipped = f"; skipped: {skipped_names}" if skipped_names else ""
    if state.passed:
        ready = sum(1 for g in state.guests.values() if g.state == "ready")
        summary = f"Xen, dom0, toolstack and {ready} guest(s) ready in {state.ended_at:.1f} s"
        return f"PASS: {summary}{skipped}; serial log: {serial_log}"
    failed = ", ".join(f"{g.name} ({g.reason})" for g in state.failed_guests)
    network = ", ".join(f"{g.name} ({g.network_detail})" for g in state.network_failures)
    reasons = [
        r
        for r in (
            state.failure,
            f"failed guest(s): {failed}" if failed else "",
            f"network failed on: {network}" if network else "",
        )
        if r
    ]
    return f"FAIL: {'; '.join(reasons)}{skipped}; serial log: {serial_log}"


def junit_xml(state: SmokeState, *, serial_tail: str, classname: str = "xenlive-smoke") -> ET.ElementTree[ET.Element]:
    """JUnit XML: one testcase per step and per guest (`guest:NAME`).

    A testcase's `time` is how long that stage took: for a step, seconds since the previous step
    (the first since power-on); for a guest, seconds from dom0's plan to its verdict. Steps and guests
    never reached fail with the reason the run ended; skipped guests are <skipped>.
    """
    suite = ET.Element("testsuite", name="xenlive-smoke", time=f"{state.ended_at:.1f}")
    previous = 0.0
    for step in STEPS:
        at = state.steps.get(step)
        end = at if at is not None else state.ended_at
        case = ET.SubElement(suite, "testcase", classname=classname, name=step, time=f"{max(end - previous, 0):.1f}")
        if at is None:
            _add_failure(case, _unreached_message(state, step))
        previous = end
    for name in state.guest_names():
        _guest_case(suite, state, name, classname)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.SubElement(suite, "system-out").text = serial_tail
    return ET.ElementTree(suite)


def _guest_case(suite: ET.Element, state: SmokeState, name: str, classname: str) -> None:
    guest = state.guests.get(name, GuestVerdict(name))
    case = _span_case(suite, state, f"guest:{name}", classname, state.plan_at, guest.at)
    if guest.state == "failed":
        _add_failure(case, guest.reason or "failed")
    elif guest.state == "skipped":
        ET.SubElement(case, "skipped", message=guest.reason or "skipped")
    elif guest.state != "ready":
        _add_failure(case, f"no verdict ({guest.state}): {state.failure or 'the run ended'}")
    if guest.network == "none":
        return
    case = _span_case(suite, state, f"network:{name}", classname, guest.at, guest.network_at)
    if guest.network == "failed":
        _add_failure(case, guest.network_detail or "failed")
    elif guest.network != "ok":
        _add_failure(case, f"no network verdict: {state.failure or 'the run ended'}")


def _span_case(
    suite: ET.Element, state: SmokeState, name: str, classname: str, start: float | None, end: float | None
) -> ET.Element:
    """A testcase timed from `start` to `end` (either unknown: the end of the run)."""
    begin = start if start is not None else state.ended_at
    finish = end if end is not None else state.ended_at
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{max(finish - begin, 0):.1f}")


def _unreached_message(state: SmokeState, step: str) -> str:
    reason = state.failure or "the run ended"
    return reason if step == state.failed_step else f"not reached: {reason}"


def _add_failure(case: ET.Element, message: str) -> None:
    ET.SubElement(case, "failure", message=message).text = message


def write_junit(path: Path, state: SmokeState, *, iso: Path, serial_log: Path) -> None:
    """Write the JUnit XML of a run to `path` (complete or not at all); testcases are classed by ISO name."""
    tree = junit_xml(state, serial_tail=serial_tail(serial_log), classname=f"xenlive-smoke.{iso.stem}")
    ET.indent(tree)
    with _replacing(path) as partial:
        tree.write(partial, encoding="utf-8", xml_declaration=True)


def serial_tail(serial_log: Path, lines: int = JUNIT_TAIL_LINES) -> str:
    """The last lines of the serial log, cleaned of escapes and control characters (XML cannot hold them)."""
    try:
        raw = serial_log.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(clean_line(line) for line in raw.split("\n")[-lines:])


@contextmanager
def _replacing(path: Path, *, even_on_error: bool = False) -> Iterator[Path]:
    """fsutil.atomic_path, with a file that cannot be made there reported as a XenliveError naming `path`."""
    with contextlib.ExitStack() as stack:
        try:
            partial = stack.enter_context(atomic_path(path, even_on_error=even_on_error))
        except OSError as exc:
            raise XenliveError(f"cannot write {path}: {exc.strerror}") from exc
        yield partial


# --- running -------------------------------------------------------------------------------------


class SerialReader:
    """Reads QEMU's serial output from a pipe: copies every byte to `sink`, hands back whole lines."""

    def __init__(self, stream: IO[bytes], sink: IO[bytes]) -> None:
        self._fd = stream.fileno()
        self._sink = sink
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self._buffer = b""
        self.eof = False

    def read_lines(self, timeout: float) -> list[str]:
        """Lines completed within `timeout` seconds; at end of output, the unterminated rest too."""
        if self.eof or not self._selector.select(max(timeout, 0)):
            return []
        data = os.read(self._fd, 65536)
        self._sink.write(data)
        if not data:
            self.eof = True
            rest, self._buffer = self._buffer, b""
            return [rest.decode("utf-8", errors="replace")] if rest else []
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]

    def drain(self) -> None:
        """Copy whatever is left in the pipe to the sink (QEMU has stopped)."""
        while not self.eof and self.read_lines(0.2):
            pass
        self._selector.close()


@dataclass
class _Watch:
    """One smoke run in progress: the state, the clock and where progress goes."""

    state: SmokeState
    reader: SerialReader
    start: float
    echo: Callable[[str], None]

    def now(self) -> float:
        return time.monotonic() - self.start

    def show(self, milestones: list[Milestone]) -> None:
        for milestone in milestones:
            self.echo(str(milestone))

    def read_until(self, deadline: float, stop: Callable[[], bool]) -> None:
        """Feed serial lines into the state until `stop()`, the end of output, or `deadline` (seconds)."""
        while not stop() and not self.reader.eof and self.now() < deadline:
            for line in self.reader.read_lines(min(deadline - self.now(), 0.5)):
                self.show(self.state.feed(self.now(), line))


@dataclass(frozen=True)
class SmokeOptions:
    """How `smoke` (or `build --smoke`, or the benchmark) was asked to run."""

    timeout: float  # seconds from power-on until every guest must be ready
    junit: Path | None = None  # write JUnit XML here
    serial_log: Path | None = None  # keep the serial log here (default: NAME.serial.log beside the ISO)
    accel: AccelChoice = "auto"


def run_smoke(iso: Path, options: SmokeOptions, *, echo: Callable[[str], None]) -> SmokeReport:
    """Boot `iso` headless under QEMU and follow its serial console; the report says whether it passed.

    QEMU is always stopped before this returns or raises; the serial log (and JUnit XML, if asked)
    is written even when the run fails or is interrupted.
    """
    if not iso.is_file():
        raise XenliveError(f"{iso}: no such ISO")
    require_tools([QEMU])
    timeout, junit = options.timeout, options.junit
    log_path = options.serial_log or iso.with_name(iso.name.removesuffix(".iso") + ".serial.log")
    state = SmokeState(expected_guests=expected_guests(find_manifest(iso)))
    chosen = resolve_accel(options.accel)
    memory, smp = machine_size(iso)
    spec = QemuSpec(iso=iso, accel=chosen, memory=memory, smp=smp, headless=True)
    echo(f"smoke: booting {iso} ({chosen}, {smp} vCPU(s), {memory} MiB), timeout {timeout:g} s")
    try:
        _boot_and_watch(qemu_argv(spec), state, log_path, timeout, echo)
    except KeyboardInterrupt:
        state.fail(state.ended_at, "interrupted")
        raise
    finally:
        if junit is not None:
            write_junit(junit, state, iso=iso, serial_log=log_path)
    echo("timeline (seconds from power-on):")
    for line in timeline_lines(state):
        echo(line)
    echo(verdict_line(state, log_path))
    return SmokeReport(iso=iso, state=state, serial_log=log_path, junit=junit, accel=chosen)


def _boot_and_watch(
    argv: list[str], state: SmokeState, log_path: Path, timeout: float, echo: Callable[[str], None]
) -> None:
    """Run QEMU until the state is decided.

    The raw serial output, followed by any message of QEMU's own, goes to `log_path`.
    """
    with _replacing(log_path, even_on_error=True) as partial, partial.open("wb") as sink:
        start = time.monotonic()
        with running_qemu(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            assert proc.stdout is not None
            reader = SerialReader(proc.stdout, sink)
            _watch_boot(_Watch(state, reader, start, echo), timeout, lambda: _exit_code(proc))
            stop_process(proc)
            reader.drain()


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(2)
    except subprocess.TimeoutExpired:
        return None


def _watch_boot(watch: _Watch, timeout: float, exit_code: Callable[[], int | None]) -> None:
    state = watch.state
    watch.read_until(timeout, stop=lambda: state.finished)
    if state.passed:
        return
    if state.failed:
        watch.read_until(watch.now() + FAILURE_DRAIN, stop=lambda: False)  # e.g. why Xen panicked
    elif watch.reader.eof:
        watch.show(state.qemu_exited(watch.now(), exit_code()))
    else:
        watch.show(state.time_out(watch.now(), timeout))
