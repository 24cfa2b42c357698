"""Smoke test: boot an ISO headless and follow its serial console until it passes, fails or times out.

The booted system reports progress on the serial port (Xen's com1):
  (XEN) Xen version 4.17.5-...                 -> step "xen" (Xen 4.20 at loglvl=warning: its first (XEN) line)
  (XEN) *** Serial input to DOM0 ...           -> step "dom0-kernel" (or dom0's kernel's `Linux version` line)
  xenlive-status: dom0 up 6.12.118+deb13-amd64 -> step "dom0"
  xenlive-status: toolstack up xen=... hvm=... -> step "toolstack"
  xenlive-status: network failed REASON        -> dom0 could not make the guests' bridge: FAIL
  xenlive-status: plan guests=a,b network=yes  -> the guests dom0 will start, and whether they have a network
  xenlive-status: guest NAME created|ready|failed REASON|skipped REASON
  xenlive-status: guest NAME network ok DETAIL|failed REASON  -> the guest's network checks (after ready)
  xenlive-status: guests done ready=N failed=M
  [NAME] ...                                   -> a guest's console line, forwarded by dom0
Kernel panics, Xen panics and dom0 crashes fail the run at once. The lines dom0 and the guests print are
written down in docs/console-protocol.md.

Status lines count only as dom0 writes them, whole at the start of a serial line; a guest's forwarded
line (`[NAME] ...`) can never report a status. The manifest beside the ISO says what to expect (the
autostart guests, whether they have a network); without one, dom0's plan does.

Parsing (`parse_line`) and bookkeeping (`SmokeState`) are pure; `run_smoke` drives QEMU, or judges a
recorded serial log (`judge_log`, `smoke --from-log`).

The package: smoke/console.py parses lines, smoke/state.py keeps the state, smoke/report.py writes what a
run reports, smoke/run.py runs QEMU.
"""

from __future__ import annotations

from xenlive.smoke.console import (
    Event,
    Fatal,
    GuestNetwork,
    GuestOutput,
    GuestsDone,
    GuestStatus,
    Plan,
    StepReached,
    XenMessage,
    clean_line,
    parse_line,
)
from xenlive.smoke.report import (
    SmokeReport,
    junit_xml,
    serial_tail,
    timeline_header,
    timeline_lines,
    verdict_line,
    write_junit,
)
from xenlive.smoke.run import SerialReader, SmokeOptions, feed_log, judge_log, run_smoke
from xenlive.smoke.state import (
    REQUIRED_STEPS,
    STEPS,
    GuestVerdict,
    Milestone,
    SmokeState,
    describe_step,
    expected_guests,
    expected_network,
    format_at,
    state_for,
)

__all__ = [
    "REQUIRED_STEPS",
    "STEPS",
    "Event",
    "Fatal",
    "GuestNetwork",
    "GuestOutput",
    "GuestStatus",
    "GuestVerdict",
    "GuestsDone",
    "Milestone",
    "Plan",
    "SerialReader",
    "SmokeOptions",
    "SmokeReport",
    "SmokeState",
    "StepReached",
    "XenMessage",
    "clean_line",
    "describe_step",
    "expected_guests",
    "expected_network",
    "feed_log",
    "format_at",
    "judge_log",
    "junit_xml",
    "parse_line",
    "run_smoke",
    "serial_tail",
    "state_for",
    "timeline_header",
    "timeline_lines",
    "verdict_line",
    "write_junit",
]
