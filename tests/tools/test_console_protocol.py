"""The XENLIVE-NET line (docs/console-protocol.md) run for real: each guest script's own `echo` line under sh
with stand-in values for what it measured, parsed by the protocol's format; and dom0's check_network
(xenlive-console) under bash with a stand-in ping, on reports in the protocol's form and not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.test_console_protocol import LINE, MEASURED, SCRIPTS, XENLIVE_CONSOLE, echo_line

pytestmark = pytest.mark.tools


def run_echo(script: Path, measured: dict[str, str]) -> str:
    prelude = (
        "hostname() { echo guest-1; }\n"
        f"reaches() {{ echo {measured['verdict']}; }}\n"  # NetBSD: ping verdict
        f"verdict() {{ echo {measured['verdict']}; }}\n"  # FreeBSD: the verdict of a command
        f"addr={measured['addr']} dom0={measured['dom0']} resolved={measured['resolved']} "
        f"uplink={measured['uplink']} mgmt={measured['mgmt']} gateway=10.0.3.1\n"
    )
    return subprocess.run(["sh", "-c", prelude + echo_line(script)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("guest", SCRIPTS)
@pytest.mark.parametrize("case", MEASURED)
def test_each_guest_script_prints_the_line_in_the_format(guest: str, case: str) -> None:
    script, resolves_peers, checks_management = SCRIPTS[guest]
    measured = MEASURED[case]
    output = run_echo(script, measured)
    match = LINE.fullmatch(output.strip())
    assert match is not None, f"{script.name} printed {output!r}, not the XENLIVE-NET format"
    assert match["hostname"] == "guest-1"
    assert match["addr"] == measured["addr"]
    assert match["uplink"] == measured["uplink"]
    if resolves_peers:
        assert match["resolve"] == (measured["resolved"] or "-")
        assert match["dom0"] == measured["dom0" if guest == "debian" else "verdict"]
    else:
        assert match["resolve"] == "-"
    assert match["mgmt"] == (measured["mgmt"] if checks_management else None)


def check_network(line: str, tmp_path: Path, management_from_guests: str = "no") -> str:
    """xenlive-console's check_network on one XENLIVE-NET line, run by bash with `status` and `ping` stubbed:
    the status line it prints, and every ping it ran."""
    text = XENLIVE_CONSOLE.read_text()
    start = text.index("peers_up() {")
    function = text[start : text.index("\n}\n", text.index("check_network() {")) + 3]
    script = (
        f"NAME=g STATE={tmp_path} MANAGEMENT_FROM_GUESTS={management_from_guests}\n"
        'status() { echo "STATUS $*"; }\n'
        'ping() { echo "PING $*" >>"$STATE/pings"; }\n'
        f'{function}\ncheck_network "$1"\n'
    )
    (tmp_path / "x").write_text("")  # a file a glob in the line would expand to
    out = subprocess.run(
        ["bash", "-c", script, "check", line], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout
    pings = tmp_path / "pings"
    return out + (pings.read_text() if pings.exists() else "")


def test_a_report_in_the_protocols_form_is_checked_and_dom0_pings_the_address(tmp_path: Path) -> None:
    (tmp_path / "a.created").touch()  # dom0 created both peers (xenlive-boot), and neither died
    (tmp_path / "b.created").touch()
    out = check_network("XENLIVE-NET g addr=10.0.3.10 dom0=ok resolve=a:ok,b:ok uplink=ok", tmp_path)
    assert "PING -c 1 -w 5 10.0.3.10" in out
    assert "STATUS guest g network ok addr=10.0.3.10 resolve=a:ok,b:ok uplink=ok" in out


@pytest.mark.parametrize(
    "line",
    [
        "XENLIVE-NET g addr=-f dom0=ok resolve=- uplink=ok",  # an option for ping, run as root in dom0
        "XENLIVE-NET g addr=* dom0=ok resolve=- uplink=ok",  # a glob
        "XENLIVE-NET g addr=10.0.3.10 dom0=ok resolve=x;reboot uplink=ok",
        "XENLIVE-NET g addr=10.0.3.10 dom0=yes resolve=- uplink=ok",
        "XENLIVE-NET g addr=10.0.3.10 dom0=ok resolve=- uplink=\x1b[2Jok",
    ],
)
def test_a_report_not_in_the_protocols_form_fails_and_runs_nothing(line: str, tmp_path: Path) -> None:
    out = check_network(line, tmp_path)
    assert "PING" not in out
    assert out.strip() == "STATUS guest g network failed the guest's report does not follow the protocol"


def test_a_guest_that_reaches_dom0s_management_ports_fails_unless_the_recipe_allows_it(tmp_path: Path) -> None:
    line = "XENLIVE-NET g addr=10.0.3.10 dom0=ok resolve=- uplink=ok mgmt=open:22,8080"
    refused = check_network(line, tmp_path)
    assert "STATUS guest g network failed guest reaches dom0's management ports 22,8080 (SSH, web console)" in refused
    (tmp_path / "pings").unlink()
    allowed = check_network(line, tmp_path, management_from_guests="yes")
    assert "STATUS guest g network ok addr=10.0.3.10 resolve=- uplink=ok mgmt=open:22,8080" in allowed


def test_a_peer_that_is_not_running_is_not_reported_as_resolved(tmp_path: Path) -> None:
    """dnsmasq answers for every guest of the recipe: a resolved name says nothing of a peer that died."""
    (tmp_path / "up.created").touch()
    (tmp_path / "dead.created").touch()
    (tmp_path / "dead.gone").write_text("crashed\n")
    line = "XENLIVE-NET g addr=10.0.3.10 dom0=ok resolve=up:ok,dead:ok,never:ok uplink=ok mgmt=closed"
    out = check_network(line, tmp_path)
    assert "network ok addr=10.0.3.10 resolve=up:ok,dead:not-running,never:not-running uplink=ok mgmt=closed" in out
