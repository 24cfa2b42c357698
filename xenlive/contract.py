"""dom0's runtime contract: what the scripts inside the ISO and the Python half of xenlive agree on.

One declaration, read three ways:
- the boot-side scripts source its shell rendering, `/usr/lib/xenlive/contract.sh`, which the dom0-rootfs
  stage writes into dom0 (and so into its initramfs) and the Debian guest builders into each image;
- the smoke parser (`smoke/console.py`) takes the status-line grammar from `STATUS`;
- the web console (a script of its own inside dom0) reads the rendered file with `parse_shell`'s rules.

Every path is rendered as `${XENLIVE_ROOT-}/path`: empty inside the ISO, a directory in tests/scripts,
which run the real scripts unprivileged under a root prefix with fake tools on PATH.
A path, column or flag is written here only; tests/unit/test_contract.py checks that every rendering
agrees with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType

ROOT_VARIABLE = "XENLIVE_ROOT"
CONTRACT_FILE = "usr/lib/xenlive/contract.sh"  # where dom0 and each Debian guest image carry it
INITRAMFS_FILE = "etc/initramfs-tools/scripts/xenlive-contract"  # in dom0's initramfs: /scripts/xenlive-contract

# Each subject of a `xenlive-status:` line and the states it reports (docs/console-protocol.md).
STATUS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "dom0": ("up", "failed", "down"),
        "toolstack": ("up", "failed"),
        "web": ("up", "failed"),
        "network": ("failed",),
        "plan": ("guests=",),
        "guest": ("created", "ready", "failed", "skipped", "restarted", "network"),
        "guests": ("done", "stopping", "stopped", "destroyed"),
    }
)


@dataclass(frozen=True)
class Contract:
    """The runtime contract of dom0 (and the markers its guests print). Field names are the shell names."""

    # /run/xenlive, made by dom0's initramfs: the medium, the guests' images and disks, the guests' state.
    RUN: str = "/run/xenlive"
    MEDIUM: str = "/run/xenlive/medium"  # the ISO, mounted by the initramfs
    LAYERS: str = "/run/xenlive/layers"  # the squashfs layers of the live root, mounted by the initramfs
    RW: str = "/run/xenlive/rw"  # the tmpfs holding the live root's writes
    IMAGES: str = "/run/xenlive/images"  # each guest image, mounted read-only from the medium
    COW: str = "/run/xenlive/cow"  # tmpfs holding each guest's written blocks
    STATE: str = "/run/xenlive/state"  # one file per guest and flag: STATE/NAME.FLAG (STATE_FLAGS)
    HOSTS_DIR: str = "/run/xenlive/hosts.d"  # dnsmasq's hostsdir: the uplink gateway's name
    WEB_TOKEN: str = "/run/xenlive/web-token"  # the web console's token, readable by root only
    BOOT_PIDFILE: str = "/run/xenlive/xenlive-boot.pid"  # while xenlive-boot waits for the guests
    STOPPING: str = "/run/xenlive/stopping"  # made when dom0's shutdown begins stopping the guests
    GREETING: str = "/run/xenlive/motd"  # what to do next (guests, consoles, SSH), made once the guests are done
    # What the build writes into dom0 from the recipe.
    SETTINGS: str = "/etc/xenlive/xenlive.conf"  # the recipe's network settings (sh)
    INIT_CONF: str = "/etc/xenlive/init.conf"  # what dom0's init asks of xenlive-boot (AFTER_CREATED, ...)
    GUESTS_TSV: str = "/etc/xenlive/guests.tsv"  # one row per guest: GUEST_COLUMNS, tab-separated
    PASSWORD_HASH: str = "/etc/xenlive/root-password-hash"  # dom0.ssh.root_password_hash, mode 0600
    XL_CONFIGS: str = "/etc/xen/xenlive"  # NAME.cfg, one xl config per guest
    LIB: str = "/usr/lib/xenlive"  # xenlive's programs in dom0
    # What Xen and the kernel provide.
    CONSOLE_LOGS: str = "/var/log/xen/console"  # xenconsoled --log=guest writes guest-NAME.log here
    SERVICE_LOGS: str = "/var/log/xenlive"  # the services' own logs
    GUEST_LOGS: str = "/var/log/xenlive/guests"  # NAME.log: each guest's console as plain text, every line
    MOTD: str = "/etc/motd"  # a link to GREETING, unless an overlay ships a motd of its own
    AUTHORIZED_KEYS: str = "/root/.ssh/authorized_keys"  # the recipe's keys, and the boot's key from QEMU
    CONSOLE: str = "/dev/hvc0"  # dom0's console: Xen passes it on to the serial port
    DM_DIR: str = "/dev/mapper"
    XENSTORE_PID: str = "/run/xenstore.pid"  # xenstored writes it once it serves
    SYS: str = "/sys"  # hypervisor/ (Xen's version and capabilities), class/net/, module/
    PROC: str = "/proc"  # uptime, net/route, cmdline, xen/capabilities, sys/
    # Names.
    DM_PREFIX: str = "xenlive-"  # a guest's copy-on-write disk: DM_DIR/DM_PREFIX + NAME
    GUEST_COLUMNS: str = "name image type autostart skip"
    STATE_FLAGS: str = "created done net gone panic"
    # The ISO's layout, relative to MEDIUM.
    ISO_LIVE: str = "live"  # dom0's kernel, initramfs and squashfs layers
    ISO_LAYER_LIST: str = "live/filesystem.module"  # the layers, bottom first, one per line
    ISO_IMAGES: str = "xenlive/images"  # IMAGE.squashfs, holding IMAGE_FILES
    IMAGE_FILES: str = "disk.img vmlinux initrd.img"
    # The console protocol (docs/console-protocol.md).
    STATUS_PREFIX: str = "xenlive-status:"
    READY_MARKER: str = "XENLIVE-READY"
    NET_MARKER: str = "XENLIVE-NET"
    # The public key `xenlive boot` makes for each boot and hands to dom0 through QEMU (xenlive/qemu.py): the
    # name of its SMBIOS OEM string (io.systemd.credential:NAME=KEY) or fw_cfg file (opt/NAME), systemd's name.
    SSH_CREDENTIAL: str = "ssh.authorized_keys.root"
    # Longest guest console line forwarded to dom0's console; the rest is cut. One write each, under bash's
    # 1024-byte output buffer, so that no line is split into writes that another line could slip between.
    GUEST_LINE_MAX: int = 900

    # -- derived names

    def guest_columns(self) -> tuple[str, ...]:
        return tuple(self.GUEST_COLUMNS.split())

    def state_flags(self) -> tuple[str, ...]:
        return tuple(self.STATE_FLAGS.split())

    def disk(self, guest: str) -> str:
        return f"{self.DM_DIR}/{self.DM_PREFIX}{guest}"

    def image_mount(self, image: str) -> str:
        return f"{self.IMAGES}/{image}"

    def iso_image(self, image: str) -> str:
        return f"{self.ISO_IMAGES}/{image}.squashfs"

    def variables(self) -> dict[str, str]:
        """Shell name -> value, in declaration order."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name.isupper()}

    def with_paths(self, **changes: str) -> Contract:
        return replace(self, **changes)  # type: ignore[arg-type]  # every path is a str


CONTRACT = Contract()
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=(?:\$\{XENLIVE_ROOT-\})?'([^']*)'")


def render_shell(contract: Contract = CONTRACT) -> str:
    """The contract as a file that sh and bash source: `NAME='value'`, each absolute path under the root prefix."""
    lines = [
        "# dom0's runtime contract, generated by xenlive from xenlive/contract.py: do not edit.",
        "# Sourced by sh and bash. Paths lie under ${XENLIVE_ROOT-}: empty in the ISO, a directory in tests.",
        "# shellcheck shell=sh disable=SC2034",
        "ROOT=${XENLIVE_ROOT-}  # for the few paths outside the contract (/run/lock, /dev/pts, ...)",
    ]
    for name, value in contract.variables().items():
        if "'" in value or "\n" in value:
            raise ValueError(f"contract value {name} cannot be quoted for sh: {value!r}")
        prefix = "${" + ROOT_VARIABLE + "-}" if _PATH.fullmatch(value) else ""
        lines.append(f"{name}={prefix}'{value}'")
    return "\n".join(lines) + "\n"


def parse_shell(text: str, root: str = "") -> dict[str, str]:
    """The values of a rendered contract file, paths under `root` (the web console's reader follows these rules)."""
    values = {}
    for line in text.splitlines():
        if found := _LINE.fullmatch(line):
            prefixed = line.startswith(f"{found[1]}=${{")
            values[found[1]] = (root + found[2]) if prefixed else found[2]
    return values


def write_contract_tree(root: Path, contract: Contract = CONTRACT, *, initramfs: bool = False) -> Path:
    """A tree holding CONTRACT_FILE (mode 0644), to lay into dom0 or a guest image like an overlay; with
    `initramfs`, also INITRAMFS_FILE, which initramfs-tools copies into dom0's initramfs."""
    text = render_shell(contract)
    for name in (CONTRACT_FILE, *([INITRAMFS_FILE] if initramfs else [])):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    return root
