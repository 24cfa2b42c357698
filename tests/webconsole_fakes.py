"""A fake Xen host for the web console: a fake `xl`, a fake `xenlive-boot`, and the files dom0 has.

The fake `xl` answers `xl list` and `xl uptime` in the real output format (tools/xl/xl_info.c) from
a JSON state file, and `xl shutdown|reboot|destroy NAME` change that state. Every invocation of either
fake is recorded, one argv per line, so tests can see which commands the console ran.

`serve_webconsole` loads the console from its place in the dom0 overlay and runs it on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WEBCONSOLE = ROOT / "overlays/xenlive/usr/lib/xenlive/webconsole.py"

FAKE_XL = r'''#!{python}
"""FAKE xl for the xenlive web console tests: real `xl list` / `xl uptime` format, recorded actions."""
import json, sys, time
from pathlib import Path

STATE = Path({state!r})
RECORD = Path({record!r})
with RECORD.open("a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\n")
state = json.loads(STATE.read_text())
domains = state["domains"]
command, args = sys.argv[1], sys.argv[2:]

def find(name):
    for d in domains:
        if d["name"] == name:
            return d
    sys.stderr.write(f"Error: Domain '{{name}}' does not exist.\n")
    sys.exit(1)

def uptime(seconds):
    day, rest = divmod(int(seconds), 86400)
    hour, rest = divmod(rest, 3600)
    minute, sec = divmod(rest, 60)
    clock = f"{{hour:2d}}:{{minute:02d}}:{{sec:02d}}"
    return (f"{{day}} day, " if day == 1 else f"{{day}} days, " if day else "") + clock

if command == "list" and not args:
    print("Name                                        ID   Mem VCPUs\tState\tTime(s)")
    for d in domains:
        print(f"{{d['name']:<40}} {{d['domid']:5d}} {{d['memory']:5d}} {{d['vcpus']:5d}}", end="")
        print(f"     {{d['flags']}}  {{d['cpu']:8.1f}}")
elif command == "uptime" and not args:
    print(f"{{'Name':<33}} {{'ID':>4}} Uptime")
    for d in domains:
        print(f"{{d['name']:<33}} {{d['domid']:4d}} {{uptime(time.time() - d['started'])}}")
elif command in ("shutdown", "destroy") and len(args) == 1:
    domains.remove(find(args[0]))
elif command == "reboot" and len(args) == 1:
    find(args[0])["started"] = time.time()
else:
    sys.stderr.write(f"fake xl: unsupported command {{sys.argv[1:]}}\n")
    sys.exit(2)
STATE.write_text(json.dumps(state))
'''

FAKE_XENLIVE_BOOT = r'''#!{python}
"""FAKE xenlive-boot for the xenlive web console tests: `start NAME` adds the domain to the fake xl's state."""
import json, sys, time
from pathlib import Path

STATE = Path({state!r})
RECORD = Path({record!r})
with RECORD.open("a") as out:
    out.write(json.dumps(["xenlive-boot", *sys.argv[1:]]) + "\n")
state = json.loads(STATE.read_text())
name = sys.argv[2]
state["domains"].append(
    {{"name": name, "domid": max(d["domid"] for d in state["domains"]) + 1, "memory": 128, "vcpus": 1,
     "flags": "-b----", "cpu": 0.1, "started": time.time()}}
)
STATE.write_text(json.dumps(state))
'''


@dataclass
class FakeHost:
    """The fake host's files; pass `options()` to the console's `Paths`."""

    root: Path
    xl: Path
    xenlive_boot: Path
    state: Path
    record: Path
    guests_tsv: Path
    xl_configs: Path
    leases: Path
    console_logs: Path
    token_file: Path
    console: Path
    settings: Path

    def options(self) -> dict[str, Any]:
        return {
            "xl": str(self.xl),
            "xenlive_boot": str(self.xenlive_boot),
            "guests_tsv": self.guests_tsv,
            "xl_configs": self.xl_configs,
            "leases": self.leases,
            "console_logs": self.console_logs,
            "token_file": self.token_file,
            "console": self.console,
            "settings": self.settings,
        }

    def commands(self) -> list[list[str]]:
        """Every command line the fakes were run with, in order."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def actions(self) -> list[list[str]]:
        """The commands that change something (not `xl list` / `xl uptime`)."""
        return [argv for argv in self.commands() if argv[0] not in ("list", "uptime")]


def make_fake_host(root: Path) -> FakeHost:
    """dom0 with guests web1, web2 (running) and spare (configured, stopped); web1 and web2 have leases.

    dom0's network domain (xenlive-boot's settings) is xen.lan; its host name is the test machine's."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    host = FakeHost(
        root=root,
        xl=root / "fake-xl",
        xenlive_boot=root / "fake-xenlive-boot",
        state=root / "fake-xl-state.json",
        record=root / "fake-commands.jsonl",
        guests_tsv=root / "guests.tsv",
        xl_configs=root / "xl",
        leases=root / "dnsmasq.leases",
        console_logs=root / "console",
        token_file=root / "run/web-token",
        console=root / "hvc0",
        settings=root / "xenlive.conf",
    )
    keys = ("name", "domid", "memory", "vcpus", "flags", "cpu", "started")
    domains = [
        dict(zip(keys, ("Domain-0", 0, 512, 2, "r-----", 35.2, now - 400), strict=True)),
        dict(zip(keys, ("web1", 1, 128, 1, "-b----", 5.1, now - 3725), strict=True)),
        dict(zip(keys, ("web2", 2, 256, 2, "-b----", 4.0, now - 90061), strict=True)),
    ]
    host.state.write_text(json.dumps({"domains": domains}))
    for path, template in ((host.xl, FAKE_XL), (host.xenlive_boot, FAKE_XENLIVE_BOOT)):
        path.write_text(template.format(python=sys.executable, state=str(host.state), record=str(host.record)))
        path.chmod(0o755)
    host.guests_tsv.write_text(
        "# name\timage\ttype\tautostart\nweb1\tdebian\tpv\tyes\nweb2\tdebian\tpvh\tyes\nspare\tdebian\tpv\tno\n"
    )
    host.xl_configs.mkdir()
    for i, name in enumerate(("web1", "web2", "spare")):
        mac = f"00:16:3e:00:00:0{i + 1}"
        (host.xl_configs / f"{name}.cfg").write_text(f'name = "{name}"\nvif = [ "mac={mac},bridge=xenbr0" ]\n')
    expiry = int(now) + 3600
    host.leases.write_text(
        f"{expiry} 00:16:3e:00:00:01 10.0.0.11 web1 01:00:16:3e:00:00:01\n"
        f"{expiry} 00:16:3e:00:00:02 10.0.0.12 * *\n"  # no host name: found by the MAC in web2.cfg
        f"{int(now) - 10} 00:16:3e:00:00:03 10.0.0.13 spare *\n"  # expired
    )
    host.console.touch()
    host.settings.write_text("NETWORK=yes\nBRIDGE=xenbr0\nDOMAIN=xen.lan\nNAT=yes  # a comment\n")
    host.console_logs.mkdir()
    (host.console_logs / "guest-web1.log").write_text("Debian GNU/Linux 12 web1 hvc0\n\nweb1 login: \n")
    (host.console_logs / "guest-web2.log").write_text("web2 login: \n")
    return host


def load_webconsole() -> ModuleType:
    """The console module, from its place in the dom0 overlay (it is not part of the xenlive package)."""
    name = "xenlive_webconsole"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, WEBCONSOLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class RunningConsole:
    url: str
    token: str
    server: Any


@contextmanager
def serve_webconsole(host: FakeHost, cache_seconds: float = 0.0, listen: str = "127.0.0.1") -> Iterator[RunningConsole]:
    """The console on a free port of 127.0.0.1 (or `listen`) against the fake host, in a thread, for the duration."""
    web = load_webconsole()
    paths = web.Paths(**host.options(), static=WEBCONSOLE.parent / "web")
    token = web.load_or_make_token(paths.token_file)
    server = web.WebConsole(
        (listen, 0), web.Host(paths, cache_seconds=cache_seconds), token, web.Announcer(paths.console)
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningConsole(f"http://127.0.0.1:{server.server_address[1]}", token, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
