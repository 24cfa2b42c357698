"""Overlays laid into a tree (dom0's config layer, a guest's root filesystem) stay in that tree, whatever
symlinks the tree or the overlay hold, and keep their modes; a stage records what others cannot read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xenlive import rootfs
from xenlive.errors import InputFileError
from xenlive.fsutil import digest_tree, install_tree, not_world_readable, path_in_tree
from xenlive.recipe import load_recipe
from xenlive.stages import StageRunner
from xenlive.stages.config import install_config


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Stand-ins for the build host's own files, which no overlay may touch."""
    host = tmp_path / "host"
    (host / "run").mkdir(parents=True)
    (host / "usr" / "bin").mkdir(parents=True)
    (host / "usr" / "bin" / "mawk").write_text("the host's mawk\n")
    return host


def debian_like_tree(root: Path, host: Path) -> Path:
    """A root filesystem with Debian's absolute symlinks, pointing where the build host has the same paths."""
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to(host / "run")  # as /var/run -> /run
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "etc" / "alternatives").mkdir(parents=True)
    (root / "etc" / "alternatives" / "awk").symlink_to(host / "usr" / "bin" / "mawk")
    (root / "usr" / "bin" / "awk").symlink_to("/etc/alternatives/awk")
    (root / "lib").symlink_to("usr/lib")  # merged /usr
    return root


def hostile_overlay(src: Path) -> Path:
    (src / "var" / "run").mkdir(parents=True)
    (src / "var" / "run" / "evil").write_text("written through /var/run\n")
    (src / "usr" / "bin").mkdir(parents=True)
    (src / "usr" / "bin" / "awk").write_text("#!/bin/sh\necho pwned\n")
    (src / "lib" / "modules-load.d").mkdir(parents=True)
    (src / "lib" / "modules-load.d" / "xen.conf").write_text("xen-blkfront\n")
    (src / "etc").mkdir()
    (src / "etc" / "shadow-link").symlink_to("/etc/shadow")
    return src


def assert_host_untouched(host: Path) -> None:
    assert (host / "usr" / "bin" / "mawk").read_text() == "the host's mawk\n"
    assert list((host / "run").iterdir()) == []


def test_an_overlay_never_writes_through_a_symlink_of_the_tree_to_the_build_host(tmp_path: Path, host: Path) -> None:
    root = debian_like_tree(tmp_path / "root", host)
    install_tree(hostile_overlay(tmp_path / "overlay"), root)
    assert_host_untouched(host)
    # Inside the tree, paths lead where they would in the booted system.
    assert (root / "usr" / "bin" / "awk").read_text() == "#!/bin/sh\necho pwned\n"
    assert path_in_tree(root, "var/run/evil") == root.joinpath(*host.parts[1:], "run", "evil")
    assert (root / "usr" / "lib" / "modules-load.d" / "xen.conf").read_text() == "xen-blkfront\n"
    assert os.readlink(root / "etc" / "shadow-link") == "/etc/shadow"  # copied, never followed


def test_a_later_overlay_cannot_write_through_a_symlink_an_earlier_one_made(tmp_path: Path, host: Path) -> None:
    first, second, root = tmp_path / "first", tmp_path / "second", tmp_path / "root"
    first.mkdir()
    (first / "x").symlink_to(host / "run")
    (first / "up").symlink_to("../../../../..")
    (second / "x").mkdir(parents=True)
    (second / "x" / "evil").write_text("evil\n")
    (second / "up" / "etc").mkdir(parents=True)
    (second / "up" / "etc" / "evil").write_text("evil\n")
    install_tree(first, root)
    install_tree(second, root)
    assert_host_untouched(host)
    assert (root / "etc" / "evil").is_file()  # '..' stops at the tree's root


def test_a_file_cannot_replace_a_directory_and_a_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "motd").mkdir(parents=True)
    src = tmp_path / "overlay"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "motd").write_text("hello\n")
    with pytest.raises(InputFileError, match=r"would replace the directory .*/root/etc/motd"):
        install_tree(src, root)
    (root / "loop").symlink_to("loop")
    (src / "loop").mkdir()
    (src / "etc" / "motd").unlink()
    with pytest.raises(Exception, match="too many levels of symbolic links"):
        install_tree(src, root)


def test_make_rootfs_lays_overlays_in_after_mmdebstrap_inside_the_tree(
    tmp_path: Path, host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = hostile_overlay(tmp_path / "overlay")
    (overlay / "etc" / "initramfs-tools").mkdir()
    (overlay / "etc" / "initramfs-tools" / "modules").write_text("xen-blkfront\n")
    argvs: list[list[str]] = []

    def mmdebstrap(argv: list[str], **_: Any) -> None:
        argvs.append(argv)
        debian_like_tree(tree, host)  # what mmdebstrap leaves: Debian's symlinks

    tree = tmp_path / "tree"
    monkeypatch.setattr(rootfs, "run", mmdebstrap)
    rootfs.make_rootfs(
        tree,
        suite="bookworm",
        sources=["deb http://deb.debian.org/debian bookworm main"],
        packages=["bash"],
        epoch=0,
        overlays=[overlay],
    )
    assert_host_untouched(host)
    assert (tree / "usr" / "bin" / "awk").read_text() == "#!/bin/sh\necho pwned\n"
    (argv,) = argvs
    assert not [a for a in argv if a.startswith("--customize-hook")]  # nothing copied by cp from the host
    assert [a for a in argv if a.startswith("--setup-hook")] == [
        f'--setup-hook=if [ -d {overlay}/etc/initramfs-tools ]; then mkdir -p "$1"/etc/initramfs-tools && '
        f'cp -a --no-preserve=ownership {overlay}/etc/initramfs-tools/. "$1"/etc/initramfs-tools; fi'
    ]


@pytest.mark.parametrize("link", ["etc", "etc/initramfs-tools"])
def test_an_overlays_initramfs_settings_must_not_be_a_symlink_to_the_hosts(tmp_path: Path, link: str) -> None:
    overlay = tmp_path / "overlay"
    (overlay / link).parent.mkdir(parents=True, exist_ok=True)
    (overlay / link).symlink_to("/etc" if link == "etc" else "/etc/initramfs-tools")
    with pytest.raises(
        InputFileError, match=rf"{overlay / link}: overlay {overlay} must hold etc/initramfs-tools as a directory"
    ):
        rootfs.initramfs_config(overlay, "etc/initramfs-tools")


def test_modes_other_than_644_and_755_key_a_stage_and_private_files_are_listed(tmp_path: Path) -> None:
    tree = tmp_path / "overlay"
    (tree / "root" / ".ssh").mkdir(parents=True)
    key = tree / "root" / ".ssh" / "id_ed25519"
    key.write_text("key\n")
    key.chmod(0o644)
    before = digest_tree(tree)
    key.chmod(0o664)  # a checkout's umask 002: the same file in the image
    assert digest_tree(tree) == before
    key.chmod(0o600)
    assert digest_tree(tree) != before
    (tree / "root" / ".ssh").chmod(0o700)
    assert not_world_readable(tree) == ["root/.ssh", "root/.ssh/id_ed25519"]


def test_the_dom0_config_layer_keeps_a_0600_key_and_records_it(
    tmp_path: Path, stage_runner: Callable[..., StageRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xenlive.recipe import load_recipe
    from xenlive.stages import config

    key = tmp_path / "overlays" / "keys" / "etc" / "ssh" / "ssh_host_ed25519_key"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    (tmp_path / "demo.yaml").write_text("iso: {name: demo}\ndom0: {overlays: [keys]}\n")
    modes: dict[str, int] = {}

    def squash(tree: Path, out: Path, **_: Any) -> None:
        modes.update({rel: tree.joinpath(rel).stat().st_mode & 0o777 for rel in not_world_readable(tree)})
        out.write_bytes(b"hsqs")

    monkeypatch.setattr(config, "make_squashfs", squash)
    result = config.build_dom0_config(stage_runner(), load_recipe(tmp_path / "demo.yaml"))
    # Besides the overlay's key, what xenlive keeps from others: root's password hash, svlogd's logs.
    logs = {f"var/log/xenlive/{name}": 0o700 for name in ("xenconsoled", "xenlive-dnsmasq", "xenlive-sshd")}
    logs |= {f"var/log/xenlive/{name}": 0o700 for name in ("xenlive-uplink", "xenlive-web")}
    assert modes == {"etc/ssh/ssh_host_ed25519_key": 0o600, "etc/xenlive/root-password-hash": 0o600, **logs}
    assert result.fact("not_world_readable") == sorted(modes)


@pytest.mark.parametrize("nat", [True, False])
def test_a_systemd_dom0_forwards_for_nat_on_every_interface_by_sysctl_whatever_its_systemd(
    tmp_path: Path, nat: bool
) -> None:
    """networkd's IPForward= (systemd 252, bookworm) is deprecated in 256+ (trixie): forwarding comes from
    sysctl.d, for every interface, so that the replies coming in on the uplink are forwarded too."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"iso: {{name: demo}}\ndom0: {{init: systemd}}\nnetwork: {{nat: {str(nat).lower()}}}\n")
    tree = tmp_path / "tree"
    install_config(tree, load_recipe(recipe))
    settings = [
        line
        for line in (tree / "etc/sysctl.d/50-xenlive.conf").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert settings == (["net.ipv4.ip_forward = 1"] if nat else [])
    assert "IPForward" not in (tree / "etc/systemd/network/10-xenlive-bridge.network").read_text()


@pytest.mark.parametrize("enabled", [True, False])
def test_a_systemd_dom0_starts_the_guests_once_networkd_has_set_the_bridge_up(tmp_path: Path, enabled: bool) -> None:
    """A vif that joined the bridge while networkd was still setting it up was taken off it again: xenlive.service
    waits for the bridge networkd configures, and for nothing when the guests have no network."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"iso: {{name: demo}}\ndom0: {{init: systemd}}\nnetwork: {{enabled: {str(enabled).lower()}, bridge: br7}}\n"
    )
    tree = tmp_path / "tree"
    install_config(tree, load_recipe(recipe))
    dropin = (tree / "etc/systemd/system/xenlive.service.d/10-bridge.conf").read_text()
    waits = [line for line in dropin.splitlines() if line.startswith("ExecStartPre=")]
    wait_online = "ExecStartPre=-/usr/lib/systemd/systemd-networkd-wait-online --interface=br7:no-carrier --timeout=60"
    assert waits == ([wait_online] if enabled else [])


def test_a_systemd_dom0_leaves_starting_and_stopping_the_guests_to_xenlive(tmp_path: Path) -> None:
    """Debian's xendomains.service is masked: trixie's held dom0's shutdown for 5 min after the guests stopped."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("iso: {name: demo}\ndom0: {init: systemd}\n")
    tree = tmp_path / "tree"
    install_config(tree, load_recipe(recipe))
    assert os.readlink(tree / "etc/systemd/system/xendomains.service") == "/dev/null"
