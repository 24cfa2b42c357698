"""SmokeState: everything the serial console told so far, as a timeline and a verdict per guest (pure)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from xenlive.manifest import BuildManifest
from xenlive.smoke.console import (
    Dom0Reboots,
    Event,
    Fatal,
    GuestNetwork,
    GuestOutput,
    GuestsDone,
    GuestsStopped,
    GuestsStopping,
    GuestStatus,
    Plan,
    StepReached,
    XenMessage,
    clean_line,
    parse_line,
)

log = logging.getLogger(__name__)

STEPS = ("xen", "dom0-kernel", "dom0", "toolstack")
REQUIRED_STEPS = ("xen", "dom0", "toolstack")
GuestState = Literal["pending", "created", "ready", "failed", "skipped"]
# What a run's times count: seconds from power-on, or (a recorded serial log, which has no timestamps) the
# number of the serial log's line, from 1.
Clock = Literal["seconds", "lines"]
VERDICTS = ("ready", "failed", "skipped")


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


@dataclass
class Shutdown:
    """The last part of a run that asked for it (`smoke --shutdown`): the machine's power button is pressed
    once every guest is ready; dom0 must shut its guests down cleanly, then power the machine off itself."""

    requested_at: float
    guests_at: float | None = None  # dom0 reported its guests gone
    guests_clean: bool = True  # every guest shut down by itself (none destroyed after dom0's time limit)
    guests_detail: str = ""
    off_at: float | None = None  # QEMU exited: the machine is off
    failure: str | None = None
    stopping_seen: bool = False

    @property
    def ok(self) -> bool:
        return self.off_at is not None and self.failure is None

    @property
    def finished(self) -> bool:
        return self.off_at is not None or self.failure is not None


@dataclass(frozen=True)
class Milestone:
    """One line of progress worth showing: seconds from power-on, a label, what happened."""

    at: float
    label: str
    text: str

    def __str__(self) -> str:
        return f"{self.at:6.1f}s  {self.label:<11} {self.text}"

    def shown(self, clock: Clock) -> str:
        return str(self) if clock == "seconds" else f"line {self.at:5.0f}  {self.label:<11} {self.text}"


@dataclass
class SmokeState:
    """Everything learnt from the serial console so far: the timeline and each guest's verdict.

    `expected_guests` are the autostart guests of the manifest beside the ISO (None: no manifest);
    dom0's plan must name the same guests. `expected_network` is whether the recipe enabled the guests'
    network (None: no manifest, or one too old to say): then every ready guest must pass its network
    checks, whatever dom0 plans; without it, dom0's plan says.
    """

    expected_guests: tuple[str, ...] | None = None
    expected_network: bool | None = None
    clock: Clock = "seconds"
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds from power-on
    details: dict[str, str] = field(default_factory=dict)
    planned: tuple[str, ...] | None = None
    plan_at: float | None = None
    network: bool = False  # the guests have a network: every ready guest must pass its network checks
    guests: dict[str, GuestVerdict] = field(default_factory=dict)
    failure: str | None = None
    failed_step: str | None = None
    shutdown: Shutdown | None = None  # asked for, and begun once the boot passed
    ended_at: float = 0.0
    last_output: str = ""
    after_xen_panic: bool = field(default=False, init=False, repr=False)
    untrusted: bool = field(default=False, init=False)  # a guest's line was split: no later line counts

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
    def booted(self) -> bool:
        """Xen, dom0, its toolstack and every planned guest came up, and every network check passed."""
        return (
            self.failure is None
            and all(step in self.steps for step in REQUIRED_STEPS)
            and self.all_guests_decided
            and not self.failed_guests
            and not self.network_failures
        )

    @property
    def passed(self) -> bool:
        return self.booted and (self.shutdown is None or self.shutdown.ok)

    @property
    def failed(self) -> bool:
        bad = bool(self.failed_guests or self.network_failures)
        shutdown_failed = self.shutdown is not None and self.shutdown.failure is not None
        return self.failure is not None or (self.all_guests_decided and bad) or shutdown_failed

    @property
    def finished(self) -> bool:
        """The boot is decided (what a shutdown, if asked for, comes after)."""
        return self.booted or self.failed

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
        if self.untrusted:
            return []
        if isinstance(event, XenMessage):
            return self._xen_message(at, event)
        self.after_xen_panic = False
        if self.shutdown is not None:
            return self._shutting_down(at, event)
        if isinstance(event, Dom0Reboots):
            return self.fail(at, f"dom0 rebooted ({event.text})")
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
        if isinstance(event, GuestOutput):
            log.debug("guest %s: %s", event.name, event.text)
            if event.split:
                self.untrusted = True
                return self.fail(
                    at,
                    f"guest {event.name}'s console line reached the serial port {event.size} bytes long, too long "
                    "to have been written whole: its rest, on a line of its own, could pose as dom0's status "
                    "line, so no later line can be trusted (xenlive-console must forward each line in one write)",
                )
            if event.panic is not None and self.guests.get(event.name, GuestVerdict(event.name)).state not in VERDICTS:
                # Its console says why at once; dom0 reports the crashed domain a moment later.
                return self._guest(at, GuestStatus(event.name, "failed", f"kernel panic: {event.panic}"))
        return []  # dom0 stopping guests before the boot passed: not its shutdown, which is not asked yet

    def fail(self, at: float, reason: str) -> list[Milestone]:
        """End the run as failed; the first failure is the one reported, against the step it waited for."""
        if self.failure is not None:
            return []
        self.failure = reason
        self.failed_step = next((step for step in STEPS if step not in self.steps), None)
        self.ended_at = max(self.ended_at, at)
        return [Milestone(at, "FAIL", reason)]

    # -- the shutdown, once the boot passed

    def begin_shutdown(self, at: float) -> list[Milestone]:
        self.shutdown = Shutdown(requested_at=at)
        self.ended_at = max(self.ended_at, at)
        return [Milestone(at, "shutdown", "power button pressed")]

    def powered_off(self, at: float, code: int | None) -> list[Milestone]:
        """QEMU exited during the shutdown: the machine powered itself off (or failed on the way)."""
        shutdown = self._shutdown_in_progress()
        if shutdown is None:
            return []
        self.ended_at = max(self.ended_at, at)
        if shutdown.guests_at is None and self.planned:
            return self.shutdown_failed(at, "the machine went off without dom0 reporting its guests stopped")
        if code not in (0, None):
            return self.shutdown_failed(at, f"QEMU exited with code {code}")
        shutdown.off_at = at
        return [Milestone(at, "power-off", f"the machine is off, {at - shutdown.requested_at:.1f} s after the button")]

    def shutdown_timed_out(self, at: float, limit: float) -> list[Milestone]:
        shutdown = self._shutdown_in_progress()
        waiting = "dom0 to stop its guests" if shutdown is not None and shutdown.guests_at is None else "power-off"
        return self.shutdown_failed(at, f"no power-off {limit:g} s after the power button (waiting for {waiting})")

    def shutdown_failed(self, at: float, reason: str) -> list[Milestone]:
        shutdown = self._shutdown_in_progress()
        if shutdown is None:
            return []
        shutdown.failure = reason
        self.ended_at = max(self.ended_at, at)
        return [Milestone(at, "FAIL", f"shutdown: {reason}")]

    def _shutdown_in_progress(self) -> Shutdown | None:
        return self.shutdown if self.shutdown is not None and not self.shutdown.finished else None

    def _shutting_down(self, at: float, event: Event) -> list[Milestone]:
        shutdown = self._shutdown_in_progress()
        if shutdown is None:
            return []
        if isinstance(event, GuestsStopping):
            if shutdown.stopping_seen:
                return []  # dom0 may print a status line twice (console and log)
            shutdown.stopping_seen = True
            return [Milestone(at, "shutdown", f"dom0 stops guest(s) {', '.join(event.names)}")]
        if isinstance(event, GuestsStopped):
            if shutdown.guests_at is not None:
                return []
            shutdown.guests_at, shutdown.guests_clean, shutdown.guests_detail = at, event.clean, event.detail
            if not event.clean:
                return self.shutdown_failed(at, f"guests destroyed: {event.detail}")
            return [Milestone(at, "shutdown", "guests stopped")]
        if isinstance(event, Dom0Reboots):
            return self.shutdown_failed(at, f"dom0 rebooted instead of powering off ({event.text})")
        if isinstance(event, Fatal) and event.source != "dom0":
            return self.shutdown_failed(at, event.reason)
        if isinstance(event, Fatal) and "Kernel panic" in event.reason:
            return self.shutdown_failed(at, event.reason)
        return []  # Xen's "Hardware Dom0 halted" is what a power-off looks like from Xen

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
        network = event.network if self.expected_network is None else self.expected_network
        self.planned, self.plan_at, self.network = event.guests, at, network
        for name in event.guests:
            guest = self.guests.setdefault(name, GuestVerdict(name))
            if network and guest.network == "none":
                guest.network = "pending"
        shown = (", ".join(event.guests) or "no guests") + (" (with network)" if event.network else "")
        notes = [Milestone(at, "plan", shown)]
        if self.expected_network is not None and event.network != self.expected_network:
            said = "enables" if self.expected_network else "disables"
            notes += self.fail(
                at,
                f"dom0 plans its guests {'with' if event.network else 'without'} a network but the recipe "
                f"{said} it (the manifest beside the ISO)",
            )
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

    def _xen_message(self, at: float, event: XenMessage) -> list[Milestone]:
        if self.after_xen_panic and self.failure is not None:
            self.failure = f"{self.failure}: {event.text}"
            self.after_xen_panic = False
        if "xen" not in self.steps:
            # Xen 4.20 at loglvl=warning prints no banner: its first message says it runs, of no version.
            self.steps["xen"] = at
            self.details["xen"] = ""
            return [Milestone(at, "xen", describe_step("xen", ""))]
        return []


def describe_step(step: str, detail: str) -> str:
    if step == "xen":
        return f"Xen {detail} booted" if detail else "Xen booted"
    if step == "dom0-kernel":
        return "Xen handed over to the dom0 kernel"
    if step == "dom0":
        return f"dom0 up (kernel {detail})" if detail else "dom0 up"
    return f"toolstack up ({detail})" if detail else "toolstack up"


def expected_guests(manifest: BuildManifest | None) -> tuple[str, ...] | None:
    """Names of the autostart guests in a build manifest; None when there is no manifest or no guest list."""
    return manifest.autostart_guests() if manifest is not None else None


def expected_network(manifest: BuildManifest | None) -> bool | None:
    """Whether the recipe of a build enabled the guests' network; None when its manifest does not say."""
    return manifest.network.enabled if manifest is not None and manifest.network is not None else None


def state_for(manifest: BuildManifest | None, clock: Clock = "seconds") -> SmokeState:
    """A fresh state that judges a boot against what the build's manifest expects (None: dom0's plan alone)."""
    return SmokeState(
        expected_guests=expected_guests(manifest), expected_network=expected_network(manifest), clock=clock
    )


def format_at(at: float | None, clock: Clock) -> str:
    """When something happened: `12.3 s` (from power-on) or `line 467` (of a recorded log); `-` for never."""
    if at is None:
        return "-"
    return f"{at:.1f} s" if clock == "seconds" else f"line {at:.0f}"
