"""A fake dom0 for the boot-side scripts: the real xenlive-boot, xenlive-console and runit stage 1, run
unmodified and unprivileged under a root prefix (XENLIVE_ROOT, which dom0's runtime contract puts in front
of every path), with FAKE Xen and system tools on PATH.

- The root holds what the ISO's dom0 would: the contract rendered from xenlive/contract.py, the settings and
  guest table rendered by the config stage's own templates from a recipe, /proc, /sys/hypervisor and
  /sys/class/net as files, and `dev/hvc0` as a FIFO read by a thread, as a console device is written.
- FAKE `xl` keeps the domains as files and plays each guest from a script of its behaviour
  (`ready`, `panic`, `crash`, `restart`, `silent`, `nonet`, `escapes`, `fail-create`, `chatty`: ready, then
  three more lines): it appends to the guest's
  console log what the guest would print, as xenconsoled would.
- FAKE `sleep` sleeps 20 ms, so that the scripts' waits take a moment, not seconds.
- Every other fake records its argv in `calls` and succeeds.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from xenlive.contract import CONTRACT, CONTRACT_FILE, Contract, render_shell
from xenlive.recipe import load_recipe
from xenlive.render import render_template
from xenlive.services import dom0_services, init_conf
from xenlive.stages.config import template_context

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "overlays/xenlive/usr/lib/xenlive"
RUNIT = REPO / "overlays/xenlive-runit"
TEMPLATES = REPO / "overlays/xenlive/etc/xenlive"

# Where the fake dom0's Xen keeps its programs: a path no suite has, since dom0's scripts must take it from
# xenlive.conf (XEN_BIN, which the config stage renders from what the dom0-rootfs stage installed).
XEN_LIB = "/usr/lib/xen-9.99"

RECORDER = """#!/bin/bash
# FAKE {name}: records its argv and succeeds.
printf '%s\\n' "{name} $*" >>"$FAKE/calls"
"""

FAKES = {
    "sleep": "#!/bin/bash\n# FAKE sleep: every wait of the scripts takes 20 ms.\nexec /bin/sleep 0.02\n",
    "losetup": '#!/bin/bash\n# FAKE losetup\nprintf \'%s\\n\' "losetup $*" >>"$FAKE/calls"\necho /dev/loop7\n',
    "blockdev": "#!/bin/bash\n# FAKE blockdev --getsz\necho 2048\n",
    "mountpoint": "#!/bin/bash\n# FAKE mountpoint: nothing is mounted\nexit 1\n",
    "xenstore-watch": "#!/bin/bash\n# FAKE xenstore-watch: no watch (xenlive-boot then checks each second)\nexit 1\n",
    "mount": r"""#!/bin/bash
# FAKE mount: a squashfs image "mounted" is a directory holding the image's files.
printf '%s\n' "mount $*" >>"$FAKE/calls"
if [[ $2 == squashfs ]]; then
    for file in $IMAGE_FILES; do : >"${@: -1}/$file"; done
fi
""",
    "dmsetup": r"""#!/bin/bash
# FAKE dmsetup create NAME: the device node appears.
printf '%s\n' "dmsetup $*" >>"$FAKE/calls"
[[ $1 == create ]] && : >"$DM_DIR/$2"
exit 0
""",
    "ping": r"""#!/bin/bash
# FAKE ping: answers, unless FAKE/no-ping names the address.
printf '%s\n' "ping $*" >>"$FAKE/calls"
! grep -qx -- "${@: -1}" "$FAKE/no-ping" 2>/dev/null
""",
    "xl": r"""#!/bin/bash
# FAKE xl: domains are files FAKE/domains/NAME holding the state letters; each guest plays its behaviour.
printf '%s\n' "xl $*" >>"$FAKE/calls"
domains=$FAKE/domains
mkdir -p "$domains"
log() { printf '%s\n' "$2" >>"$CONSOLE_LOGS/guest-$1.log"; }
play() {  # guest name, behaviour: what the guest prints, and what becomes of its domain
    local name=$1 addr=$2
    /bin/sleep 0.1
    log "$name" "Linux version 6.1.0 (a guest booting)"
    case $3 in
    panic)
        log "$name" "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        /bin/sleep 0.05; echo "--p--c-" >"$domains/$name"; return ;;
    crash) echo "--p--c-" >"$domains/$name"; return ;;
    silent) return ;;
    escapes)  # a hostile guest: terminal escapes, C0, C1 and bidirectional controls, some that re-form once cut
        log "$name" $'\e]0;owned\a\e[2J\e[Hclear\e[8mhidden\e[0m text'
        log "$name" $'\xc2\x9b2J\xc2\x9d0;title\xc2\x9c after C1'
        log "$name" $'re\xc2\xc2\x9b\x9bformed \e\e[31m[2J'
        log "$name" $'\xe2\x80\xaeevil \xe2\x81\xa6x'
        log "$name" $'caf\xc3\xa9 \xe2\x9c\x93 \xe2\x80\x94 a\tb'
        log "$name" $'bell\a del\x7f' ;;
    restart)  # gone from the next two `xl list`, as while xl restarts it; then it boots again
        echo 2 >"$FAKE/away-$name"
        until [[ $(cat "$FAKE/away-$name") == 0 ]]; do /bin/sleep 0.02; done ;;
    esac
    /bin/sleep 0.1
    log "$name" "XENLIVE-READY $name 10.7s"
    if [[ $3 != nonet && -e $FAKE/network ]]; then
        /bin/sleep 0.1
        log "$name" "root@$name:~# XENLIVE-NET $name addr=$addr dom0=ok resolve=${PEERS[$name]:--} uplink=- mgmt=closed"
    fi
    [[ $3 == chatty ]] || return
    for n in 1 2 3; do /bin/sleep 0.05; log "$name" "still talking $n"; done  # a login, a job's output...
}
declare -A PEERS=()
[[ -r $FAKE/peers ]] && while read -r name peers; do PEERS[$name]=$peers; done <"$FAKE/peers"
case $1 in
create)
    name=$(basename "$2" .cfg)
    behaviour=$(cat "$FAKE/guests/$name" 2>/dev/null || echo ready)
    if [[ $behaviour == fail-create ]]; then
        echo "libxl: error: domain $name: cannot allocate memory" >&2
        exit 3
    fi
    echo "-b----" >"$domains/$name"
    addr=10.0.3.$((10 + $(ls "$domains" | wc -l)))
    play "$name" "$addr" "$behaviour" </dev/null >/dev/null 2>&1 &
    ;;
list)
    printf 'Name                                        ID   Mem VCPUs\tState\tTime(s)\n'
    printf 'Domain-0                                     0   512     2     r-----       5.0\n'
    id=1
    for file in "$domains"/*; do
        [[ -e $file ]] || continue
        away=$FAKE/away-$(basename "$file")
        if [[ -s $away ]] && (($(cat "$away") > 0)); then
            echo $(($(cat "$away") - 1)) >"$away"
            continue
        fi
        printf '%-40s %5d   128     1     %s       1.0\n' "$(basename "$file")" "$id" "$(cat "$file")"
        id=$((id + 1))
    done
    ;;
shutdown) rm -f "$domains"/* ;;
destroy) rm -f "$domains/$2" ;;
esac
exit 0
""",
}
RECORDED = ("modprobe", "ip", "nft", "usermod", "sv", "xenstore-read", "xen-init-dom0", "xenstored")


@dataclass
class Console:
    """dom0's console: a FIFO at ROOT/dev/hvc0, read as it is written."""

    path: Path
    data: bytearray = field(default_factory=bytearray)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        os.mkfifo(self.path)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(self.path, os.O_WRONLY)  # never at end of file while the test runs
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            self.data += chunk

    def stop(self) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        os.close(self._fd)
        os.close(self._keep)

    def lines(self) -> list[str]:
        return self.data.decode(errors="replace").splitlines()

    def status(self) -> list[str]:
        return [line.removeprefix(CONTRACT.STATUS_PREFIX + " ") for line in self.lines() if is_status(line)]


def is_status(line: str) -> bool:
    return line.startswith(CONTRACT.STATUS_PREFIX + " ")


RECIPE = """\
extends: base.yaml
iso: {{name: scripts-test}}
dom0: {{console_forwarding: {forwarding}}}
machine: {{memory: 16384}}
network: {{enabled: {network}, nat: {network}}}
guests:
{guests}
"""


@dataclass
class FakeDom0:
    """One dom0 under `root`; `guests`: name -> (type, behaviour); `left_out`: name -> why."""

    tmp: Path
    guests: Mapping[str, tuple[str, str]]
    left_out: Mapping[str, str] = field(default_factory=dict)
    network: bool = True
    bridge: bool = True
    forwarding: str = "until-ready"  # dom0.console_forwarding
    contract: Contract = CONTRACT

    def __post_init__(self) -> None:
        self.root = self.tmp / "root"
        self.fake = self.tmp / "fake"
        self.bin = self.fake / "bin"
        self.console = Console(self.root / self.contract.CONSOLE.lstrip("/"))
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- the root

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def make(self) -> FakeDom0:
        c = self.contract
        for directory in (
            "usr/lib/xenlive",
            "etc/xenlive",
            "dev",
            "proc/net",
            "proc/xen",
            "proc/sys/kernel",
            "proc/sys/net/ipv4",
            "sys/hypervisor/version",
            "sys/hypervisor/properties",
            "sys/class/net",
            "sys/module/xen_blkback",
            "sys/module/xen_netback",
            "sys/module/dm_snapshot",
            "run/xenlive/hosts.d",
            "var/log/xenlive",
            "dev/mapper",
        ):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / CONTRACT_FILE).write_text(render_shell(c))
        for script in ("common.bash", "xenlive-boot", "xenlive-console", "xenlive-greeting"):
            (self.root / "usr/lib/xenlive" / script).symlink_to(LIB / script)
        self._render_settings()
        files = {
            "proc/uptime": "12.34 20.00\n",
            "proc/net/route": "Iface\tDestination\tGateway\tFlags\n"
            "eth0\t00000000\t0202000A\t0003\neth0\t0002000A\t00000000\t0001\n",
            "proc/xen/capabilities": "control_d\n",
            "proc/sys/kernel/hostname": "localhost\n",
            "proc/sys/net/ipv4/ip_forward": "0\n",
            "sys/hypervisor/version/major": "4\n",
            "sys/hypervisor/version/minor": "17\n",
            "sys/hypervisor/version/extra": ".5\n",
            "sys/hypervisor/properties/capabilities": "xen-3.0-x86_64 hvm-3.0-x86_64\n",
            "etc/hostname": "xenlive\n",
            c.XENSTORE_PID.lstrip("/"): f"{os.getpid()}\n",
        }
        for name, text in files.items():
            self.path(name).parent.mkdir(parents=True, exist_ok=True)
            self.path(name).write_text(text)
        if self.bridge:
            (self.root / "sys/class/net/xenbr0").mkdir()
        if self.network:
            (self.fake / "network").mkdir(parents=True)
        # The fakes.
        self.bin.mkdir(parents=True)
        (self.fake / "guests").mkdir()
        for name, (_, behaviour) in self.guests.items():
            (self.fake / "guests" / name).write_text(behaviour)
        peers = [f"{name} {','.join(f'{p}:ok' for p in self.guests if p != name) or '-'}" for name in self.guests]
        (self.fake / "peers").write_text("\n".join(peers) + "\n")
        for name, text in FAKES.items():
            self._fake(name, text)
        for name in RECORDED:
            self._fake(name, RECORDER.format(name=name))
        self.console.start()
        return self

    def _fake(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def _render_settings(self) -> None:
        guests = "\n".join(
            f"  - {{name: {name}, image: debian, type: {kind}}}" for name, (kind, _) in self.guests.items()
        )
        recipe = self.tmp / "recipe.yaml"
        recipe.write_text(
            RECIPE.format(network="true" if self.network else "false", guests=guests, forwarding=self.forwarding)
        )
        loaded = load_recipe(recipe)
        context = {**template_context(loaded, self.left_out, XEN_LIB), "contract": self.contract}
        for name, where in (("xenlive.conf", self.contract.SETTINGS), ("guests.tsv", self.contract.GUESTS_TSV)):
            self.path(where).parent.mkdir(parents=True, exist_ok=True)
            self.path(where).write_text(render_template(TEMPLATES / f"{name}.j2", context))
        self.path(self.contract.INIT_CONF).write_text(init_conf(dom0_services(loaded.recipe)))

    # -- running the scripts

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "XENLIVE_ROOT": str(self.root),
            "FAKE": str(self.fake),
            "CONSOLE_LOGS": str(self.path(self.contract.CONSOLE_LOGS)),
            "DM_DIR": str(self.path(self.contract.DM_DIR)),
            "IMAGE_FILES": self.contract.IMAGE_FILES,
            "HOME": str(self.tmp),
            **extra,
        }

    def start_forwarders(self) -> None:
        """One xenlive-console per guest, as dom0's init starts them before the guests exist."""
        for name in self.guests:
            self.processes.append(
                subprocess.Popen(
                    ["bash", str(self.root / "usr/lib/xenlive/xenlive-console"), name],
                    env=self.env(),
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def boot(self, *args: str, timeout: float = 20, **env: str) -> subprocess.CompletedProcess[str]:
        """xenlive-boot ARGS, to its end."""
        return subprocess.run(
            ["bash", str(self.root / "usr/lib/xenlive/xenlive-boot"), *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def calls(self) -> list[str]:
        path = self.fake / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        for process in self.processes:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            process.wait()
        self.console.stop()


@contextmanager
def fake_dom0(tmp: Path, guests: Mapping[str, tuple[str, str]], **options: object) -> Iterator[FakeDom0]:
    dom0 = FakeDom0(tmp, guests, **options).make()  # type: ignore[arg-type]
    try:
        yield dom0
    finally:
        dom0.stop()
