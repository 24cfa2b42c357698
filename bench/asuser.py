"""Run xenlive from this checkout as an ordinary account, from a process running as root: how the bench and the
tests measure and check builds by a user (xenlive.userns) beside root's, in the same run.

The account is made if missing (`useradd --create-home`, which also gives it subordinate ids on Debian) and gets
a home and a cache of its own. It runs this checkout's xenlive with this interpreter's packages: this interpreter
if the account may run it, else the host's /usr/bin/python3 of the same version, with this environment's
site-packages on its path (a virtualenv made by root may live where a user cannot read, e.g. under /root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SUBIDS = "100000-165535"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: Path

    @property
    def cache(self) -> Path:
        return self.home / ".cache"


def ensure_account(name: str) -> Account:
    """The account `name`, made if missing with a home and subordinate ids (useradd gives them on Debian; usermod
    adds a range when it did not)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        entry = pwd.getpwnam(name)
    for path, option in ((Path("/etc/subuid"), "--add-subuids"), (Path("/etc/subgid"), "--add-subgids")):
        owners = {line.split(":", 1)[0] for line in path.read_text().splitlines()} if path.exists() else set()
        if name not in owners and str(entry.pw_uid) not in owners:
            subprocess.run(["usermod", option, _free_range(path), name], check=True)
    return Account(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def _free_range(path: Path) -> str:
    """A range of 65536 ids after every range `path` holds."""
    end = 100000
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                end = max(end, int(fields[1]) + int(fields[2]))
    return f"{end}-{end + 65535}"


def remove_account(account: Account) -> None:
    """Remove the account, its home and what its processes left (none should be left)."""
    subprocess.run(["pkill", "-KILL", "-u", account.name], check=False)
    subprocess.run(["userdel", "--remove", account.name], check=False, capture_output=True)
    shutil.rmtree(account.home, ignore_errors=True)


def may_run(account: Account, program: str) -> bool:
    """Whether the account can execute `program` (every directory on its way searchable, the file executable)."""
    done = subprocess.run(
        ["runuser", "-u", account.name, "--", "test", "-x", program], check=False, capture_output=True
    )
    return done.returncode == 0


def python_for(account: Account) -> tuple[str, dict[str, str]]:
    """An interpreter the account can run xenlive with, and the PYTHONPATH it needs."""
    paths = [str(CHECKOUT)]
    if may_run(account, os.path.realpath(sys.executable)):
        return sys.executable, {"PYTHONPATH": os.pathsep.join(paths)}
    host = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not may_run(account, host):
        raise RuntimeError(f"{account.name} can run neither {sys.executable} nor {host}")
    paths += sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return host, {"PYTHONPATH": os.pathsep.join(paths)}


def xenlive_argv(account: Account, args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """`xenlive ARGS` as the account, with its own home and cache, no sudo: through runuser (util-linux), with an
    environment of its own."""
    return python_argv(account, [str(CHECKOUT / "build.py"), *args], env)


def python_argv(account: Account, args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """`python ARGS` as the account, with this checkout's xenlive importable, as xenlive_argv() runs xenlive."""
    python, pythonpath = python_for(account)
    environment = {
        "HOME": str(account.home),
        "USER": account.name,
        "LOGNAME": account.name,
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "XDG_CACHE_HOME": str(account.cache),
        **pythonpath,
        **(env or {}),
    }
    return [
        "runuser",
        "-u",
        account.name,
        "--",
        "env",
        "-i",
        *(f"{key}={value}" for key, value in environment.items()),
        python,
        *args,
    ]


def give(account: Account, path: Path) -> None:
    """Make `path` (made by root for the account, e.g. an output directory) the account's."""
    os.chown(path, account.uid, account.gid)
