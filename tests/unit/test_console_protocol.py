"""The XENLIVE-NET line (docs/console-protocol.md): every guest script that prints it prints the format the
protocol states, its header states that format, and dom0's xenlive-console reads the fields the format has.

Each script's own `echo` line is run by sh with stand-in values for what it measured (its address, the
verdicts of its pings and lookups), and its output is parsed by the format below: that part runs sh, so it
is in tests/tools/test_console_protocol.py, which imports these helpers."""

from __future__ import annotations

import re
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


def test_the_protocol_document_states_the_format() -> None:
    assert f"\n{FORMAT}{MGMT}\n" in PROTOCOL.read_text()


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
