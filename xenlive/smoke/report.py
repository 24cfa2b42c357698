"""What a smoke run reports: the timeline table, the verdict line, JUnit XML and the serial log's tail."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xenlive.errors import XenliveError
from xenlive.fsutil import atomic_path
from xenlive.smoke.console import clean_line
from xenlive.smoke.state import STEPS, GuestVerdict, SmokeState, describe_step, format_at

# Lines of the serial log copied into the JUnit report.
JUNIT_TAIL_LINES = 200


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


def timeline_header(state: SmokeState) -> str:
    if state.clock == "seconds":
        return "timeline (seconds from power-on):"
    return "timeline (lines of the serial log, which has no timestamps):"


def timeline_lines(state: SmokeState) -> list[str]:
    """The table echoed at the end: seconds from power-on (or the log's line) to each step and each guest's
    verdict."""
    rows = [("step", "at", "result")]
    for step in STEPS:
        at = state.steps.get(step)
        result = describe_step(step, state.details.get(step, "")) if at is not None else "not reached"
        rows.append((step, _when(state, at), result))
    for name in state.guest_names():
        guest = state.guests.get(name, GuestVerdict(name))
        result = guest.state + (f": {guest.reason}" if guest.reason else "")
        rows.append((f"guest:{name}", _when(state, guest.at), result))
        if guest.network != "none":
            result = guest.network + (f": {guest.network_detail}" if guest.network_detail else "")
            rows.append((f"net:{name}", _when(state, guest.network_at), result))
    if (shutdown := state.shutdown) is not None:
        rows.append(("shutdown", _when(state, shutdown.requested_at), "power button pressed"))
        guests = "stopped" if shutdown.guests_clean else f"destroyed: {shutdown.guests_detail}"
        rows.append(
            ("guests-stopped", _when(state, shutdown.guests_at), guests if shutdown.guests_at else "not reported")
        )
        off = "the machine is off" if shutdown.ok else f"failed: {shutdown.failure or 'not off'}"
        rows.append(("power-off", _when(state, shutdown.off_at), off))
    width = max(len(row[0]) for row in rows)
    return [f"  {label:<{width}}  {at:>8}  {result}" for label, at, result in rows]


def _when(state: SmokeState, at: float | None) -> str:
    return format_at(at, state.clock)


def verdict_line(state: SmokeState, serial_log: Path) -> str:
    skipped_names = ", ".join(f"{g.name} ({g.reason})" for g in state.skipped_guests)
    skipped = f"; skipped: {skipped_names}" if skipped_names else ""
    if state.passed:
        ready = sum(1 for g in state.guests.values() if g.state == "ready")
        summary = f"Xen, dom0, toolstack and {ready} guest(s) ready"
        if (shutdown := state.shutdown) is not None and shutdown.off_at is not None:
            off = shutdown.off_at - shutdown.requested_at
            summary += f", then guests stopped and the machine off {off:.1f} s after the power button"
        by = f"in {state.ended_at:.1f} s" if state.clock == "seconds" else f"by line {state.ended_at:.0f} of the log"
        return f"PASS: {summary} {by}{skipped}; serial log: {serial_log}"
    failed = ", ".join(f"{g.name} ({g.reason})" for g in state.failed_guests)
    network = ", ".join(f"{g.name} ({g.network_detail})" for g in state.network_failures)
    reasons = [
        r
        for r in (
            state.failure,
            f"failed guest(s): {failed}" if failed else "",
            f"network failed on: {network}" if network else "",
            f"shutdown: {state.shutdown.failure}" if state.shutdown and state.shutdown.failure else "",
        )
        if r
    ]
    return f"FAIL: {'; '.join(reasons)}{skipped}; serial log: {serial_log}"


def junit_xml(state: SmokeState, *, serial_tail: str, classname: str = "xenlive-smoke") -> ET.ElementTree[ET.Element]:
    """JUnit XML: one testcase per step and per guest (`guest:NAME`), and `shutdown` when one was asked for.
    Judged from a recorded serial log, every time is 0 and a property of the suite says why.

    A testcase's `time` is how long that stage took: for a step, seconds since the previous step
    (the first since power-on); for a guest, seconds from dom0's plan to its verdict. Steps and guests
    never reached fail with the reason the run ended; skipped guests are <skipped>.
    """
    suite = ET.Element("testsuite", name="xenlive-smoke", time=_duration(state, state.ended_at))
    if state.clock == "lines":
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="judged-from", value="a recorded serial log: no times (0)")
    previous = 0.0
    for step in STEPS:
        at = state.steps.get(step)
        end = at if at is not None else state.ended_at
        case = ET.SubElement(suite, "testcase", classname=classname, name=step, time=_duration(state, end - previous))
        if at is None:
            _add_failure(case, _unreached_message(state, step))
        previous = end
    for name in state.guest_names():
        _guest_case(suite, state, name, classname)
    if (shutdown := state.shutdown) is not None:
        case = _span_case(suite, state, "shutdown", classname, shutdown.requested_at, shutdown.off_at)
        if not shutdown.ok:
            _add_failure(case, shutdown.failure or "the machine did not power off")
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
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=_duration(state, finish - begin))


def _duration(state: SmokeState, seconds: float) -> str:
    """A testcase's time in seconds; 0 when judged from a recorded log, whose lines have no timestamps."""
    return f"{max(seconds, 0):.1f}" if state.clock == "seconds" else "0.0"


def _unreached_message(state: SmokeState, step: str) -> str:
    reason = state.failure or "the run ended"
    return reason if step == state.failed_step else f"not reached: {reason}"


def _add_failure(case: ET.Element, message: str) -> None:
    ET.SubElement(case, "failure", message=message).text = message


def write_junit(path: Path, state: SmokeState, *, iso: Path, serial_log: Path) -> None:
    """Write the JUnit XML of a run to `path` (complete or not at all); testcases are classed by ISO name."""
    tree = junit_xml(state, serial_tail=serial_tail(serial_log), classname=f"xenlive-smoke.{iso.stem}")
    ET.indent(tree)
    with replacing(path) as partial:
        tree.write(partial, encoding="utf-8", xml_declaration=True)


def serial_tail(serial_log: Path, lines: int = JUNIT_TAIL_LINES) -> str:
    """The last lines of the serial log, cleaned of escapes and control characters (XML cannot hold them)."""
    try:
        raw = serial_log.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(clean_line(line) for line in raw.split("\n")[-lines:])


@contextmanager
def replacing(path: Path, *, even_on_error: bool = False) -> Iterator[Path]:
    """fsutil.atomic_path, with a file that cannot be made there reported as a XenliveError naming `path`."""
    with contextlib.ExitStack() as stack:
        try:
            partial = stack.enter_context(atomic_path(path, even_on_error=even_on_error))
        except OSError as exc:
            raise XenliveError(f"cannot write {path}: {exc.strerror}") from exc
        yield partial
