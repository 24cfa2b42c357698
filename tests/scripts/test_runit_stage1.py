"""dom0's runit stage 1 (overlays/xenlive-runit/etc/runit/boot-run/10-xenlive.sh), the real script sourced
by sh as Debian's /etc/runit/1 does, under a fake dom0: what it starts, and nothing outside its root."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.scripts.fakedom0 import RECORDER, RUNIT, XEN_LIB, FakeDom0, fake_dom0

STAGE1 = RUNIT / "etc/runit/boot-run/10-xenlive.sh"


def run_stage1(dom0: FakeDom0) -> list[str]:
    """Source stage 1 with xenlive-boot, xenstored and xen-init-dom0 replaced by recorders; their calls."""
    boot = dom0.root / "usr/lib/xenlive/xenlive-boot"
    boot.unlink()
    boot.write_text(RECORDER.format(name="xenlive-boot"))
    boot.chmod(0o755)
    xen_bin = dom0.root / XEN_LIB.lstrip("/") / "bin"  # where xenlive.conf's XEN_BIN says
    xen_bin.mkdir(parents=True)
    for name in ("xenstored", "xen-init-dom0"):
        (xen_bin / name).write_text(RECORDER.format(name=name))
        (xen_bin / name).chmod(0o755)
    result = subprocess.run(["sh", "-c", f". {STAGE1}"], env=dom0.env(), capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    time.sleep(0.3)  # what it started in the background
    return dom0.calls()


def test_stage1_starts_xenstored_the_network_and_xenlive_boot(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}) as dom0:
        calls = run_stage1(dom0)
        root = dom0.root
        assert f"xenstored --pid-file {root}/run/xenstore.pid" in calls
        assert "xen-init-dom0 " in calls
        assert "xenlive-boot prefetch" in calls
        assert "xenlive-boot " in calls
        assert f"nft -f {root}/etc/xenlive/network.nft" in calls
        assert "ip -batch -" in calls
        assert (root / "proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"  # the recipe's NAT
        assert (root / "proc/sys/kernel/hostname").read_text().strip() == "xenlive"
        for made in ("run/xenlive", "var/log/xen/console", "var/log/xenlive/xenlive-web", "run/sshd"):
            assert (root / made).is_dir()


def test_stage1_without_a_network_makes_no_bridge(tmp_path: Path) -> None:
    with fake_dom0(tmp_path, {"web": ("pv", "ready")}, network=False) as dom0:
        calls = run_stage1(dom0)
        assert not any(call.startswith(("nft ", "ip -batch")) for call in calls)
        assert "ip link set lo up" in calls
        assert (dom0.root / "proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
