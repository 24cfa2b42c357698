"""The one place where external tools are started."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from xenlive.errors import ToolError
from xenlive.progress import current_label

log = logging.getLogger(__name__)

# Never passed on from our own environment: the build's epoch reaches a tool only through `env`
# (xenlive.context.date_env), since one inherited from whoever started xenlive may differ from
# the recipe's, and mksquashfs refuses it beside its own -all-time.
NOT_INHERITED = ("SOURCE_DATE_EPOCH",)

# Seconds a stopped tool's process group gets between SIGTERM and SIGKILL: long enough for mmdebstrap to unmount
# what it mounted once apt and dpkg (which the group signal reaches too) are gone, short enough that a stopped
# build is gone within seconds. What a killed tool leaves mounted under its work directory, xenlive's own cleanup
# unmounts (fsutil.remove_tree).
TOOL_GRACE = 2.0

# Debian package that provides each external tool xenlive runs.
TOOL_PACKAGES: dict[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "grub-mkrescue": "grub-common",
    "xorriso": "xorriso",
    "mformat": "mtools",
    "mcopy": "mtools",
    "chroot": "coreutils",
    "nice": "coreutils",
    "dpkg-query": "dpkg",
    "mkfs.ext4": "e2fsprogs",
    "makefs": "makefs",
    "tar": "tar",
    "lz4": "lz4",
    "zstd": "zstd",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    # `boot` makes a key pair for each boot, which `xenlive ssh` uses.
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    # diskimage-builder (xenlive.builders.dib) runs these; the tests read its images with the last three.
    "sudo": "sudo",
    "debootstrap": "debootstrap",
    "losetup": "mount",
    # An ordinary user's build enters user namespaces (xenlive.userns) with these.
    "unshare": "util-linux",
    "newuidmap": "uidmap",
    "newgidmap": "uidmap",
    "fstrim": "util-linux",
    "debugfs": "e2fsprogs",
    "e2label": "e2fsprogs",
    "lsinitramfs": "initramfs-tools-core",
}


def find_missing_tools(names: Sequence[str], which: Callable[[str], str | None] | None = None) -> list[str]:
    """The tools of `names` that are not on PATH (`which`: how to look one up, shutil.which by default)."""
    look = which or shutil.which
    return [name for name in names if look(name) is None]


def missing_tools_message(missing: Sequence[str]) -> str:
    """One line naming missing tools and the Debian packages that provide them."""
    packages = sorted({TOOL_PACKAGES.get(name, name) for name in missing})
    return f"missing tool(s): {', '.join(missing)}; install with: apt-get install {' '.join(packages)}"


def require_tools(names: Sequence[str]) -> None:
    """Check that every tool exists before any work starts; name the Debian packages of those missing."""
    missing = find_missing_tools(names)
    if missing:
        raise ToolError(missing_tools_message(missing))


def require_file(path: Path, debian_package: str) -> None:
    """Check for a data file some tool needs (e.g. GRUB's platform modules)."""
    if not path.exists():
        raise ToolError(f"missing {path}; install with: apt-get install {debian_package}")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    cwd: Path | None = None,
    capture: bool = False,
    stdin_data: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool from an argv list (never a shell). Raises ToolError naming the command on failure
    (unless `check` is False: for tools whose exit status is an answer, like diffoscope's).

    `env` adds to our environment (less NOT_INHERITED); with `clean_env` it is the tool's whole environment.
    Output goes to our stderr unless `capture` is set; with `capture`, a failure shows its tail.
    """
    args = [os.fspath(a) for a in argv]
    log.debug("run: %s", shlex.join(args))
    if _stopping.is_set():
        raise KeyboardInterrupt  # the build is being stopped: start nothing new
    label = current_label() if not capture and stdin_data is None else None
    if clean_env:
        full_env = dict(env or {})
    else:
        inherited = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
        full_env = {**inherited, **(env or {})}
    try:
        popen = subprocess.Popen(
            args,
            env=full_env,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture or label else None,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT if label else None,
            # A session (and so a process group) of its own, so that stopping the tool stops what it started
            # (mmdebstrap's apt and dpkg). The terminal's Ctrl-C no longer reaches it: we pass it on (_stop,
            # stop_all_tools). Not only a group: a background group that sets terminal modes would be stopped.
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{args[0]}: not found") from exc
    with _running_lock:
        _running.add(popen)
    try:
        if label is not None:
            _relay(popen, label)
        stdout, stderr = popen.communicate(stdin_data)
    except BaseException:
        _stop(popen)
        raise
    finally:
        with _running_lock:
            _running.discard(popen)
    proc = subprocess.CompletedProcess(args, popen.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        tail = ""
        if capture:
            text = (proc.stderr or b"").decode(errors="replace").strip().splitlines()
            tail = (": " + " | ".join(text[-5:])) if text else ""
        raise ToolError(f"{args[0]} failed with exit code {proc.returncode}{tail} (command: {shlex.join(args)})")
    return proc


def _relay(popen: subprocess.Popen[bytes], label: str) -> None:
    """Pass a tool's output on to our stderr line by line, each line under the label of the job that runs it
    (stages that run at the same time would interleave theirs)."""
    assert popen.stdout is not None
    for line in popen.stdout:
        sys.stderr.write(f"[{label}] {line.decode(errors='replace').rstrip()}\n")
        sys.stderr.flush()


# The tools running now, from any thread, so that stopping the build stops them all.
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


def stop_all_tools(grace: float = TOOL_GRACE) -> None:
    """The build is being stopped (Ctrl-C, SIGTERM) while jobs run in other threads: stop every running tool and
    let no job start another one. Each tool's process group gets SIGTERM (mmdebstrap unmounts its chroot), and
    SIGKILL if it is still there after `grace` seconds. Each job's thread then fails where it waits and cleans
    up after itself (its work directory, and what is mounted below it)."""
    _stopping.set()
    with _running_lock:
        running = list(_running)
    for popen in running:
        _signal_group(popen, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(popen.poll() is None for popen in running):
        time.sleep(0.05)
    for popen in running:
        if popen.poll() is None:
            log.debug("%s ignored SIGTERM for %g s: killing it", popen.args, grace)
            _signal_group(popen, signal.SIGKILL)


def allow_tools() -> None:
    """Tools may be started again (after stop_all_tools, once the stopped jobs are done)."""
    _stopping.clear()


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the tool's process group (run() made the tool its session's leader), while the tool has not been reaped:
    after that its pid, and so the group's id, may be another's."""
    if popen.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, sig)


def _stop(popen: subprocess.Popen[bytes], grace: float = TOOL_GRACE) -> None:
    """We are interrupted: SIGTERM the tool's process group, so that the tool cleans up (mmdebstrap unmounts its
    chroot), SIGKILL it after `grace` seconds, and reap the tool."""
    if popen.poll() is None:
        _signal_group(popen, signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(popen, signal.SIGKILL)
            popen.wait()


def tool_version(name: str, flag: str = "--version") -> str:
    """First line of a tool's version output; part of the cache keys of stages that run it."""
    proc = run([name, flag], capture=True)
    out = (proc.stdout or b"") + (proc.stderr or b"")
    return out.decode(errors="replace").strip().splitlines()[0] if out.strip() else "unknown"


# The signals that stop xenlive as Ctrl-C does: `kill`, CI job timeouts and service managers send SIGTERM; a
# closed terminal or SSH session sends SIGHUP.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


_stop_signalled = threading.Event()  # a stop signal has interrupted this process: it is on its way out


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    _stop_signalled.set()
    for sig in STOP_SIGNALS:
        # Ignored from now on, by the kernel: a Python handler would be reset as the interpreter exits, and a
        # signal then would end the process before its exit status.
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C, so that they run the same cleanup (unmounts, restores, stops QEMU).
    Only the first one interrupts: once it has, later ones are ignored until the process ends, also after the
    block, so that none cuts that cleanup short (CI systems and service managers often send more than one).
    Outside the main thread (which alone receives signals) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_stop_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if not _stop_signalled.is_set():
            for sig, action in previous.items():
                signal.signal(sig, action)
