"""What the Debian guest image must not carry of openssh-server (builders/mmdebstrap.py, UNBAKED): host keys
and the links that would start Debian's own sshd at boot; and never anything outside the tree."""

from __future__ import annotations

import os
from pathlib import Path

from xenlive.builders.mmdebstrap import remove_unbaked


def test_host_keys_and_debians_sshd_links_are_removed_and_nothing_outside_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    (outside / "ssh").mkdir(parents=True)
    (outside / "ssh" / "ssh_host_ed25519_key").write_text("the build host's key")
    tree = tmp_path / "tree"
    (tree / "etc/ssh").mkdir(parents=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "sshd_config"):
        (tree / "etc/ssh" / name).write_text("x")
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    (wants / "xenlive-netcheck.service").symlink_to("../xenlive-netcheck.service")
    runsvdir = tree / "etc/runit/runsvdir"
    (runsvdir / "default").mkdir(parents=True)
    (runsvdir / "default/ssh").symlink_to("/etc/sv/ssh")  # dangling outside the chroot: still removed
    (runsvdir / "default/getty-tty1").symlink_to("/etc/sv/getty-tty1")
    (tree / "etc/runit/runsvdir/elsewhere").symlink_to(outside)  # a link out of the tree is not followed
    remove_unbaked(tree)
    assert sorted(p.name for p in (tree / "etc/ssh").iterdir()) == ["sshd_config"]
    assert [p.name for p in wants.iterdir()] == ["xenlive-netcheck.service"]
    assert sorted(os.listdir(runsvdir / "default")) == ["getty-tty1"]
    assert (outside / "ssh" / "ssh_host_ed25519_key").exists()
