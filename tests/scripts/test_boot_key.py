"""The boot's SSH key from QEMU (`xenlive boot`, `xenlive ssh`): the real xenlive-boot under a fake dom0 finds it
in the SMBIOS table QEMU's `-smbios type=11` makes (the kernel's /sys/firmware/dmi/tables/DMI) and adds it to
root's authorized_keys beside the recipe's keys; anything else that comes that way is refused."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from tests.scripts.fakedom0 import FakeDom0, fake_dom0
from xenlive.contract import CONTRACT
from xenlive.qemu import QemuSpec, qemu_argv

BOOT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootKeyBootKeyBootKeyBootKeyBootKeyBootKe xenlive-boot"
RECIPE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRecipeKeyRecipeKeyRecipeKeyRecipeKeyRecipeK me@laptop"


def smbios_table(*strings: str) -> bytes:
    """An SMBIOS table as QEMU lays it out: a BIOS structure (type 0) with its strings, an OEM strings structure
    (type 11, QEMU's -smbios type=11) with `strings`, and the end-of-table structure (type 127)."""
    bios = struct.pack("<BBHBBHBB", 0, 10, 0, 1, 2, 0xE800, 3, 0) + b"SeaBIOS\0rel-1.16\0\0"
    count = len(strings)
    oem = struct.pack("<BBHB", 11, 5, 0x0B00, count) + b"".join(s.encode() + b"\0" for s in strings) + b"\0"
    return bios + oem + struct.pack("<BBH", 127, 4, 0x7F00) + b"\0\0"


def boot_with(dom0: FakeDom0, table: bytes | None) -> list[str]:
    keys = dom0.path(CONTRACT.AUTHORIZED_KEYS)
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text(f"# dom0.ssh.authorized_keys in the recipe.\n{RECIPE_KEY}\n")
    if table is not None:
        dmi = dom0.path(f"{CONTRACT.SYS}/firmware/dmi/tables/DMI")
        dmi.parent.mkdir(parents=True)
        dmi.write_bytes(table)
    dom0.start_forwarders()
    result = dom0.boot()
    assert result.returncode == 0, result.stderr
    time.sleep(0.1)
    assert dom0.console.status()[-1] == "guests done ready=1 failed=0 skipped=0"
    return keys.read_text().splitlines()


def credential(key: str) -> str:
    return f"io.systemd.credential:{CONTRACT.SSH_CREDENTIAL}={key}"


def test_the_boots_key_from_qemu_joins_the_recipes_keys(tmp_path: Path) -> None:
    # The argument QEMU gets (qemu_argv) is the string dom0 finds.
    argv = qemu_argv(QemuSpec(iso=Path("x.iso"), ssh_key=BOOT_KEY))
    assert argv[argv.index("-smbios") + 1] == f"type=11,value={credential(BOOT_KEY)}"
    table = smbios_table("some other OEM string", credential(BOOT_KEY))
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False) as dom0:
        config = dom0.path(f"{CONTRACT.XL_CONFIGS}/web.cfg")
        config.parent.mkdir(parents=True)
        config.write_text('name = "web"\ncmdline = "root=/dev/xvda console=hvc0 quiet"\n')
        assert boot_with(dom0, table)[1:] == [RECIPE_KEY, BOOT_KEY]
        # The guest gets it on its kernel command line, for its sshd (xenlive ssh GUEST).
        kind, data, _comment = BOOT_KEY.split()
        cmdline = f'cmdline="root=/dev/xvda console=hvc0 quiet xenlive.ssh_key={kind}:{data}"'
        assert f"xl create {config} {cmdline}" in dom0.calls()
        assert dom0.boot("start", "web").returncode == 0  # xenlive-boot's other uses add nothing
        again = dom0.path(CONTRACT.AUTHORIZED_KEYS).read_text().splitlines()
        assert again[1:] == [RECIPE_KEY, BOOT_KEY]


def test_without_a_key_from_qemu_only_the_recipes_keys_are_there(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False) as dom0:
        assert boot_with(dom0, None)[1:] == [RECIPE_KEY]
        assert [c for c in dom0.calls() if c.startswith("xl create")] == [
            f"xl create {dom0.path(CONTRACT.XL_CONFIGS)}/web.cfg"
        ]
    with fake_dom0(tmp_path / "b", {"web": ("pv", "ready")}, network=False) as dom0:
        assert boot_with(dom0, smbios_table("no credential here"))[1:] == [RECIPE_KEY]


@pytest.mark.parametrize(
    "hostile",
    [
        f'command="/bin/sh" {BOOT_KEY}',  # options would run what the sender chose
        f"{BOOT_KEY}\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== other",  # a second key
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP== old",
        "ssh-ed25519 AAAA$(reboot)",
    ],
)
def test_anything_but_one_plain_public_key_is_refused(tmp_path: Path, hostile: str) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False) as dom0:
        assert boot_with(dom0, smbios_table(credential(hostile)))[1:] == [RECIPE_KEY]
