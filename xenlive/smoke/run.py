"""Running a smoke test: QEMU headless, its serial output read line by line into a SmokeState until the
run passes, fails or times out; QEMU is always stopped. Or, without booting, a recorded serial log fed
into the same SmokeState (`smoke --from-log`)."""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from xenlive.errors import XenliveError
from xenlive.manifest import find_manifest, manifest_path
from xenlive.qemu import (
    QEMU,
    Accel,
    AccelChoice,
    Firmware,
    QemuSpec,
    check_iso,
    machine_size,
    ovmf_copy,
    press_power_button,
    qemu_argv,
    resolve_accel,
    running_qemu,
    stop_process,
)
from xenlive.run import require_tools, terminate_as_interrupt
from xenlive.smoke.report import SmokeReport, replacing, timeline_header, timeline_lines, verdict_line, write_junit
from xenlive.smoke.state import Milestone, SmokeState, state_for

log = logging.getLogger(__name__)

# Seconds of serial output still read after a failure, so the log holds e.g. the reason of a Xen panic.
FAILURE_DRAIN = 1.5
# Seconds from the power button to the machine being off: dom0 gives its guests 60 s to shut down
# (xenlive-boot stop), then stops its own services and powers off.
SHUTDOWN_LIMIT = 180.0


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
    shutdown: bool = False  # then press the power button: dom0 must stop its guests and power the machine off
    uefi: bool = False  # boot with UEFI firmware (OVMF) instead of BIOS
    usb: bool = False  # boot the ISO as a USB stick instead of a CD
    from_log: Path | None = None  # judge this recorded serial log instead of booting (no times: its line numbers)
    cpu: str | None = None  # QEMU CPU model (None: the best for the accelerator)
    memory: int | None = None  # MiB (None: the recipe's machine.memory, from the manifest beside the ISO)
    smp: int | None = None  # vCPUs (None: the recipe's machine.vcpus)

    def spec(
        self, iso: Path, *, accel: Accel, machine: tuple[int, int], ovmf: Firmware | None, qmp: Path | None
    ) -> QemuSpec:
        """The headless machine these options ask for, once the accelerator is known: `machine` is the
        (memory, vCPUs) the ISO was built for, taken where the options say nothing."""
        memory, smp = machine
        return QemuSpec(
            iso=iso,
            accel=accel,
            cpu=self.cpu,
            memory=self.memory or memory,
            smp=self.smp or smp,
            headless=True,
            uefi=self.uefi,
            usb=self.usb,
            ovmf=ovmf,
            qmp=qmp,
        )


def run_smoke(iso: Path, options: SmokeOptions, *, echo: Callable[[str], None]) -> SmokeReport:
    """Boot `iso` headless under QEMU and follow its serial console; the report says whether it passed.

    QEMU is always stopped before this returns or raises; the serial log (and JUnit XML, if asked)
    is written even when the run fails or is interrupted.
    """
    if options.from_log is not None:
        return judge_log(iso, options.from_log, options, echo=echo)
    with terminate_as_interrupt():  # SIGTERM (a CI job's timeout) and SIGHUP stop QEMU as Ctrl-C does
        return _boot(iso, options, echo=echo)


def _boot(iso: Path, options: SmokeOptions, *, echo: Callable[[str], None]) -> SmokeReport:
    if not iso.is_file():
        raise XenliveError(f"{iso}: no such ISO")
    check_iso(iso)
    require_tools([QEMU])
    timeout, junit = options.timeout, options.junit
    log_path = options.serial_log or iso.with_name(iso.name.removesuffix(".iso") + ".serial.log")
    state = state_for(find_manifest(iso))
    chosen = resolve_accel(options.accel)
    machine = machine_size(iso)
    memory, smp = options.memory or machine[0], options.smp or machine[1]
    medium = f"{'UEFI' if options.uefi else 'BIOS'}, {'USB stick' if options.usb else 'CD'}"
    echo(f"smoke: booting {iso} ({chosen}, {smp} vCPU(s), {memory} MiB, {medium}), timeout {timeout:g} s")
    try:
        with tempfile.TemporaryDirectory(prefix="xenlive-smoke-") as tmp, ovmf_copy(options.uefi) as ovmf:
            qmp = Path(tmp) / "qmp" if options.shutdown else None
            spec = options.spec(iso, accel=chosen, machine=machine, ovmf=ovmf, qmp=qmp)
            _boot_and_watch(qemu_argv(spec), state, log_path, timeout, echo, qmp)
    except KeyboardInterrupt:
        state.fail(state.ended_at, "interrupted")
        raise
    finally:
        if junit is not None:
            write_junit(junit, state, iso=iso, serial_log=log_path)
    return _report(SmokeReport(iso=iso, state=state, serial_log=log_path, junit=junit, accel=chosen), echo)


def _report(report: SmokeReport, echo: Callable[[str], None]) -> SmokeReport:
    echo(timeline_header(report.state))
    for line in timeline_lines(report.state):
        echo(line)
    echo(verdict_line(report.state, report.serial_log))
    return report


def judge_log(iso: Path, serial_log: Path, options: SmokeOptions, *, echo: Callable[[str], None]) -> SmokeReport:
    """Judge a recorded serial log as a live run of `iso` would have: against the manifest beside the ISO (the
    ISO itself need not be there), line by line into the same SmokeState, up to a pass, or on to the log's
    end after a failure (what a live run read after it). The log has no timestamps: times are its line
    numbers. A log that ends undecided fails, saying what was still awaited."""
    if options.shutdown:
        raise XenliveError("--shutdown cannot be judged from a log: it does not record whether QEMU exited by itself")
    if not iso.is_file() and not manifest_path(iso).is_file():
        raise XenliveError(f"{iso}: no such ISO, and no manifest beside it ({manifest_path(iso).name})")
    try:
        raw = serial_log.read_bytes()
    except OSError as exc:
        raise XenliveError(f"cannot read the serial log {serial_log}: {exc.strerror}") from exc
    state = state_for(find_manifest(iso), clock="lines")
    echo(f"smoke: judging the serial log {serial_log} against {iso}'s manifest (no boot; times are line numbers)")
    lines = raw.decode("utf-8", errors="replace").split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the log's last line ended with its \n
    feed_log(state, lines, echo=lambda m: echo(m.shown("lines")))
    if options.junit is not None:
        write_junit(options.junit, state, iso=iso, serial_log=serial_log)
    return _report(SmokeReport(iso=iso, state=state, serial_log=serial_log, junit=options.junit, accel="none"), echo)


def feed_log(state: SmokeState, lines: list[str], *, echo: Callable[[Milestone], None] = lambda m: None) -> SmokeState:
    """Feed recorded serial lines into `state`, each at its line number (from 1), as a live run reads them."""
    number = 0
    for number, line in enumerate(lines, start=1):
        if state.passed:
            break
        for milestone in state.feed(float(number), line):
            echo(milestone)
    if not state.finished:
        for milestone in state.fail(
            float(number), f"the serial log ends (line {number}) while waiting for {state.waiting_for()}"
        ):
            echo(milestone)
    return state


def _boot_and_watch(
    argv: list[str],
    state: SmokeState,
    log_path: Path,
    timeout: float,
    echo: Callable[[str], None],
    qmp: Path | None = None,
) -> None:
    """Run QEMU until the state is decided; with `qmp`, once the boot passed, until the machine is off.

    The raw serial output, followed by any message of QEMU's own, goes to `log_path`.
    """
    with replacing(log_path, even_on_error=True) as partial, partial.open("wb") as sink:
        start = time.monotonic()
        with running_qemu(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            assert proc.stdout is not None
            reader = SerialReader(proc.stdout, sink)
            watch = _Watch(state, reader, start, echo)
            _watch_boot(watch, timeout, lambda: _exit_code(proc))
            if qmp is not None and state.booted:
                _watch_shutdown(watch, qmp, lambda: _exit_code(proc))
            stop_process(proc)
            reader.drain()


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(2)
    except subprocess.TimeoutExpired:
        return None


def _watch_shutdown(watch: _Watch, qmp: Path, exit_code: Callable[[], int | None]) -> None:
    """Press the power button and follow the console until QEMU exits by itself, or SHUTDOWN_LIMIT passes."""
    state = watch.state
    watch.show(state.begin_shutdown(watch.now()))
    try:
        press_power_button(qmp)
    except XenliveError as exc:
        watch.show(state.shutdown_failed(watch.now(), str(exc)))
        return
    deadline = watch.now() + SHUTDOWN_LIMIT
    shutdown = state.shutdown
    watch.read_until(deadline, stop=lambda: shutdown is not None and shutdown.finished)
    if watch.reader.eof:
        watch.show(state.powered_off(watch.now(), exit_code()))
    else:
        watch.show(state.shutdown_timed_out(watch.now(), SHUTDOWN_LIMIT))


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
