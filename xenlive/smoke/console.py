"""The serial console, line by line: parse_line() turns one line into the event it reports (pure).

The lines themselves are written down in docs/console-protocol.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

GuestReport = Literal["created", "ready", "failed", "skipped"]


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
class GuestsStopping:
    """dom0 shuts its guests down (its own shutdown has begun)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class GuestsStopped:
    """dom0's guests are gone: each shut down cleanly (`clean`), or some were destroyed after a time limit."""

    clean: bool
    detail: str = ""


@dataclass(frozen=True)
class Dom0Reboots:
    """Xen restarts the machine because dom0 rebooted."""

    text: str


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

    @property
    def panic(self) -> str | None:
        """The guest kernel's panic message, when this line is one."""
        found = _KERNEL_PANIC.search(self.text)
        return found[0] if found else None


Event = (
    StepReached
    | Plan
    | GuestStatus
    | GuestNetwork
    | GuestsDone
    | GuestsStopping
    | GuestsStopped
    | Dom0Reboots
    | Fatal
    | XenMessage
    | GuestOutput
)

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\^_=>])")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_XEN_VERSION = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?Xen version (\S+)")
_XEN_PANIC = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?(Panic on CPU \d+)")
_XEN_LINE = re.compile(r"\(XEN\)\s+(?:\[[^\]]*\]\s*)?(.*)")
_DOM0_REBOOT = re.compile(r"\(XEN\).*(Hardware Dom0 shutdown: rebooting machine.*)")
_DOM0_CRASH = re.compile(r"\(XEN\).*(Hardware Dom0 (?:crashed|halted|shutdown).*)")
_KERNEL_PANIC = re.compile(r"Kernel panic - not syncing:?.*")
# dom0's kernel's first line (a guest's comes prefixed with its name): where Xen 4.20 at loglvl=warning, which
# prints neither its banner nor "Serial input to DOM0", has handed over.
_LINUX_VERSION = re.compile(r"^\[\s*[0-9.]+\]\s+Linux version (\S+)")
_STATUS = re.compile(r"xenlive-status: (\S+)\s*(.*)")
_GUEST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
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
    if reboot := _DOM0_REBOOT.search(text):
        return Dom0Reboots(f"Xen: {reboot[1]}")
    if crash := _DOM0_CRASH.search(text):
        return Fatal("dom0", f"Xen: {crash[1]}")
    if (line := _XEN_LINE.search(text)) and line[1].strip("* "):
        return XenMessage(line[1].strip())
    return None


def _parse_kernel(text: str) -> Event | None:
    if panic := _KERNEL_PANIC.search(text):
        return Fatal("dom0", panic[0])
    if _LINUX_VERSION.search(text):
        return StepReached("dom0-kernel")
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
    if subject == "guests" and state in ("stopping", "stopped", "destroyed"):
        if state == "stopping":
            return GuestsStopping(tuple(name for name in detail.split() if _GUEST_NAME.fullmatch(name)))
        return GuestsStopped(state == "stopped", detail)
    return None
