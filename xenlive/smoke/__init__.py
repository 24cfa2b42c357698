"""Smoke test: boot an ISO headless and follow its serial console until it passes, fails or times out.

The booted system reports progress on the serial port (Xen's com1):
  (XEN) Xen version 4.17.5-...                 -> step "xen" (Xen 4.20 at loglvl=warning: its first (XEN) line)
  (XEN) *** Serial input to DOM0 ...           -> step "dom0-kernel" (or dom0's kernel's `Linux version` line)
  xenlive-status: dom0 up 6.12.118+deb13-amd64 -> step "dom0"
  xenlive-status: toolstack up xen=... hvm=... -> step "toolstack"
  xenlive-status: plan guests=a,b network=yes  -> the guests dom0 will start, and whether they have a network
  xenlive-status: guest NAME created|ready|failed REASON|skipped REASON
  xenlive-status: guest NAME network ok DETAIL|failed REASON  -> the guest's network checks (after ready)
  xenlive-status: guests done ready=N failed=M
  [NAME] ...                                   -> a guest's console line, forwarded by dom0
Kernel panics, Xen panics and dom0 crashes fail the run at once. The lines dom0 and the guests print are
written down in docs/console-protocol.md.

Parsing (`parse_line`) and bookkeeping (`SmokeState`) are pure; `run_smoke` drives QEMU.

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
from xenlive.smoke.report import SmokeReport, junit_xml, serial_tail, timeline_lines, verdict_line, write_junit
from xenlive.smoke.run import SerialReader, SmokeOptions, run_smoke
from xenlive.smoke.state import (
    REQUIRED_STEPS,
    STEPS,
    GuestVerdict,
    Milestone,
    SmokeState,
    describe_step,
    expected_guests,
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
    "junit_xml",
    "parse_line",
    "run_smoke",
    "serial_tail",
    "timeline_lines",
    "verdict_line",
    "write_junit",
]
