"""A build by an ordinary user (xenlive.userns), with the real mmdebstrap and the network, as an account made for
the test (bench/asuser.py) with an empty cache of its own.

Interrupted as a root build is in test_build_and_boot.py (SIGTERM from a CI job's timeout, or Ctrl-C's SIGINT)
once mmdebstrap runs, it must end as quickly and leave as little: no process of the account or of its
subordinate ids, no mount, no half-written cache entry and no partial ISO.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.accounts import asuser
from tests.boot.test_build_and_boot import mounts_under
from tests.tools.test_rootless import needs_userns
from tests.tools.test_stopping import kill_left, wait_for
from xenlive import userns
from xenlive.cache import Cache
from xenlive.cache.entries import MANIFEST
from xenlive.userns import is_real_root

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(not is_real_root(), reason="makes an account: needs the host's root"),
    needs_userns,
]

ROOT = Path(__file__).resolve().parents[2]
PROC = Path("/proc")


def owner(pid: int) -> int | None:
    """The real uid of process `pid` (None once it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def processes_of(uids: set[int] | range) -> dict[int, str]:
    """Every process (pid: its name) whose real uid is in `uids`."""
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and owner(int(entry.name)) in uids:
            try:
                found[int(entry.name)] = (entry / "comm").read_text().strip()
            except OSError:
                continue
    return found


def child_of(pid: int) -> int | None:
    try:
        children = (PROC / str(pid) / "task" / str(pid) / "children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_an_interrupted_user_build_leaves_no_process_mount_entry_or_iso(sig: signal.Signals) -> None:
    account = asuser.ensure_account("xlt-stop")
    build = None
    try:
        subuid = userns.sub_range(userns.SUBUID, account.name, account.uid)
        assert subuid is not None
        ids = {account.uid, *range(subuid.start, subuid.start + subuid.count)}
        cache, out = account.cache / "xenlive", account.home / "out"
        out.mkdir()
        asuser.give(account, out)
        argv = asuser.xenlive_argv(account, ["build", str(ROOT / "recipes" / "ci.yaml"), "-o", str(out)])
        build = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        # runuser's child, once it runs as the account, is xenlive (env execs it); the signal goes to it, as a
        # terminal's or a CI runner's does.
        assert wait_for(lambda: owner(child_of(build.pid) or 0) == account.uid, 20), "xenlive never started"
        xenlive = child_of(build.pid)
        assert xenlive is not None
        assert wait_for(lambda: "mmdebstrap" in processes_of(ids).values(), 300), "mmdebstrap never started"
        time.sleep(10)  # mmdebstrap is now fetching and installing packages into its chroot

        stopped = time.monotonic()
        os.kill(xenlive, sig)
        output, _ = build.communicate(timeout=60)
        took = time.monotonic() - stopped
        assert build.returncode == 130, output[-3000:]  # interrupted
        assert took < 5, f"the build took {took:.1f} s to stop: {output[-2000:]}"
        # Nothing of the build runs on: the PID namespace went with it.
        assert wait_for(lambda: not processes_of(ids), 2), processes_of(ids)
        assert mounts_under(account.home) == []
        # Every cache entry is whole (a manifest written last), and no work directory is left.
        store = Cache(cache)
        stages = [d for d in cache.iterdir() if d.is_dir()] if cache.is_dir() else []
        entries = [
            e
            for d in stages
            if d not in (store.tmp, store.locks, store.downloads, store.debs)
            for e in d.iterdir()
            if e.is_dir()
        ]
        assert [e for e in entries if not (e / MANIFEST).is_file()] == []
        assert not store.tmp.exists() or list(store.tmp.iterdir()) == []
        assert list(out.iterdir()) == []
    finally:
        if build is not None and build.poll() is None:
            kill_left(build.pid)
            build.wait()
        asuser.remove_account(account)
