"""The real image tools on small inputs: mksquashfs, mkfs.ext4 -d, grub-mkrescue, xorriso."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from xenlive.builders.mmdebstrap import make_ext4
from xenlive.context import versions_of
from xenlive.errors import BuildError
from xenlive.fsutil import sha256_file
from xenlive.rootfs import make_dev, squashfs_devices
from xenlive.run import run
from xenlive.stages import StageRunner
from xenlive.stages.grub import build_grub_boot
from xenlive.tools.grub import grub_mkrescue_argv, mformat_wrapper
from xenlive.tools.squashfs import make_squashfs
from xenlive.tools.xorriso import iso_argv

pytestmark = pytest.mark.tools


def small_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("guest\n")
    (root / "usr" / "bin").mkdir(parents=True)
    script = root / "usr" / "bin" / "hello"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    return root


def test_squashfs_holds_the_tree_with_modes(tmp_path: Path) -> None:
    tree = small_tree(tmp_path / "tree")
    out = tmp_path / "layer.squashfs"
    make_squashfs(tree, out, all_root=True, epoch=0)
    listing = run(["unsquashfs", "-lls", str(out)], capture=True).stdout.decode()
    assert "squashfs-root/etc/hostname" in listing
    line = next(line for line in listing.splitlines() if line.endswith("usr/bin/hello"))
    assert line.startswith("-rwxr-xr-x root/root")


def test_the_tools_that_write_the_squashfs_and_ext4_stages_tell_their_versions() -> None:
    """Their versions key those stages: each is asked in a way it answers (mksquashfs of squashfs-tools 4.5
    fails on --version; e2fsprogs' tools take -V)."""
    for tool, probe in versions_of("mksquashfs", "lz4", "mkfs.ext4", "debugfs").items():
        version = probe()
        assert re.search(r"\b\d+\.\d+", version) and "SYNTAX" not in version, (tool, version)


def test_ext4_image_from_a_directory_without_mounting(tmp_path: Path) -> None:
    tree = small_tree(tmp_path / "tree")
    image = tmp_path / "disk.img"
    size = make_ext4(tree, image, free_mib=8, epoch=1700000000)
    assert image.stat().st_size == size * 2**20
    content = run(["debugfs", "-R", "cat /etc/hostname", str(image)], capture=True).stdout.decode()
    assert content == "guest\n"
    run(["e2fsck", "-fn", str(image)], capture=True)


# /dev of a Debian tree as mmdebstrap makes it as root (unsquashfs -lls), which a build by a user must match.
MMDEBSTRAP_DEV = {
    "dev": "drwxr-xr-x root/root",
    "dev/console": "crw-rw-rw- root/root 5, 1",
    "dev/fd": "lrwxrwxrwx root/root -> /proc/self/fd",
    "dev/full": "crw-rw-rw- root/root 1, 7",
    "dev/null": "crw-rw-rw- root/root 1, 3",
    "dev/ptmx": "crw-rw-rw- root/root 5, 2",
    "dev/pts": "drwxr-xr-x root/root",
    "dev/random": "crw-rw-rw- root/root 1, 8",
    "dev/shm": "drwxr-xr-x root/root",
    "dev/stderr": "lrwxrwxrwx root/root -> /proc/self/fd/2",
    "dev/stdin": "lrwxrwxrwx root/root -> /proc/self/fd/0",
    "dev/stdout": "lrwxrwxrwx root/root -> /proc/self/fd/1",
    "dev/tty": "crw-rw-rw- root/root 5, 0",
    "dev/urandom": "crw-rw-rw- root/root 1, 9",
    "dev/zero": "crw-rw-rw- root/root 1, 5",
}


def dev_listing(listing: str) -> dict[str, str]:
    """unsquashfs -lls lines under dev/: path -> mode, owner, device numbers or link target (no size or date)."""
    found = {}
    for line in listing.splitlines():
        fields = line.split()
        char = len(fields) > 2 and fields[2].endswith(",")  # "5,  1": major, minor instead of a size
        at = 6 if char else 5
        if len(fields) <= at:
            continue
        path = fields[at].removeprefix("squashfs-root/")
        if path == "dev" or path.startswith("dev/"):
            found[path] = " ".join([fields[0], fields[1], *(fields[2:4] if char else []), *fields[at + 1 :]])
    return found


def test_a_debian_trees_dev_gets_the_nodes_mmdebstrap_makes_as_root_without_making_any_itself(tmp_path: Path) -> None:
    """make_dev lays in only what a user namespace may make; the squashfs gets the nodes as pseudo files."""
    tree = small_tree(tmp_path / "tree")
    (tree / "dev").mkdir()
    (tree / "dev" / "leftover").write_text("mmdebstrap bind-mounts files here in a user namespace\n")
    make_dev(tree)
    assert not any(stat.S_ISCHR(path.lstat().st_mode) for path in (tree / "dev").iterdir())
    out = tmp_path / "root.squashfs"
    make_squashfs(tree, out, epoch=0, pseudo=squashfs_devices())
    listing = run(["unsquashfs", "-lls", str(out)], capture=True).stdout.decode()
    assert dev_listing(listing) == MMDEBSTRAP_DEV


def test_an_ext4_image_gets_the_same_device_nodes(tmp_path: Path) -> None:
    tree = small_tree(tmp_path / "tree")
    make_dev(tree)
    image = tmp_path / "disk.img"
    make_ext4(tree, image, free_mib=8, epoch=1700000000)
    for path, expected in MMDEBSTRAP_DEV.items():
        if not expected.startswith("c"):
            continue
        stat = run(["debugfs", "-R", f"stat /{path}", str(image)], capture=True).stdout.decode()
        major, minor = expected.split()[-2:]
        assert "Type: character special    Mode:  0666" in stat, path
        assert "User:     0   Group:     0" in stat, path
        assert f"Device major/minor number: {int(major.rstrip(',')):02d}:{int(minor):02d}" in stat, (path, stat)
        assert "mtime: 0x6553f100" in stat, path  # dated by the epoch, like every other file
    run(["e2fsck", "-fn", str(image)], capture=True)


def test_grub_mkrescue_makes_a_hybrid_bios_and_uefi_iso(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    (staging / "boot" / "grub").mkdir(parents=True)
    (staging / "boot" / "grub" / "grub.cfg").write_text('menuentry "x" { true }\n')
    (staging / "live").mkdir()
    (staging / "live" / "marker").write_text("xenlive\n")
    iso = tmp_path / "t.iso"
    run(grub_mkrescue_argv(staging, iso, volume_label="XENLIVE_T"), capture=True)
    report = subprocess.run(
        ["xorriso", "-indev", str(iso), "-report_el_torito", "plain"], capture_output=True, text=True, check=True
    ).stdout
    assert "BIOS" in report and "UEFI" in report  # El Torito entries for both firmware types
    pvd = subprocess.run(["xorriso", "-indev", str(iso), "-pvd_info"], capture_output=True, text=True, check=True)
    assert "Volume Id    : XENLIVE_T" in pvd.stdout + pvd.stderr
    with iso.open("rb") as f:
        mbr = f.read(512)
    assert mbr[510:512] == b"\x55\xaa"  # bootable as a USB stick (isohybrid MBR)
    files = subprocess.run(
        ["xorriso", "-indev", str(iso), "-find", "/live", "-name", "marker"], capture_output=True, text=True, check=True
    ).stdout
    assert "/live/marker" in files


def test_grub_mkrescue_with_an_epoch_makes_the_same_iso_twice(tmp_path: Path) -> None:
    """Reproducible ISOs: volume dates, file dates, the GPT disk GUID and the EFI image's serial number all
    come from the epoch, not from the clock (the two runs are seconds apart)."""
    staging = tmp_path / "staging"
    (staging / "boot" / "grub").mkdir(parents=True)
    (staging / "boot" / "grub" / "grub.cfg").write_text("set timeout=0\n")
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    (wrappers / "mformat").write_text(mformat_wrapper(1700000000))
    (wrappers / "mformat").chmod(0o755)
    # As in a build: SOURCE_DATE_EPOCH dates what mcopy writes into the EFI image.
    env = {"PATH": f"{wrappers}:{os.environ['PATH']}", "SOURCE_DATE_EPOCH": "1700000000"}
    digests = []
    for name in ("one.iso", "two.iso"):
        run(grub_mkrescue_argv(staging, tmp_path / name, volume_label="T", epoch=1700000000), env=env, capture=True)
        digests.append(sha256_file(tmp_path / name))
        time.sleep(1.1)
    assert digests[0] == digests[1]


def grub_mkrescue_iso(staging: Path, iso: Path, epoch: int, tmp_path: Path) -> None:
    """The ISO grub-mkrescue itself makes of `staging`, dated as a build dates it."""
    wrappers = tmp_path / "bin"
    wrappers.mkdir(exist_ok=True)
    (wrappers / "mformat").write_text(mformat_wrapper(epoch))
    (wrappers / "mformat").chmod(0o755)
    env = {"PATH": f"{wrappers}:{os.environ['PATH']}", "SOURCE_DATE_EPOCH": str(epoch)}
    run(grub_mkrescue_argv(staging, iso, volume_label="XENLIVE_T", epoch=epoch), env=env, capture=True)


def test_an_iso_written_around_the_cached_grub_piece_is_grub_mkrescues_iso_bit_for_bit(
    tmp_path: Path, stage_runner: Callable[..., StageRunner]
) -> None:
    """xorriso with the boot piece writes exactly what grub-mkrescue writes for the same files: the same El
    Torito entries, hybrid MBR, GPT and EFI partition, so the ISO boots the same ways (BIOS and UEFI, CD and
    USB stick). A big file grafted from elsewhere lands where a copy in the tree would."""
    runner = stage_runner()
    grub = build_grub_boot(runner)
    epoch = runner.context.dates.fixed()
    assert build_grub_boot(runner).stage.cached  # made once, then reused by every ISO

    payload = tmp_path / "cache" / "entry" / "filesystem.squashfs"
    payload.parent.mkdir(parents=True, exist_ok=True)
    payload.write_bytes(os.urandom(3 * 2**20))
    menu = 'set timeout=0\nmenuentry "x" { true }\n'
    whole = tmp_path / "whole"
    (whole / "boot" / "grub").mkdir(parents=True)
    (whole / "boot" / "grub" / "grub.cfg").write_text(menu)
    (whole / "live").mkdir()
    (whole / "live" / "filesystem.squashfs").write_bytes(payload.read_bytes())
    grub_mkrescue_iso(whole, tmp_path / "grub-mkrescue.iso", epoch, tmp_path)

    small = tmp_path / "small"
    (small / "boot" / "grub").mkdir(parents=True)
    (small / "boot" / "grub" / "grub.cfg").write_text(menu)
    argv = iso_argv(
        tmp_path / "assembled.iso",
        boot_tree=grub.tree,
        mbr=grub.mbr,
        staging=small,
        grafts={"live/filesystem.squashfs": payload},
        volume_label="XENLIVE_T",
        epoch=epoch,
    )
    run(argv, capture=True)
    assert sha256_file(tmp_path / "assembled.iso") == sha256_file(tmp_path / "grub-mkrescue.iso")
    report = subprocess.run(
        ["xorriso", "-indev", str(tmp_path / "assembled.iso"), "-report_el_torito", "plain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "BIOS" in report and "UEFI" in report


def test_a_tree_in_memory_is_a_tmpfs_of_its_own_and_goes_away_with_its_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As mmdebstrap leaves it when interrupted: its /proc still mounted inside the tree."""
    from xenlive import fsutil
    from xenlive.fsutil import mounts_under

    monkeypatch.setattr(fsutil, "available_memory", lambda: 64 * fsutil.GIB)
    tree = tmp_path / "tree"
    with pytest.raises(KeyboardInterrupt), fsutil.in_memory(tree, fsutil.GIB) as in_ram:
        assert in_ram
        assert mounts_under(tree) == [tree]
        (tree / "proc").mkdir()
        run(["mount", "-t", "proc", "proc", str(tree / "proc")])
        raise KeyboardInterrupt
    assert mounts_under(tmp_path) == []
    assert not tree.exists()


ODD_NAMES = ('a"b', '"', 'two""quotes', "sp ace", "tab\tname", "back\\slash", "#hash", "semi;colon", "<12>")


def test_ext4_image_dates_files_whose_names_debugfs_must_have_quoted(tmp_path: Path) -> None:
    tree = small_tree(tmp_path / "tree")
    for name in ODD_NAMES:
        (tree / "etc" / name).write_text("odd\n")
    image = tmp_path / "disk.img"
    make_ext4(tree, image, free_mib=8, epoch=1700000000)
    for name in ODD_NAMES:
        quoted = '"/etc/' + name.replace('"', '""') + '"'
        stat = run(["debugfs", "-R", f"stat {quoted}", str(image)], capture=True).stdout.decode()
        times = [line.split("--")[0].split(":", 1)[1].strip() for line in stat.splitlines() if "time:" in line]
        assert times and set(times) == {"0x6553f100:00000000"}, (name, stat)


def test_a_name_with_a_line_break_cannot_inject_debugfs_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = small_tree(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)  # where an injected `dump` would write the image's file on the build host
    (tree / "etc" / 'x" ctime @0\ncd etc\ndump hostname stolen\nsif "x').write_text("")
    with pytest.raises(BuildError, match=r"holds a line break, which debugfs .* cannot take \(hint: rename the file"):
        make_ext4(tree, tmp_path / "disk.img", free_mib=8, epoch=1700000000)
    assert not (tmp_path / "stolen").exists()
