"""Real QEMU, kept short: a smoke run that must time out cleanly, and the real KVM probe."""

from __future__ import annotations

import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xenlive.qemu import probe_kvm, resolve_accel
from xenlive.smoke import SmokeOptions, run_smoke

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64"),
]


def qemu_processes_for(path: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(path)], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "qemu-system" in line]


def test_a_medium_that_does_not_boot_times_out_and_leaves_nothing_running(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"\0" * 32769 + b"CD001" + b"\0" * (2**20 - 32774))  # an ISO 9660 signature, nothing to boot
    junit = tmp_path / "junit.xml"
    echoed: list[str] = []

    started = time.monotonic()
    report = run_smoke(iso, SmokeOptions(3, junit=junit, accel="tcg"), echo=echoed.append)

    assert time.monotonic() - started < 15
    assert not report.passed
    assert report.state.failure == "timeout after 3 s waiting for step xen"
    assert echoed[-1].startswith("FAIL: timeout after 3 s") and echoed[-1].endswith(str(tmp_path / "x.serial.log"))
    assert (tmp_path / "x.serial.log").is_file()
    testcases = ET.parse(junit).getroot().findall("testcase")
    assert [case.get("name") for case in testcases] == ["xen", "dom0-kernel", "dom0", "toolstack"]
    for case in testcases:
        failure = case.find("failure")
        assert failure is not None and "timeout after 3 s" in failure.get("message", "")
    assert qemu_processes_for(iso) == []


def test_the_kvm_probe_answers_quickly_and_auto_always_finds_an_accelerator() -> None:
    started = time.monotonic()
    assert isinstance(probe_kvm(), bool)
    assert time.monotonic() - started < 10
    assert resolve_accel("auto") in ("kvm", "tcg")
