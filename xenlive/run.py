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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from xenlive.errors import ToolError
from xenlive.progress import current_label

log = logging.getLogger(__name__)

# Never passed on from our own environment: the build's epoch reaches a tool only through `env`
# (xenlive.context.date_env), since one inherited from whoever started xenlive may differ from
# the recipe's, and mksquashfs refuses it beside its own -all-time.
NOT_INHERITED = ("SOURCE_DATE_EPOCH",)

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
    # diskimage-builder (xenlive.builders.dib) runs these; the tests read its images with the last three.
    "sudo": "sudo",
    "debootstrap": "debootstrap",
    "losetup": "mount",
    "fstrim": "util-linux",
    "debugfs": "e2fsprogs",
    "e2label": "e2fsprogs",
    "lsinitramfs": "initramfs-tools-core",
}


def require_tools(names: Sequence[str]) -> None:
    """Check that every tool exists before any work starts; name the Debian packages of those missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        packages = sorted({TOOL_PACKAGES.get(name, name) for name in missing})
        raise ToolError(f"missing tool(s): {', '.join(missing)}; install with: apt-get install {' '.join(packages)}")


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


def stop_all_tools() -> None:
    """The build is being stopped (Ctrl-C, SIGTERM) while jobs run in other threads: ask every running tool to
    stop (SIGTERM: mmdebstrap unmounts its chroot), and let no job start another one. Each job's thread then
    fails where it waits and cleans up after itself."""
    _stopping.set()
    with _running_lock:
        running = list(_running)
    for popen in running:
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)


def allow_tools() -> None:
    """Tools may be started again (after stop_all_tools, once the stopped jobs are done)."""
    _stopping.clear()


def _stop(popen: subprocess.Popen[bytes]) -> None:
    """We are interrupted: let the tool clean up (mmdebstrap unmounts its chroot on SIGTERM), then
    make sure it is gone. On Ctrl-C the tool got SIGINT from the terminal already."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def tool_version(name: str, flag: str = "--version") -> str:
    """First line of a tool's version output; part of the cache keys of stages that run it."""
    proc = run([name, flag], capture=True)
    out = (proc.stdout or b"") + (proc.stderr or b"")
    return out.decode(errors="replace").strip().splitlines()[0] if out.strip() else "unknown"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so that `kill` runs the same cleanup (unmounts, restores, stops QEMU)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
