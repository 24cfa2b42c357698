"""xenlive's diskimage-builder element lays the overlays into the image inside its chroot: a symlink of the
image never leads a copy to the build host's files. The element's scripts run against a stand-in image
root that holds just enough to run tar in a chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_overlays import assert_host_untouched, debian_like_tree, hostile_overlay
from xenlive.builders.dib import element_dir
from xenlive.fsutil import path_in_tree

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"), reason="needs root and sudo (chroot)"),
]

SCRIPTS = ("extra-data.d/50-xenlive-initramfs-config", "pre-finalise.d/50-xenlive-overlay")


def chroot_with(root: Path, programs: tuple[str, ...]) -> Path:
    """Copy each program and the libraries ldd names for it into root, at the paths they have on the host."""
    for program in programs:
        path = Path(shutil.which(program) or program).resolve()
        ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
        libraries = [word for word in ldd.split() if word.startswith("/")]
        for file in (path, *map(Path, libraries)):
            inside = path_in_tree(root, str(file))
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file.resolve(), inside)
    return root


def test_the_element_unpacks_overlays_inside_the_image_keeping_modes_and_symlinks(tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "run").mkdir(parents=True)
    (host / "usr" / "bin").mkdir(parents=True)
    (host / "usr" / "bin" / "mawk").write_text("the host's mawk\n")
    image = debian_like_tree(tmp_path / "image", host)
    chroot_with(image, ("tar", "mkdir"))
    (image / "etc" / "initramfs-tools").mkdir(parents=True)
    (image / "etc" / "initramfs-tools" / "modules").symlink_to(host / "usr" / "bin" / "mawk")
    overlay = hostile_overlay(tmp_path / "overlay")
    (overlay / "etc" / "initramfs-tools").mkdir()
    (overlay / "etc" / "initramfs-tools" / "modules").write_text("xen-blkfront\n")
    key = overlay / "etc" / "ssh" / "ssh_host_ed25519_key"
    key.parent.mkdir()
    key.write_text("key\n")
    key.chmod(0o600)
    (overlay / "etc" / "motd").write_text("hello\n")
    (overlay / "etc" / "motd").chmod(0o664)
    env = {"PATH": os.environ["PATH"], "TMP_MOUNT_PATH": str(image), "XENLIVE_GUEST_OVERLAYS": str(overlay)}
    for script in SCRIPTS:
        subprocess.run([str(element_dir() / "xenlive-guest" / script)], env=env, check=True)
    assert_host_untouched(host)
    inside = {
        rel: path_in_tree(image, rel, follow_last=True)
        for rel in ("usr/bin/awk", "var/run/evil", "etc/initramfs-tools/modules", "lib/modules-load.d/xen.conf")
    }
    assert inside["usr/bin/awk"].read_text() == "#!/bin/sh\necho pwned\n"
    assert inside["var/run/evil"].read_text() == "written through /var/run\n"
    assert inside["etc/initramfs-tools/modules"].read_text() == "xen-blkfront\n"
    assert inside["lib/modules-load.d/xen.conf"].read_text() == "xen-blkfront\n"
    assert (image / "lib").is_symlink()  # merged /usr kept
    assert os.readlink(image / "etc" / "shadow-link") == "/etc/shadow"
    assert (image / "etc" / "ssh" / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert (image / "etc" / "motd").stat().st_mode & 0o777 == 0o644
    assert (image / "etc" / "ssh" / "ssh_host_ed25519_key").stat().st_uid == 0


def test_an_overlays_dev_proc_and_sys_never_reach_the_build_hosts_mounted_in_the_image(tmp_path: Path) -> None:
    """While the element runs, diskimage-builder has the build host's /dev, /proc and /sys mounted in the image
    (mount_proc_dev_sys): here, stand-in directories of the "host" are. Files of an overlay under dev/, proc/
    or sys/, also reached through a symlink an earlier overlay made, land in the image's own directories."""
    image = chroot_with(tmp_path / "image", ("tar",))
    host = {name: tmp_path / f"host-{name}" for name in ("dev", "proc", "sys")}
    (host["proc"] / "sys" / "kernel").mkdir(parents=True)
    (host["proc"] / "sys" / "kernel" / "hostname").write_text("buildhost\n")
    host["dev"].mkdir()
    host["sys"].mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    for path, text in (
        ("dev/evil", "planted in dev\n"),
        ("proc/sys/kernel/hostname", "pwned\n"),
        ("sys/kernel/evil", "planted in sys\n"),
    ):
        (first / path).parent.mkdir(parents=True, exist_ok=True)
        (first / path).write_text(text)
    (first / "etc").mkdir()
    (first / "etc" / "kernel").symlink_to("/proc/sys/kernel")
    (second / "etc" / "kernel").mkdir(parents=True)
    (second / "etc" / "kernel" / "hostname").write_text("pwned through a symlink\n")
    mounted = []
    try:
        for name, directory in host.items():
            (image / name).mkdir()
            subprocess.run(["mount", "--bind", str(directory), str(image / name)], check=True)
            mounted.append(image / name)
        env = {
            "PATH": os.environ["PATH"],
            "TMP_MOUNT_PATH": str(image),
            "XENLIVE_GUEST_OVERLAYS": f"{first}:{second}",
        }
        subprocess.run(
            [str(element_dir() / "xenlive-guest" / "pre-finalise.d" / "50-xenlive-overlay")], env=env, check=True
        )
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("host-*/**/*")) == [
            "host-proc/sys",
            "host-proc/sys/kernel",
            "host-proc/sys/kernel/hostname",
        ]
        assert (host["proc"] / "sys" / "kernel" / "hostname").read_text() == "buildhost\n"
    finally:
        for mount in reversed(mounted):
            subprocess.run(["umount", str(mount)], check=True)
    assert (image / "dev" / "evil").read_text() == "planted in dev\n"
    assert (image / "sys" / "kernel" / "evil").read_text() == "planted in sys\n"
    assert (image / "proc" / "sys" / "kernel" / "hostname").read_text() == "pwned through a symlink\n"
