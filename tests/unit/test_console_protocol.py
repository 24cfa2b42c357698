"""The XENLIVE-NET line (docs/console-protocol.md): every guest script that prints it prints the format the
protocol states, its header states that format, and dom0's xenlive-console reads the fields the format has.

Each script's own `echo` line is run by sh with stand-in values for what it measured (its address, the
verdicts of its pings and lookups), and its output is parsed by the format below."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "console-protocol.md"
XENLIVE_CONSOLE = ROOT / "overlays" / "xenlive" / "usr" / "lib" / "xenlive" / "xenlive-console"

# The format as docs/console-protocol.md writes it, and as a pattern.
FORMAT = "XENLIVE-NET <hostname> addr=<ip or none> dom0=ok|failed resolve=<peer>:ok|failed,...|- uplink=ok|failed|-"
MGMT = " mgmt=closed|open:<port>,...|-"  # the last field, which only Debian guests print
VERDICT = r"(?:ok|failed)"
LINE = re.compile(
    r"XENLIVE-NET (?P<hostname>[a-z0-9][a-z0-9-]*)"
    r" addr=(?P<addr>none|\d{1,3}(?:\.\d{1,3}){3})"
    rf" dom0=(?P<dom0>{VERDICT})"
    rf" resolve=(?P<resolve>-|[a-z0-9-]+:{VERDICT}(?:,[a-z0-9-]+:{VERDICT})*)"
    rf" uplink=(?P<uplink>{VERDICT}|-)"
    r"(?: mgmt=(?P<mgmt>closed|-|open:\d{1,5}(?:,\d{1,5})*))?"
)
FIELDS = ("addr", "dom0", "resolve", "uplink", "mgmt")

# script, whether it resolves peers (NetBSD cannot read xl's command line), whether it checks dom0's
# management ports (mgmt=)
SCRIPTS = {
    "debian": (ROOT / "guest-images/debian/usr/lib/xenlive/xenlive-netcheck", True, True),
    "freebsd": (ROOT / "guest-images/freebsd/etc/rc.d/xenlive_netcheck", True, False),
    "netbsd": (ROOT / "guest-images/netbsd/etc/rc.d/xenlive_netcheck", False, False),
}

# What each script measured, as the shell variables and functions its echo line reads.
MEASURED = {
    "all ok": dict(addr="10.0.3.10", dom0="ok", resolved="web:ok,db:ok", uplink="ok", verdict="ok", mgmt="closed"),
    "nothing works": dict(
        addr="none", dom0="failed", resolved="web:failed", uplink="failed", verdict="failed", mgmt="-"
    ),
    "no peers, no uplink": dict(addr="10.0.3.11", dom0="ok", resolved="", uplink="-", verdict="ok", mgmt="open:22"),
}


def echo_line(script: Path) -> str:
    """The script's command that prints the line (joined across continuation lines), without its redirection."""
    lines = script.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if 'echo "XENLIVE-NET' in line)
    command = lines[start].strip()
    while command.endswith("\\"):
        start += 1
        command = command[:-1] + " " + lines[start].strip()
    return re.sub(r"\s*>\s*/dev/\S+$", "", command)


def run_echo(script: Path, measured: dict[str, str]) -> str:
    prelude = (
        "hostname() { echo guest-1; }\n"
        f"reaches() {{ echo {measured['verdict']}; }}\n"  # NetBSD: ping verdict
        f"verdict() {{ echo {measured['verdict']}; }}\n"  # FreeBSD: the verdict of a command
        f"addr={measured['addr']} dom0={measured['dom0']} resolved={measured['resolved']} "
        f"uplink={measured['uplink']} mgmt={measured['mgmt']} gateway=10.0.3.1\n"
    )
    return subprocess.run(["sh", "-c", prelude + echo_line(script)], capture_output=True, text=True, check=True).stdout


def test_the_protocol_document_states_the_format() -> None:
    assert f"\n{FORMAT}{MGMT}\n" in PROTOCOL.read_text()


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


@pytest.mark.parametrize("guest", SCRIPTS)
def test_each_guest_script_states_the_format_in_its_header(guest: str) -> None:
    script, resolves_peers, checks_management = SCRIPTS[guest]
    stated = FORMAT.replace("<peer>:ok|failed,...|-", "<peer>:ok|failed,..." if resolves_peers else "-")
    stated += MGMT if checks_management else ""
    assert f"#   {stated}" in script.read_text()


def test_dom0_reads_the_fields_of_the_format_by_name() -> None:
    text = XENLIVE_CONSOLE.read_text()
    check_network = text[text.index("check_network() {") : text.index("\n}\n", text.index("check_network() {"))]
    assert tuple(re.findall(r"^\s+(\w+)=\*\)", check_network, re.MULTILINE)) == FIELDS
    assert '*"$NET_MARKER "*' in text  # the marker (the contract's) is found anywhere in a forwarded line


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
