"""The runit guest's login on its Xen console (guest-images/init/runit/etc/sv/xenlive-getty-hvc0/run), the real
run script under a pseudo-terminal standing in for hvc0: its shell owns the terminal, so Ctrl-C interrupts a
command (issue 24: `sleep 100` then Ctrl-C in `xl console debian` waited for the sleep to end)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "guest-images/init/runit/etc/sv/xenlive-getty-hvc0/run"

# FAKE agetty: opens the terminal it is given (hvc0: FAKE_TTY here) as agetty does, makes it its controlling
# terminal when it may (TIOCSCTTY: only a session leader may; agetty only warns when it cannot), and starts
# the shell that login would.
AGETTY = """#!{python}
import fcntl, os, sys, termios
fd = os.open(os.environ["FAKE_TTY"], os.O_RDWR)
for std in (0, 1, 2):
    os.dup2(fd, std)
try:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
except OSError as exc:
    print("agetty: cannot get controlling tty:", exc, flush=True)
os.execvp("bash", ["-bash", "--norc", "--noprofile", "-i"])
"""
# A stand-in for runit's chpst where runit is not installed: -P (a session and process group of its own).
CHPST = """#!{python}
import os, sys
assert sys.argv[1] == "-P", sys.argv
os.setsid()
os.execvp(sys.argv[2], sys.argv[2:])
"""


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_ctrl_c_in_the_runit_guests_console_interrupts_the_command(tmp_path: Path) -> None:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "agetty").write_text(AGETTY.format(python=sys.executable))
    if shutil.which("chpst") is None:
        (fakes / "chpst").write_text(CHPST.format(python=sys.executable))
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    script = tmp_path / "run"
    script.write_text(RUN.read_text().replace("/sbin/agetty", "agetty"))
    master, slave = pty.openpty()
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "FAKE_TTY": os.ttyname(slave), "HOME": str(tmp_path), "PS1": "# "}
    # As runsv starts it: no terminal, not a session leader.
    process = subprocess.Popen(["sh", str(script)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.close(slave)
    try:
        started = read_until(master, b"# ", 10)
        assert b"no job control" not in started and b"cannot get controlling tty" not in started, started
        os.write(master, b"sleep 30; echo slept-$?\r")
        time.sleep(0.5)
        pressed = time.monotonic()
        os.write(master, b"\x03")
        os.write(master, b"echo back-$?\r")
        after = read_until(master, b"back-130", 2)
        assert b"back-130" in after, after  # the sleep was interrupted (128 + SIGINT), within 2 s
        assert time.monotonic() - pressed < 2
        assert b"\nslept-" not in after  # nor did the rest of the line run
    finally:
        process.kill()
        process.wait()
        os.close(master)


def test_the_systemd_guests_console_login_keeps_the_units_controlling_terminal() -> None:
    """The systemd guest's autologin drop-in runs agetty on `-`: the terminal systemd opened for the unit
    (Debian's serial-getty@.service: StandardInput=tty, TTYPath=/dev/%I), which systemd makes the controlling
    terminal of the unit's own session, so its shell has job control. A tty name there instead would have
    agetty open hvc0 itself, as the runit guest's does."""
    dropin = REPO / "guest-images/init/systemd/etc/systemd/system/serial-getty@hvc0.service.d/autologin.conf"
    starts = [line for line in dropin.read_text().splitlines() if line.startswith("ExecStart=")]
    assert starts[0] == "ExecStart="  # Debian's own ExecStart is replaced, not added to
    command = starts[1].removeprefix("ExecStart=-").split()
    assert command[0] == "/sbin/agetty" and "--autologin" in command
    assert command[-2:] == ["-", "$TERM"]
