"""The greeting dom0 prints once the guests are done, and keeps as the login message (xenlive-greeting, run by
the real xenlive-boot under a fake dom0): every guest with its type, state and address, how to attach, the
web console's address and token, how to SSH in; at most 15 lines."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.scripts.fakedom0 import FakeDom0, fake_dom0
from xenlive.contract import CONTRACT


def greeted(dom0: FakeDom0) -> tuple[list[str], list[str]]:
    """The greeting as dom0's console shows it (after `guests done`), and as GREETING holds it."""
    dom0.path(CONTRACT.WEB_TOKEN).write_text("s3cret-token\n")
    dom0.start_forwarders()
    result = dom0.boot()
    assert result.returncode == 0, result.stderr
    time.sleep(0.1)
    console = dom0.console.lines()
    done = max(i for i, line in enumerate(console) if line.startswith("xenlive-status: guests done"))
    shown = [line for line in console[done + 1 :] if line and not line.startswith("[")]
    kept = dom0.path(CONTRACT.GREETING).read_text().splitlines()
    assert dom0.path(CONTRACT.GREETING).stat().st_mode & 0o077 == 0  # it holds the web console's token
    return shown, kept


def test_the_greeting_lists_every_guest_and_what_to_do_next(tmp_path: Path) -> None:
    guests = {"web": ("pv", "ready"), "db": ("pvh", "ready"), "bad": ("pv", "panic"), "bsd": ("pvh", "ready")}
    left_out = {"bsd": "its files could not be downloaded"}
    with fake_dom0(tmp_path, guests, left_out=left_out) as dom0:
        shown, kept = greeted(dom0)
        statuses = dom0.console.status()
    addresses = dict(re.findall(r"^guest (\S+) network ok addr=(\S+)", "\n".join(statuses), re.M))
    assert shown == kept
    assert len(kept) <= 15
    assert kept[0] == "xenlive: 2 of 4 guests ready"
    rows = {line.split()[0]: line for line in kept[2:6]}
    for name, kind in (("web", "pv"), ("db", "pvh")):  # the address of its network status line
        addr = re.escape(addresses[name])
        assert re.fullmatch(rf"\s+{name}\s+{kind}\s+ready, network ok\s+{addr}", rows[name]), rows[name]
    assert re.fullmatch(r"\s+bad\s+pv\s+failed\s+-", rows["bad"])
    assert re.fullmatch(r"\s+bsd\s+pvh\s+not on this ISO\s+-", rows["bsd"])
    text = "\n".join(kept)
    assert "xl console NAME (Ctrl-] comes back here)" in text
    assert "http://127.0.0.1:8080/" in text and "token s3cret-token" in text
    assert "SSH to dom0: xenlive ssh" in text and "ssh -p 2222 root@127.0.0.1" in text
    assert "SSH to a guest: xenlive ssh NAME" in text


def test_the_greeting_of_many_guests_stays_within_15_lines(tmp_path: Path) -> None:
    guests = {f"g{n}": ("pv", "ready") for n in range(12)}
    with fake_dom0(tmp_path, guests, network=False) as dom0:
        shown, kept = greeted(dom0)
    assert shown == kept
    assert len(kept) <= 15
    assert kept[0] == "xenlive: 12 of 12 guests ready"
    assert "  ... and 4 more (xl list)" in kept
    assert not any(line.startswith("SSH to a guest") for line in kept)  # no network, no SSH to the guests
