"""Rootless builds: an ordinary user's build runs as root of a user namespace of its own.

`xenlive build` run by a user who is not root starts itself again inside new user, mount and PID namespaces
(util-linux `unshare`), in which the user is root (uid and gid 0) and ids 1-65535 are the user's subordinate
ids from /etc/subuid and /etc/subgid, mapped by the setuid helpers `newuidmap` and `newgidmap` (Debian's
`uidmap`), as mmdebstrap's own unshare mode maps them. Inside, the build is the root build, step for step: it
runs mmdebstrap in root mode (which is made for a user namespace too: it bind-mounts what it cannot mount or
mknod), chroot, dpkg-query, mksquashfs, mkfs.ext4, debugfs, tar and makefs there, so every tool that reads or
writes a tree sees the owners a root build sees, and writes the same bytes. Device nodes, which no user
namespace may make, come from a declared table (xenlive.devices) in both builds.

What the namespaces give on the way out: the tmpfs trees and mmdebstrap's mounts live in the build's own mount
namespace, and every process of the build in its own PID namespace, so when the build ends, however it ends,
the kernel unmounts the one and kills what is left of the other (`--kill-child` ties the PID namespace's first
process to `unshare`, and `unshare` to this process). Files the build writes belong to the user (root inside);
files owned by other ids inside belong to the user's subordinate ids, which only a process in such a namespace
can remove (hence `cache prune` enters it too).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlive.errors import ToolError
from xenlive.run import TOOL_PACKAGES

# The ids a Debian tree uses: 0 (root) to 65534 (nobody, nogroup). Ids 1-65535 are mapped to subordinate ids.
IDS_NEEDED = 65535
# What a user build runs to enter its namespaces (their packages: run.TOOL_PACKAGES).
TOOLS = ("newuidmap", "newgidmap", "unshare")

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
PROC = Path("/proc")
# The sysctls that turn unprivileged user namespaces off: Debian's before bookworm (and some kernels' still), the
# kernel's own limit, and Ubuntu's AppArmor restriction (on by default since 24.04).
DEBIAN_SYSCTL = "kernel/unprivileged_userns_clone"
MAX_SYSCTL = "user/max_user_namespaces"
APPARMOR_SYSCTL = "kernel/apparmor_restrict_unprivileged_userns"


@dataclass(frozen=True)
class IdRange:
    start: int
    count: int


@dataclass(frozen=True)
class Account:
    """Who builds: the ids inside map 0 to `uid`/`gid` and 1-65535 to `subuid`/`subgid`."""

    name: str
    uid: int
    gid: int
    subuid: IdRange
    subgid: IdRange


def is_real_root(proc: Path = PROC) -> bool:
    """Root of the host, not of a user namespace: uid 0 with the whole id space mapped to itself."""
    if os.geteuid() != 0:
        return False
    try:
        fields = (proc / "self" / "uid_map").read_text().split()
    except OSError:
        return True  # no user namespaces in this kernel at all
    return fields[:3] == ["0", "0", "4294967295"]


def sub_range(path: Path, name: str, ident: int) -> IdRange | None:
    """The first range of `path` (/etc/subuid's format: NAME_OR_ID:START:COUNT) that belongs to the account and
    holds IDS_NEEDED ids, else None."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        owner, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if owner in (name, str(ident)) and start.isdigit() and count.isdigit() and int(count) >= IDS_NEEDED:
            return IdRange(int(start), int(count))
    return None


def _sysctl(proc: Path, name: str) -> str | None:
    try:
        return (proc / "sys" / name).read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class Host:
    """What the host offers a user build (tests build their own)."""

    name: str
    uid: int
    gid: int
    which: Callable[[str], str | None] = shutil.which
    proc: Path = PROC
    subuid: Path = SUBUID
    subgid: Path = SUBGID


def this_host() -> Host:
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Host(name=name, uid=uid, gid=gid)


def find_problems(host: Host) -> list[str]:
    """Each thing the host lacks for a user build, as what to do about it: empty when it has everything."""
    problems = []
    sysctls = [
        (DEBIAN_SYSCTL, "0", "user namespaces are off for ordinary users (sysctl kernel.unprivileged_userns_clone=1)"),
        (MAX_SYSCTL, "0", "user namespaces are off (sysctl user.max_user_namespaces=15000)"),
        (
            APPARMOR_SYSCTL,
            "1",
            "AppArmor keeps ordinary users from user namespaces (sysctl "
            "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile that allows unshare `userns`)",
        ),
    ]
    problems += [text for name, off, text in sysctls if _sysctl(host.proc, name) == off]
    missing: dict[str, list[str]] = {}  # package -> its tools that are missing
    for tool in TOOLS:
        if host.which(tool) is None:
            missing.setdefault(TOOL_PACKAGES[tool], []).append(tool)
    problems += [f"{' and '.join(tools)} missing (apt-get install {package})" for package, tools in missing.items()]
    for path, ident, option in ((host.subuid, host.uid, "subuids"), (host.subgid, host.gid, "subgids")):
        if sub_range(path, host.name, ident) is None:
            problems.append(
                f"no range of {IDS_NEEDED + 1} subordinate ids for {host.name} in {path} "
                f"(as root: usermod --add-{option} 100000-165535 {host.name})"
            )
    return problems


def problems_message(problems: Sequence[str]) -> str:
    return "building without root needs user namespaces: " + "; ".join(problems) + "; or run it as root (sudo)"


def find_account(host: Host) -> Account:
    """The account a user build maps, or a ToolError naming all that is missing."""
    problems = find_problems(host)
    subuid, subgid = sub_range(host.subuid, host.name, host.uid), sub_range(host.subgid, host.name, host.gid)
    if problems or subuid is None or subgid is None:
        raise ToolError(problems_message(problems or ["no subordinate ids"]))
    return Account(host.name, host.uid, host.gid, subuid, subgid)


def id_map_argv(tool: str, pid: int, own: int, sub: IdRange) -> list[str]:
    """newuidmap/newgidmap: 0 is the user's own id, 1-65535 its subordinate ids."""
    return [tool, str(pid), "0", str(own), "1", "1", str(sub.start), str(IDS_NEEDED)]


# The first process inside: it says it is there (on the pipe $1), waits until its ids are mapped (the pipe $2),
# then becomes the command.
WAIT_FOR_MAP = 'printf x >&"$1" && read -r go <&"$2" && shift 2 && exec "$@"'


def unshare_argv(argv: Sequence[str], ready_fd: int, go_fd: int) -> list[str]:
    """util-linux unshare: new user, mount and PID namespaces (mounts private, and the PID namespace's first
    process killed with unshare), running WAIT_FOR_MAP, then argv."""
    return [
        "unshare",
        "--user",
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "sh",
        "-c",
        WAIT_FOR_MAP,
        "sh",
        str(ready_fd),
        str(go_fd),
        *argv,
    ]


def reentry_argv(argv0: str, args: Sequence[str]) -> list[str]:
    """This same command, started again by this interpreter: `argv0` kept, so that the commands it prints name
    xenlive as the user ran it."""
    code = "import sys; sys.argv = sys.argv[1:]; from xenlive.cli import main; main()"
    return [sys.executable, "-c", code, argv0, *args]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when this process dies, so that even a killed xenlive leaves no build
    behind (unshare then kills the PID namespace's first process, and the kernel the rest)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


# Signals passed on to the build inside, which stops as a root build does (SIGHUP as SIGTERM: unshare, which
# ignores SIGINT and SIGTERM while it waits, would die of it and kill the build without its cleanup).
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}


def run_inside(account: Account, argv: Sequence[str]) -> int:
    """Run argv as root of new namespaces mapped for `account`; its exit status (128+N if killed by N)."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    go_read, go_write = os.pipe()
    ready_read, ready_write = os.pipe()
    try:
        child = subprocess.Popen(
            unshare_argv(argv, ready_write, go_read),
            env=env,
            stdin=subprocess.DEVNULL,
            pass_fds=(go_read, ready_write),
            process_group=0,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        os.close(go_write)
        raise ToolError(f"cannot start unshare: {exc.strerror}") from exc
    finally:
        os.close(go_read)
        os.close(ready_write)
    with _forwarding(child):
        with contextlib.closing(os.fdopen(go_write, "wb", buffering=0)) as go, os.fdopen(ready_read, "rb") as ready:
            if ready.read(1) != b"x":  # unshare failed: it exited, and its message is on stderr
                status = child.wait()
                raise ToolError(problems_message([f"unshare failed (exit status {status})"]))
            _map_ids(child, account)
            go.write(b"go\n")
        status = child.wait()
    return 128 - status if status < 0 else status


def _map_ids(child: subprocess.Popen[bytes], account: Account) -> None:
    for argv in (
        id_map_argv("newuidmap", child.pid, account.uid, account.subuid),
        id_map_argv("newgidmap", child.pid, account.gid, account.subgid),
    ):
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            child.kill()
            child.wait()
            reason = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
            raise ToolError(problems_message([f"{argv[0]} refused the mapping ({reason})"]))


@contextlib.contextmanager
def _forwarding(child: subprocess.Popen[bytes]) -> Iterator[None]:
    """Pass the stop signals on to the child's process group (the build inside is in it; its tools are in groups
    of their own, which the build stops itself)."""

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, FORWARDED[signal.Signals(signum)])

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def reenter(args: Sequence[str]) -> int:
    """Run this command (`args`: its arguments after the program name) again as root of a user namespace."""
    account = find_account(this_host())
    return run_inside(account, reentry_argv(sys.argv[0], args))
