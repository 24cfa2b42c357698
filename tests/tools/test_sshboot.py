"""`xenlive boot`'s key pair for `xenlive ssh` (real ssh-keygen), and `xenlive ssh` through the real command line
with a stand-in for ssh: which boot it reaches, the argv it runs, and the exit status it returns."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from xenlive import qemu
from xenlive.qemu import BootOptions, Forward
from xenlive.sshboot import boot_session, find_sessions

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]


def test_each_boot_has_its_own_private_key_pair_and_record_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    iso = tmp_path / "demo.iso"
    with boot_session(iso, 2222) as session:
        assert stat.S_IMODE(session.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(session.key.stat().st_mode) == 0o600
        assert session.public_key().startswith("ssh-ed25519 ") and session.public_key().endswith(" xenlive-boot")
        assert qemu.SSH_PUBLIC_KEY.fullmatch(session.public_key())
        assert json.loads((session.directory / "boot.json").read_text()) == {
            "pid": os.getpid(),
            "iso": str(iso),
            "ssh_port": 2222,
        }
        assert find_sessions() == [session]
        first = session.public_key()
    assert not session.directory.exists()
    assert find_sessions() == []
    with boot_session(iso, 2222) as again:
        assert again.public_key() != first


def test_boot_hands_qemu_the_boots_public_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    seen: list[list[str]] = []

    def fake_run(argv: list[str]) -> int:
        seen.append(argv)
        [session] = find_sessions()
        assert argv[argv.index("-smbios") + 1].endswith(f"ssh.authorized_keys.root={session.public_key()}")
        return 0

    monkeypatch.setattr(qemu, "_run_attached", fake_run)
    monkeypatch.setattr(qemu, "require_tools", lambda names: None)
    iso = tmp_path / "demo.iso"  # what boot checks of an ISO: the ISO 9660 signature
    iso.write_bytes(b"\0" * qemu.ISO_SIGNATURE_OFFSET + qemu.ISO_SIGNATURE + b"\0" * 2048)
    assert qemu.boot_interactive(iso, BootOptions(accel="tcg", forwards=(Forward(2222, 22),))) == 0
    assert len(seen) == 1 and find_sessions() == []


FAKE_SSH = """#!{python}
import json, sys
with open({record!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(7)
"""


def test_xenlive_ssh_runs_ssh_for_the_running_boot_and_returns_its_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    record = tmp_path / "ssh-calls"
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "ssh").write_text(FAKE_SSH.format(python=sys.executable, record=str(record)))
    (fakes / "ssh").chmod(0o755)
    env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}

    def xenlive_ssh(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(ROOT / "build.py"), "ssh", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    nothing = xenlive_ssh("uname")
    assert nothing.returncode == 1 and "no running boot to reach" in nothing.stderr
    with boot_session(tmp_path / "demo.iso", 2345) as session:
        for args in (("debian", "uname", "-n"), ("dom0", "uname", "-n"), ()):
            assert xenlive_ssh(*args).returncode == 7
    guest, dom0, login = (json.loads(line) for line in record.read_text().splitlines())
    assert guest[-3:] == ["root@debian", "uname", "-n"] and str(session.key) in guest
    assert dom0[-5:] == ["-p", "2345", "root@127.0.0.1", "uname", "-n"]
    assert login[-3:] == ["-p", "2345", "root@127.0.0.1"]
