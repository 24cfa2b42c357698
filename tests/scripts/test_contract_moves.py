"""One path moved in dom0's runtime contract (xenlive/contract.py): the shell rendering, the boot scripts
and the web console all follow it, since none of them spells it itself."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scripts.fakedom0 import fake_dom0
from tests.webconsole_fakes import load_webconsole
from xenlive.contract import CONTRACT, CONTRACT_FILE, parse_shell, render_shell

MOVED = CONTRACT.with_paths(GUESTS_TSV="/etc/xenlive-moved/table.tsv", STATE="/run/moved/flags")


def test_the_shell_rendering_follows() -> None:
    values = parse_shell(render_shell(MOVED), root="/r")
    assert values["GUESTS_TSV"] == "/r/etc/xenlive-moved/table.tsv"
    assert values["STATE"] == "/r/run/moved/flags"


def test_the_boot_scripts_follow(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False, contract=MOVED) as dom0:
        assert not dom0.path(CONTRACT.GUESTS_TSV).exists()
        dom0.start_forwarders()
        assert dom0.boot().returncode == 0
        time.sleep(0.1)
        assert "plan guests=web network=no" in dom0.console.status()
        assert "guest web ready" in dom0.console.status()
        assert dom0.path("/run/moved/flags/web.done").exists()
        assert not dom0.path(CONTRACT.STATE).exists()


def test_the_web_console_follows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONTRACT_FILE).parent.mkdir(parents=True)
    (tmp_path / CONTRACT_FILE).write_text(render_shell(MOVED))
    monkeypatch.setenv("XENLIVE_ROOT", str(tmp_path))
    web = load_webconsole()
    paths = web.default_paths()
    assert paths.guests_tsv == tmp_path / "etc/xenlive-moved/table.tsv"
    assert paths.token_file == tmp_path / "run/xenlive/web-token"
    assert paths.guest_columns == CONTRACT.guest_columns()


PARSE_WITH_CHANGED_PREFIX = """
import sys
import xenlive.contract as contract
contract.CONTRACT = contract.CONTRACT.with_paths(STATUS_PREFIX="xl-report:")
from xenlive.smoke.console import parse_line
for line in sys.stdin:
    print(repr(parse_line(line.rstrip("\\n"))))
"""


def test_the_smoke_parser_and_the_scripts_follow_a_changed_status_prefix(tmp_path: Path) -> None:
    # The parser, in a process of its own whose contract says another prefix: it takes no second literal.
    lines = "xl-report: guest web ready\r\nxenlive-status: guest web ready\r\n"
    parsed = subprocess.run(
        [sys.executable, "-c", PARSE_WITH_CHANGED_PREFIX], input=lines, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert parsed == ["GuestStatus(name='web', state='ready', reason='')", "None"]
    changed = CONTRACT.with_paths(STATUS_PREFIX="xl-report:")
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False, contract=changed) as dom0:
        dom0.start_forwarders()
        assert dom0.boot().returncode == 0
        time.sleep(0.1)
        assert "xl-report: guest web ready" in dom0.console.lines()
