"""The serial console, line by line: parse_line() turns one line into the event it reports (pure).

The lines themselves are written down in docs/console-protocol.md. A status line counts only as dom0
writes it: whole, at the start of the raw serial line (the `\r`s the consoles add at its end aside). A
guest's console line is forwarded by dom0 as `[NAME] text`: everything from that prefix on is the
guest's, and can report only on that guest's own console (its kernel panic), never a status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, cast

from xenlive.contract import CONTRACT, STATUS

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
    # Bytes of the forwarded line on the serial port, from its `[NAME]` prefix on.
    size: int = field(default=0, compare=False)

    @property
    def split(self) -> bool:
        """The line is as long as a write can be: it may have reached the port in pieces, its rest on a later
        line of its own, where nothing tells it from dom0's."""
        return self.size >= WRITE_SIZE

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
_STATUS = re.compile(re.escape(CONTRACT.STATUS_PREFIX) + r" ([a-z0-9]+) ?([ -~]*)")  # printable ASCII only
_GUEST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_GUEST_PREFIX = re.compile(r"\[([a-z0-9][a-z0-9-]{0,30})\] ?")
# bash writes a line longer than its 1024-byte output buffer in several writes, between which another
# process's line can reach the console; xenlive-console forwards each line in one write, cut to
# CONTRACT.GUEST_LINE_MAX bytes, so a forwarded line this long was not written whole.
WRITE_SIZE = 1024
_GUEST_STATUS = re.compile(r"(\S+) (created|ready|failed|skipped)\b\s*(.*)")
_GUEST_NETWORK = re.compile(r"(\S+) network (ok|failed)\b\s*(.*)")
_GUESTS_DONE = re.compile(r"done ready=(\d+) failed=(\d+)")


def clean_line(raw: str) -> str:
    """What a terminal would show of one serial line: no ANSI escapes, no \\r overwrites, no controls."""
    segments = [s for s in raw.split("\r") if s.strip()]
    text = segments[-1] if segments else ""
    return _CONTROL.sub("", _ANSI.sub("", text)).strip()


# dom0's login shell on its console prints its prompt without a newline (bash's bracketed-paste switch
# first), so the next line dom0 writes follows it on the same serial line. Only dom0 starts a serial line
# (each guest line is forwarded whole behind its `[NAME] `), so a prompt there is dom0's own.
_DOM0_PROMPT = re.compile(r"(?:\x1b\[\?2004[hl])?[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[~/A-Za-z0-9_.-]*[#$] ")
# systemd in dom0 clears its status line (`\r`, `ESC[K`) before the next console line, which then follows on
# the same serial line: at the start of a serial line, that too is dom0's own output.
_DOM0_CLEAR = re.compile(r"(?:\r|\x1b\[[0-2]?K)+")


def parse_line(line: str) -> Event | None:
    """The event one raw serial line (without its `\n`) reports, or None for ordinary boot noise."""
    if clear := _DOM0_CLEAR.match(line):
        line = line[clear.end() :]
    if prompt := _DOM0_PROMPT.match(line):
        line = line[prompt.end() :]
    body = line.rstrip("\r")
    if body.startswith(CONTRACT.STATUS_PREFIX):
        status = _STATUS.fullmatch(body)  # the whole line, no \r overwrite, no escape, no control character
        return _parse_status(status[1], status[2].strip()) if status else None
    if guest := _find_guest(line):
        return guest
    guest_at = _GUEST_PREFIX.search(line)
    text = clean_line(line[: guest_at.start()] if guest_at else line)  # dom0's text before any guest's
    if not text:
        return None
    return _parse_xen(text) or _parse_kernel(text)


def _find_guest(line: str) -> GuestOutput | None:
    """The guest's line forwarded by dom0: `[NAME] ` at the start, after at most escapes and controls that
    dom0's own console output (systemd's status) leaves there."""
    for found in _GUEST_PREFIX.finditer(line):
        if clean_line(line[: found.start()]):
            return None  # other text first: not a forwarded line's start
        rest = line[found.start() :].rstrip("\r")
        return GuestOutput(found[1], clean_line(line[found.end() :]), len(rest.encode("utf-8", errors="replace")))
    return None


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


def _in_contract(subject: str, rest: str) -> bool:
    """The line's subject and state are among contract.STATUS (a guest's state follows its name)."""
    words = rest.split(" ")
    state = words[1] if subject == "guest" and len(words) > 1 else words[0]
    return any(state == known or (known.endswith("=") and state.startswith(known)) for known in STATUS.get(subject, ()))


def _parse_status(subject: str, rest: str) -> Event | None:
    state, _, detail = rest.partition(" ")
    if not _in_contract(subject, rest):
        return None
    if subject == "network":  # dom0 could not make the guests' bridge; its plan then says network=no
        return Fatal("network", f"network failed: {detail or 'no reason given'}")
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
