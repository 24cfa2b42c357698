"""`xenlive ssh`: the record of a running boot, and the ssh command lines that reach dom0 and a guest."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from xenlive.errors import XenliveError
from xenlive.sshboot import BootSession, choose_session, find_sessions, sessions_dir, ssh_argv

SESSION = BootSession(Path("/run/user/1000/xenlive/boots/42"), 42, "/out/demo.iso", 2222)
COMMON = [
    *("-i", "/run/user/1000/xenlive/boots/42/id_ed25519"),
    *("-o", "IdentitiesOnly=yes"),
    *("-o", "UserKnownHostsFile=/run/user/1000/xenlive/boots/42/known_hosts"),
    *("-o", "StrictHostKeyChecking=accept-new"),
    *("-o", "BatchMode=yes"),
    *("-o", "LogLevel=ERROR"),
]


def test_dom0_is_reached_through_the_forwarded_port_with_the_boots_key_and_known_hosts() -> None:
    assert ssh_argv(SESSION, None, ["uname", "-n"]) == ["ssh", *COMMON, "-p", "2222", "root@127.0.0.1", "uname", "-n"]
    assert ssh_argv(SESSION, None, [])[-1] == "root@127.0.0.1"  # a login shell


def test_a_guest_is_reached_through_dom0() -> None:
    argv = ssh_argv(SESSION, "debian", ["uname", "-n"])
    assert argv[: len(COMMON) + 1] == ["ssh", *COMMON]
    assert argv[-3:] == ["root@debian", "uname", "-n"]
    proxy = argv[argv.index("-o", len(COMMON)) + 1]
    assert proxy.startswith("ProxyCommand=")
    jump = shlex.split(proxy.removeprefix("ProxyCommand="))
    assert jump == ["ssh", *COMMON, "-W", "%h:%p", "-p", "2222", "root@127.0.0.1"]


def record(base: Path, pid: int, iso: str = "/out/demo.iso", port: int | None = 2222) -> Path:
    directory = base / "xenlive" / "boots" / str(pid)
    directory.mkdir(parents=True)
    (directory / "boot.json").write_text(json.dumps({"pid": pid, "iso": iso, "ssh_port": port}))
    return directory


def test_running_boots_are_found_and_the_records_of_ended_ones_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert sessions_dir() == tmp_path / "xenlive" / "boots"
    assert find_sessions() == []
    record(tmp_path, os.getpid())
    ended = record(tmp_path, 2**22 + 7)  # above pid_max's default: no such process
    sessions = find_sessions()
    assert [(s.pid, s.iso, s.ssh_port) for s in sessions] == [(os.getpid(), "/out/demo.iso", 2222)]
    assert not ended.exists()
    assert choose_session(sessions) == sessions[0]


def test_choosing_a_boot_says_what_to_do_when_there_is_none_or_several(tmp_path: Path) -> None:
    with pytest.raises(XenliveError, match="no running boot to reach: start one with `xenlive boot ISO`"):
        choose_session([])
    other = BootSession(tmp_path, 43, os.fspath(tmp_path / "other.iso"), 2223)
    with pytest.raises(XenliveError, match=r"2 boots are running .* name one with --iso"):
        choose_session([SESSION, other])
    assert choose_session([SESSION, other], tmp_path / "other.iso") == other
    with pytest.raises(XenliveError, match="does not forward dom0's SSH port"):
        choose_session([BootSession(tmp_path, 44, "/x.iso", None)])
