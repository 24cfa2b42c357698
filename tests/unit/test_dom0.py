"""The dom0 root filesystem stage, its pure parts: which packages dom0 gets, and the versions it records."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlive.errors import BuildError
from xenlive.packages import DebPackage
from xenlive.recipe import Recipe
from xenlive.rootfs import kept_modules
from xenlive.stages.dom0 import installed_version, packages_for, unbake


def recipe(*guest_types: str, suite: str | None = None) -> Recipe:
    guests = [{"name": f"g{i}", "image": "x", "type": kind} for i, kind in enumerate(guest_types)]
    dom0: dict[str, object] = {"packages": ["tmux"], **({"suite": suite} if suite else {})}
    return Recipe.model_validate({"iso": {"name": "t"}, "dom0": dom0, "guests": guests})


def test_dom0_gets_xen_of_its_suite_and_its_own_packages_and_a_device_model_only_for_hvm() -> None:
    packages = packages_for(recipe("pv", "pvh"))
    assert "xen-hypervisor-4.20-amd64" in packages and "tmux" in packages  # trixie's, the default suite
    assert "xen-hypervisor-4.17-amd64" in packages_for(recipe("pv", suite="bookworm"))
    assert "qemu-system-xen" not in packages
    assert "qemu-system-xen" in packages_for(recipe("pv", "hvm"))
    assert packages == sorted(set(packages))


def test_a_missing_xen_or_kernel_package_fails_the_stage_instead_of_recording_a_question_mark() -> None:
    installed = {"xen-hypervisor-4.17-amd64": DebPackage("4.17.5+23-ga4e5191b9d-1", "amd64")}
    assert installed_version(installed, "xen-hypervisor-4.17-amd64") == "4.17.5+23-ga4e5191b9d-1"
    with pytest.raises(BuildError, match=r"no package linux-image-6\.1\.0-28-amd64 is installed"):
        installed_version(installed, "linux-image-6.1.0-28-amd64")


def test_modules_kept_from_pruning_are_found_compressed_or_not(tmp_path: Path) -> None:
    """bookworm's modules are .ko, trixie's .ko.xz: a guest that lost xen-netfront had no network."""
    for rel in (
        "drivers/net/xen-netfront.ko.xz",
        "drivers/net/xen-netfront-extra.ko.xz",
        "drivers/block/xen-blkfront.ko",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    keep = ["drivers/net/xen-netfront.ko", "drivers/block/xen-blkfront.ko", "drivers/xen/xenfs/xenfs.ko"]
    assert kept_modules(tmp_path, keep) == ["drivers/net/xen-netfront.ko.xz", "drivers/block/xen-blkfront.ko"]


def test_unbaking_removes_host_keys_and_the_units_that_are_links_dangling_outside_dom0(tmp_path: Path) -> None:
    system = tmp_path / "etc/systemd/system"
    for wants in ("multi-user.target.wants", "ssh.socket.wants", "ssh.service.wants"):
        (system / wants).mkdir(parents=True)
    (system / "multi-user.target.wants/ssh.service").symlink_to("/nonexistent/usr/lib/systemd/system/ssh.service")
    (system / "ssh.socket.wants/sshd-keygen.service").symlink_to("/nonexistent/sshd-keygen.service")
    (system / "ssh.service.wants/sshd-keygen.service").symlink_to("/nonexistent/sshd-keygen.service")
    (system / "multi-user.target.wants/xen.service").symlink_to("/nonexistent/xen.service")
    (tmp_path / "etc/ssh").mkdir()
    (tmp_path / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tmp_path / "etc/ssh/sshd_config").write_text("")
    assert unbake(tmp_path) == [
        "etc/ssh/ssh_host_ed25519_key",
        "etc/systemd/system/multi-user.target.wants/ssh.service",
        "etc/systemd/system/ssh.service.wants/sshd-keygen.service",
        "etc/systemd/system/ssh.socket.wants/sshd-keygen.service",
    ]
    assert (system / "multi-user.target.wants/xen.service").is_symlink()
    assert (tmp_path / "etc/ssh/sshd_config").exists()
