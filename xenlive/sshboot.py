"""SSH into a running ISO without a key in its recipe (`xenlive ssh`): a key pair made for each boot, its public
half handed to dom0 through QEMU, and a small record of the boot that `xenlive ssh` finds.

- `boot_session()` makes the pair (ssh-keygen, ed25519, no passphrase, 0600) in a directory of its own under
  the user's runtime directory ($XDG_RUNTIME_DIR/xenlive/boots/PID, else the cache's), writes `boot.json` there
  (the ISO, the host port forwarded to dom0's SSH, the pid of the process that owns the QEMU) and removes the
  directory when the boot ends. Nothing of it goes into the ISO, which stays the same bytes.
- QEMU hands the public key to dom0 as a credential (`QemuSpec.ssh_key`, see qemu.py); dom0 adds it to root's
  authorized_keys early in its boot (xenlive-boot), beside the recipe's `dom0.ssh.authorized_keys`.
- `ssh_argv()` (pure) reaches dom0 through the forwarded port, or a guest through dom0 (ProxyCommand:
  `ssh -W` on dom0, which resolves the guests' names from its /etc/hosts), trusting the host keys each boot
  makes on first use, into that boot's own known_hosts (no prompt, and no entry left in ~/.ssh).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xenlive.errors import XenliveError
from xenlive.paths import default_cache_dir
from xenlive.run import require_tools, run

log = logging.getLogger(__name__)

RECORD = "boot.json"
KEY = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
KEY_COMMENT = "xenlive-boot"


@dataclass(frozen=True)
class BootSession:
    """One running boot that `xenlive ssh` can reach."""

    directory: Path
    pid: int  # the process that owns the boot's QEMU: the record is stale once it is gone
    iso: str
    ssh_port: int | None  # the host port forwarded to dom0's port 22; None: SSH is not forwarded

    @property
    def key(self) -> Path:
        return self.directory / KEY

    @property
    def known_hosts(self) -> Path:
        return self.directory / KNOWN_HOSTS

    def public_key(self) -> str:
        return (self.directory / f"{KEY}.pub").read_text(encoding="ascii").strip()


def sessions_dir() -> Path:
    """$XDG_RUNTIME_DIR/xenlive/boots (gone at logout, like the boots), else the cache's boots/."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "xenlive" / "boots" if runtime else default_cache_dir() / "boots"


@contextmanager
def boot_session(iso: Path, ssh_port: int | None) -> Iterator[BootSession]:
    """A fresh key pair and the record of this boot, removed when the boot ends."""
    require_tools(["ssh-keygen"])
    base = sessions_dir()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory = base / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)  # a record left by a process that had this pid
    directory.mkdir(mode=0o700)
    session = BootSession(directory, os.getpid(), os.fspath(iso.resolve()), ssh_port)
    try:
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", KEY_COMMENT, "-f", session.key])
        session.key.chmod(0o600)
        record = {"pid": session.pid, "iso": session.iso, "ssh_port": ssh_port}
        (directory / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        yield session
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def find_sessions() -> list[BootSession]:
    """The boots running now (their owner is alive), newest first; records of ended ones are removed."""
    base = sessions_dir()
    found = []
    for record in base.glob(f"*/{RECORD}") if base.is_dir() else ():
        try:
            data = json.loads(record.read_text())
            session = BootSession(record.parent, int(data["pid"]), str(data["iso"]), data.get("ssh_port"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(session.pid):
            shutil.rmtree(record.parent, ignore_errors=True)
            continue
        found.append(session)
    return sorted(found, key=lambda s: s.directory.stat().st_mtime, reverse=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def choose_session(sessions: Sequence[BootSession], iso: Path | None = None) -> BootSession:
    """The boot to reach: the one running, or the one booting `iso` when several run."""
    if iso is not None:
        sessions = [s for s in sessions if s.iso == os.fspath(iso.resolve())]
    if not sessions:
        where = f" of {iso}" if iso is not None else ""
        raise XenliveError(f"no running boot{where} to reach: start one with `xenlive boot ISO`")
    if len(sessions) > 1:
        isos = ", ".join(s.iso for s in sessions)
        raise XenliveError(f"{len(sessions)} boots are running ({isos}): name one with --iso")
    session = sessions[0]
    if session.ssh_port is None:
        raise XenliveError(f"the boot of {session.iso} does not forward dom0's SSH port (see boot --forward)")
    return session


def ssh_argv(session: BootSession, guest: str | None, command: Sequence[str]) -> list[str]:
    """The ssh command line reaching dom0 (guest None) or a guest through dom0, running `command` (a login
    shell when empty). Pure."""
    options = [
        *("-i", os.fspath(session.key)),
        *("-o", "IdentitiesOnly=yes"),
        *("-o", f"UserKnownHostsFile={session.known_hosts}"),
        *("-o", "StrictHostKeyChecking=accept-new"),  # each boot makes new host keys: trust them on first use
        *("-o", "BatchMode=yes"),  # no password prompt: the key or nothing
        *("-o", "LogLevel=ERROR"),  # not a "Permanently added" line for each new host key of each boot
    ]
    dom0 = [*options, *("-p", str(session.ssh_port)), "root@127.0.0.1"]
    if guest is None:
        return ["ssh", *dom0, *command]
    jump = shlex.join(["ssh", *options, "-W", "%h:%p", *("-p", str(session.ssh_port)), "root@127.0.0.1"])
    return ["ssh", *options, *("-o", f"ProxyCommand={jump}"), f"root@{guest}", *command]


def run_ssh(argv: Sequence[str]) -> int:
    """Run ssh on this terminal (its stdin, its output); its exit status, which is the remote command's."""
    require_tools([argv[0]])
    log.debug("run: %s", shlex.join(argv))
    try:
        return subprocess.run(list(argv), check=False).returncode
    except OSError as exc:
        raise XenliveError(f"cannot start {argv[0]}: {exc}") from exc
