"""The smoke runner with QEMU replaced by a small process (sh, cat, tests/fake_qemu_qmp.py): the verdict,
the serial log, JUnit, a timeout, an interrupt, the power button, the medium and firmware asked for."""

from __future__ import annotations

import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.test_smoke import RUNIT, SERIAL, STOPPED, cases, failure_message
from xenlive.smoke import (
    SmokeOptions,
    run_smoke,
)
from xenlive.smoke import run as smoke_run

pytestmark = pytest.mark.tools


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def fake_qemu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    """Make run_smoke start argv[0] of the list it is given instead of QEMU; returns that list."""
    commands: list[list[str]] = []
    monkeypatch.setattr(smoke_run, "require_tools", lambda names: None)
    monkeypatch.setattr(smoke_run, "resolve_accel", lambda accel: "tcg")
    monkeypatch.setattr(smoke_run, "qemu_argv", lambda spec: commands[0])
    return commands


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    path = tmp_path / "demo.iso"
    path.write_bytes(b"\0" * 32769 + b"CD001" + b"\0" * 2043)  # an ISO 9660 signature and nothing else
    return path


def test_run_smoke_passes_on_a_passing_console_and_keeps_every_byte(fake_qemu: list[list[str]], iso: Path) -> None:
    transcript = SERIAL / RUNIT
    fake_qemu.append(["cat", str(transcript)])
    echoed: list[str] = []
    report = run_smoke(iso, SmokeOptions(10), echo=echoed.append)
    assert report.passed
    assert [(g.state, g.network) for g in report.guests] == [("ready", "ok")]
    assert report.serial_log == iso.with_name("demo.serial.log")
    assert report.serial_log.read_bytes() == transcript.read_bytes()
    assert any("xen         Xen 4.17.7 booted" in line for line in echoed)
    assert echoed[-1].startswith("PASS: ")


def test_run_smoke_passes_the_systemd_era_console_too(fake_qemu: list[list[str]], iso: Path) -> None:
    fake_qemu.append(["cat", str(SERIAL / "pass-2-guests.txt")])
    report = run_smoke(iso, SmokeOptions(10), echo=lambda line: None)
    assert [g.state for g in report.guests] == ["ready", "ready"] and report.passed


def test_run_smoke_fails_at_once_on_a_panic_and_writes_junit(fake_qemu: list[list[str]], iso: Path) -> None:
    fake_qemu.append(["sh", "-c", f"cat {SERIAL / 'kernel-panic.txt'}; exec sleep 30"])
    junit = iso.with_name("junit.xml")
    started = time.monotonic()
    report = run_smoke(iso, SmokeOptions(60, junit=junit, accel="tcg"), echo=lambda line: None)
    assert time.monotonic() - started < 10
    assert not report.passed
    assert report.state.failure is not None and report.state.failure.startswith("Kernel panic")
    assert (failure_message(cases(ET.parse(junit))["dom0"]) or "").startswith("Kernel panic")


def test_run_smoke_reports_qemu_exiting_early(fake_qemu: list[list[str]], iso: Path) -> None:
    fake_qemu.append(["sh", "-c", "echo 'qemu-system-x86_64: cannot set up guest memory' >&2; exit 1"])
    report = run_smoke(iso, SmokeOptions(10, accel="tcg"), echo=lambda line: None)
    assert report.state.failure == (
        "QEMU exited (code 1) while waiting for step xen; "
        "its last output: qemu-system-x86_64: cannot set up guest memory"
    )


def test_run_smoke_times_out_and_stops_a_silent_machine(fake_qemu: list[list[str]], iso: Path) -> None:
    pid_file = iso.with_name("pid")
    fake_qemu.append(["sh", "-c", f"echo $$ > {pid_file}; printf 'no newline yet'; exec sleep 30"])
    log = iso.with_name("custom.log")
    report = run_smoke(iso, SmokeOptions(1, serial_log=log, accel="tcg"), echo=lambda line: None)
    assert report.state.failure == "timeout after 1 s waiting for step xen"
    assert log.read_bytes() == b"no newline yet"
    assert not pid_alive(int(pid_file.read_text()))


def test_run_smoke_stops_the_machine_and_writes_junit_when_interrupted(fake_qemu: list[list[str]], iso: Path) -> None:
    pid_file = iso.with_name("pid")
    fake_qemu.append(["sh", "-c", f"echo $$ > {pid_file}; cat {SERIAL / 'pass-2-guests.txt'}; exec sleep 30"])
    junit = iso.with_name("junit.xml")

    def echo(line: str) -> None:
        if "dom0-kernel" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_smoke(iso, SmokeOptions(60, junit=junit, accel="tcg"), echo=echo)
    assert not pid_alive(int(pid_file.read_text()))
    assert cases(ET.parse(junit))["dom0"].find("failure") is not None
    assert "interrupted" in ET.tostring(ET.parse(junit).getroot(), encoding="unicode")
    assert iso.with_name("demo.serial.log").exists()


def test_run_smoke_presses_the_power_button_and_waits_for_the_machine_to_go_off(
    monkeypatch: pytest.MonkeyPatch, iso: Path
) -> None:
    """QEMU replaced by tests/fake_qemu_qmp.py, which serves QMP on the socket of the QEMU command line."""
    fake = Path(__file__).parent.parent / "fake_qemu_qmp.py"
    transcript = SERIAL / "pass-2-guests.txt"
    monkeypatch.setattr(smoke_run, "require_tools", lambda names: None)
    monkeypatch.setattr(smoke_run, "resolve_accel", lambda accel: "tcg")
    monkeypatch.setattr(
        smoke_run, "qemu_argv", lambda spec: [sys.executable, str(fake), str(spec.qmp), str(transcript), *STOPPED]
    )
    junit = iso.with_name("junit.xml")
    report = run_smoke(iso, SmokeOptions(30, junit=junit, shutdown=True), echo=lambda line: None)
    assert report.passed, report.state.shutdown
    assert report.state.shutdown is not None and report.state.shutdown.off_at is not None
    assert cases(ET.parse(junit))["shutdown"].find("failure") is None


def test_run_smoke_boots_the_medium_and_firmware_asked_for(monkeypatch: pytest.MonkeyPatch, iso: Path) -> None:
    specs = []

    def argv(spec: object) -> list[str]:
        specs.append(spec)
        return ["cat", str(SERIAL / "pass-2-guests.txt")]

    monkeypatch.setattr(smoke_run, "require_tools", lambda names: None)
    monkeypatch.setattr(smoke_run, "resolve_accel", lambda accel: "tcg")
    monkeypatch.setattr(smoke_run, "qemu_argv", argv)
    echoed: list[str] = []
    assert run_smoke(iso, SmokeOptions(10, uefi=True, usb=True), echo=echoed.append).passed
    spec = specs[0]
    assert (spec.uefi, spec.usb) == (True, True)
    assert spec.ovmf is not None and not spec.ovmf.vars.exists()  # a private copy, removed afterwards
    assert "UEFI, USB stick" in echoed[0]
