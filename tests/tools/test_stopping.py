"""Stopping xenlive as CI systems and terminals do: SIGTERM (a job's timeout, `kill`), SIGHUP (a closed terminal).

`smoke` and `boot` run with QEMU replaced on PATH by a long-running fake, and must leave no QEMU behind (QEMU
runs in a session of its own: before, it ran on under PID 1). A build, played by a child process that runs a
fake slow tool the way the pipeline runs mmdebstrap (parallel.Together, run.run, a cache entry being built),
must end within 5 s of SIGTERM: the tool's whole process group is stopped (before, the tool alone got SIGTERM
and waited for its own child, as mmdebstrap waits for apt and dpkg), the tool still cleans up, and no cache
entry or work directory is left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]

# Stands in for qemu-system-x86_64: says where it runs, prints a line of firmware, then runs until it is killed.
FAKE_QEMU = """#!/bin/sh
echo $$ >> "$FAKE_QEMU_PIDS"
{trap}
echo "SeaBIOS (version fake)"
while :; do sleep 1; done
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie that its parent has not reaped (it cannot be ours: xenlive was its parent) is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_left(pid: int) -> None:
    """A test that fails leaves nothing running: the process, and its group where it leads one."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def fake_qemu_dir(tmp_path: Path) -> Iterator[Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    yield bin_dir


def install_fake_qemu(bin_dir: Path, *, ignores_sigterm: bool = False) -> None:
    qemu = bin_dir / "qemu-system-x86_64"
    qemu.write_text(FAKE_QEMU.format(trap="trap '' TERM HUP" if ignores_sigterm else ""))
    qemu.chmod(0o755)


def iso_in(tmp_path: Path) -> Path:
    iso = tmp_path / "demo.iso"
    iso.write_bytes(b"\0" * 32769 + b"CD001" + b"\0" * 2043)
    return iso


def start_xenlive(tmp_path: Path, bin_dir: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    pids = tmp_path / "qemu.pids"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "FAKE_QEMU_PIDS": str(pids),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "xenlive.cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc, pids


def qemu_pids(pids: Path) -> list[int]:
    return [int(line) for line in pids.read_text().split()] if pids.exists() else []


def stop_and_check(proc: subprocess.Popen[bytes], pids: Path, signals: list[signal.Signals], limit: float) -> str:
    assert wait_for(lambda: qemu_pids(pids), 20), "the fake QEMU never started"
    time.sleep(0.3)  # xenlive is now reading its console
    started = time.monotonic()
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.05)
    try:
        out, _ = proc.communicate(timeout=limit + 5)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.monotonic() - started
    output = out.decode(errors="replace")
    left = [pid for pid in qemu_pids(pids) if alive(pid)]
    for pid in left:
        kill_left(pid)
    assert left == [], f"QEMU left running: {output}"
    assert took < limit, f"took {took:.1f} s: {output}"
    assert proc.returncode == 130, output
    return output


@pytest.mark.parametrize(
    "signals", [[signal.SIGTERM], [signal.SIGHUP], [signal.SIGTERM, signal.SIGHUP]], ids=["TERM", "HUP", "TERM+HUP"]
)
def test_a_stopped_smoke_leaves_no_qemu(tmp_path: Path, fake_qemu_dir: Path, signals: list[signal.Signals]) -> None:
    install_fake_qemu(fake_qemu_dir)
    iso = iso_in(tmp_path)
    junit = tmp_path / "junit.xml"
    proc, pids = start_xenlive(tmp_path, fake_qemu_dir, "smoke", str(iso), "--accel", "tcg", "--junit", str(junit))
    output = stop_and_check(proc, pids, signals, limit=8)
    assert "interrupted" in output
    assert "interrupted" in junit.read_text()  # the report is still written
    assert iso.with_name("demo.serial.log").read_text().startswith("SeaBIOS (version fake)")


def test_a_qemu_that_ignores_sigterm_is_killed(tmp_path: Path, fake_qemu_dir: Path) -> None:
    install_fake_qemu(fake_qemu_dir, ignores_sigterm=True)
    proc, pids = start_xenlive(tmp_path, fake_qemu_dir, "smoke", str(iso_in(tmp_path)), "--accel", "tcg")
    stop_and_check(proc, pids, [signal.SIGTERM], limit=12)  # QemuSpec's grace (5 s), then SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["TERM", "HUP", "INT"])
def test_a_stopped_boot_leaves_no_qemu(tmp_path: Path, fake_qemu_dir: Path, sig: signal.Signals) -> None:
    install_fake_qemu(fake_qemu_dir)
    proc, pids = start_xenlive(tmp_path, fake_qemu_dir, "boot", str(iso_in(tmp_path)), "--accel", "tcg")
    stop_and_check(proc, pids, [sig], limit=8)


# A build in miniature: one job, as the pipeline runs dom0's mmdebstrap, building a cache entry with a tool that
# behaves like mmdebstrap when stopped: it waits for its running step (a child of its own) to end, then cleans up.
FAKE_MMDEBSTRAP = """#!/bin/sh
trap 'wait; echo unmounted > "$CLEANED"; exit 1' TERM
echo half-written > "$1/half-written"
sleep 60 &
echo "$!" > "$STEP_PID"
wait
"""

BUILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from xenlive.cache import Cache, StageInputs
    from xenlive.parallel import Together
    from xenlive.run import run, terminate_as_interrupt

    cache = Cache(Path(sys.argv[1]))
    inputs = StageInputs("dom0-rootfs", 1, {"suite": "bookworm"}, {}, {})

    def dom0() -> None:
        with cache.building(inputs) as work:
            run([sys.argv[2], str(work)])

    try:
        with terminate_as_interrupt(), Together() as jobs:
            jobs.start("dom0-rootfs", dom0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


def stop_a_build(tmp_path: Path, tool: Path, cleaned: Path) -> tuple[int, str, float, int]:
    """Run a build whose dom0 stage runs `tool`, SIGTERM it once the tool has started its step: the build's exit
    status and output, the seconds it took to end, and the pid of the tool's step."""
    step_pid = tmp_path / "step.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLEANED": str(cleaned), "STEP_PID": str(step_pid)}
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(tmp_path / "cache"), str(tool)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: step_pid.exists() and step_pid.read_text().strip(), 20), "the tool never started"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out.decode(errors="replace"), took, int(step_pid.read_text())


def test_sigterm_ends_a_build_and_its_tools_within_5_s_and_clean(tmp_path: Path) -> None:
    tool = tmp_path / "mmdebstrap"
    tool.write_text(FAKE_MMDEBSTRAP)
    tool.chmod(0o755)
    cache, cleaned = tmp_path / "cache", tmp_path / "cleaned"
    returncode, output, took, step = stop_a_build(tmp_path, tool, cleaned)
    assert returncode == 130 and "interrupted" in output, output
    assert took < 5, f"the build took {took:.1f} s to stop"
    left, _ = alive(step), kill_left(step)
    assert not left  # the tool's step is gone with it
    assert cleaned.read_text() == "unmounted\n"  # and the tool still ran its own cleanup
    assert [p.name for p in (cache / "tmp").iterdir()] == []  # no work directory left
    assert not (cache / "dom0-rootfs").exists()  # and no entry, whole or half-written


def test_a_tool_that_ignores_sigterm_is_killed_with_its_group(tmp_path: Path) -> None:
    tool = tmp_path / "stubborn"
    tool.write_text('#!/bin/sh\ntrap "" TERM\nsleep 60 &\necho "$!" > "$STEP_PID"\nwhile :; do sleep 1; done\n')
    tool.chmod(0o755)
    returncode, _, took, step = stop_a_build(tmp_path, tool, Path("/dev/null"))
    left, _ = alive(step), kill_left(step)
    assert not left
    assert returncode == 130 and took < 5, f"took {took:.1f} s"
