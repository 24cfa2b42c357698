"""Guest images built from downloads (netbsd, freebsd, url): schema, argv builders, xl configs, and
fetching generated stand-ins for the release sets from a loopback HTTP server. The real sets cannot be
downloaded here; the stand-ins have the same names and layout. The builders run for real on them in
tests/tools/test_bsd_images.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer
from tests.standins import loaded_recipe
from xenlive.builders.base import Archive
from xenlive.download import DigestMismatch, DownloadCache, DownloadError
from xenlive.guestimage import load_guest_image, read_guest_image
from xenlive.stages.config import guest_config
from xenlive.stages.guest import fetch_image_files
from xenlive.tools.makefs import makefs_argv, mtree_spec
from xenlive.tools.tar import extract_argv

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "guest-images"
NO_ARCHIVE = Archive("bookworm", ())  # images from downloads install nothing from the Debian archive


def test_makefs_argv_writes_ffs_v2_little_endian_at_least_the_asked_size() -> None:
    argv = makefs_argv(Path("/t"), Path("/d.img"), min_mib=100)
    assert argv == [
        "makefs", "-t", "ffs", "-B", "le", "-o", "version=2",
        "-M", str(100 << 20), "-f", "10%", "/d.img", "/t",
    ]  # fmt: skip


def test_makefs_takes_the_times_from_an_mtree_spec_dated_no_later_than_the_epoch(tmp_path: Path) -> None:
    argv = makefs_argv(Path("/t"), Path("/d.img"), min_mib=1, timestamp=1700000000, spec=Path("/t.mtree"))
    assert argv[-6:] == ["-T", "1700000000", "-F", "/t.mtree", "/d.img", "/t"]
    tree = tmp_path / "tree"
    (tree / "usr bin").mkdir(parents=True)
    (tree / "usr bin" / "su#").write_text("")
    (tree / "sh").symlink_to("usr bin/su#")
    os.utime(tree / "usr bin", (1000, 1000))
    assert mtree_spec(tree, 1700000000).splitlines() == [
        "#mtree",
        ". type=dir time=1700000000.0",
        "./sh type=link time=1700000000.0",
        "./usr\\040bin type=dir time=1000.0",
        "./usr\\040bin/su\\043 type=file time=1700000000.0",
    ]


def test_tar_argv_keeps_the_numeric_bsd_owners() -> None:
    argv = extract_argv(Path("/s/base.tar.xz"), Path("/t"))
    assert argv[:5] == ["tar", "-x", "-f", "/s/base.tar.xz", "-C"]
    assert "--numeric-owner" in argv and "--same-owner" in argv


def test_shipped_freebsd_image_is_pinned_pvh_only() -> None:
    image = load_guest_image(IMAGES / "freebsd.yaml")
    assert image.image.types == ["pvh"]
    assert [p.name for p in image.pinned_files().values()] == ["base.txz", "kernel.txz"]


def test_shipped_netbsd_image_names_the_two_files_it_has_no_digest_for() -> None:
    _, problems = read_guest_image(IMAGES / "netbsd.yaml")
    assert [p.key for p in problems] == ["netbsd.kernel.sha512", "netbsd.sets[1].sha512"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_key_of_another_builder_and_a_pv_freebsd_are_located_errors(tmp_path: Path) -> None:
    write(tmp_path / "x.cfg.j2", "")
    bad = write(
        tmp_path / "f.yaml",
        "builder: freebsd\ntypes: [pv]\nconfig: x.cfg.j2\npackages: [vim]\n"
        "freebsd:\n  release: x\n  sets:\n    - url: https://h/base.txz\n",
    )
    lines = [str(p) for p in sorted(read_guest_image(bad)[1], key=lambda p: (p.line, p.column))]
    assert lines == [
        f"{bad}:2:9: types[0]: a freebsd guest cannot boot as pv "
        "(hint: it supports: pvh, hvm; set `types: [pvh, hvm]`)",
        f"{bad}:4:1: packages: belongs to builder mmdebstrap or diskimage-builder, but this image uses builder freebsd "
        "(hint: remove `packages:` or set `builder: mmdebstrap`)",
        f"{bad}:8:7: freebsd.sets[0]: https://h/base.txz is not pinned: give `sha256:` or `sha512:` "
        "(hint: copy the digest from the release's SHA512 / CHECKSUM.SHA256 file; never download a file to compute it)",
    ]


def render(template: str, guest_type: str) -> str:
    """The xl config of guest g1 of image x, rendered as the build renders it."""
    data = {"iso": {"name": "t"}, "guests": [{"name": "g1", "image": "x", "type": guest_type}]}
    loaded = loaded_recipe(data, {"x": IMAGES / template})
    return guest_config(loaded, loaded.recipe.guests[0])


def test_netbsd_config_boots_pv_from_the_uncompressed_kernel_with_root_on_xbd0a() -> None:
    text = render("netbsd.cfg.j2", "pv")
    assert (
        'type = "pv"' in text
        and 'kernel = "/run/xenlive/images/x/netbsd-XEN3_DOMU"' in text
        and 'root = "xbd0a"' in text
    )


def test_freebsd_config_pvh_loads_the_kernel_and_hvm_boots_the_disk() -> None:
    pvh = render("freebsd.cfg.j2", "pvh")
    assert 'type = "pvh"' in pvh and 'kernel = "/run/xenlive/images/x/kernel"' in pvh
    assert "vfs.root.mountfrom=ufs:/dev/xbd0" in pvh and "xenlive.hostname=g1" in pvh
    hvm = render("freebsd.cfg.j2", "hvm")
    assert 'type = "hvm"' in hvm and "kernel =" not in hvm


# ---- the builders on generated stand-ins for the release files --------------------------------------


@dataclass(frozen=True)
class Member:
    """A file of a stand-in set with an owner other than root:wheel, or a special mode."""

    data: bytes
    mode: int
    gid: int
    group: str
    uid: int = 0
    user: str = "root"


def tar_xz(files: dict[str, bytes | Member]) -> bytes:
    """A set in the release layout: ./path entries, owned by root:wheel (0:0) unless given as a Member."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as tar:
        for name, item in files.items():
            executable = name.startswith(("bin/", "sbin/", "boot/kernel/"))
            member = item if isinstance(item, Member) else Member(item, 0o555 if executable else 0o644, 0, "wheel")
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(member.data), member.mode
            info.uid, info.uname, info.gid, info.gname = member.uid, member.user, member.gid, member.group
            tar.addfile(info, io.BytesIO(member.data))
    return out.getvalue()


def superblock(disk: bytes) -> tuple[int, int] | None:
    """The FFS superblock found (FFS version, offset): fs_magic at byte 1372 is UFS1's or UFS2's, and the
    location it records for itself (fs_sblockloc at byte 1000, UFS2 only) is where it is."""
    for offset in (65536, 8192):
        magic = int.from_bytes(disk[offset + 1372 : offset + 1376], "little")
        if magic == 0x011954:
            return 1, offset
        if magic == 0x19540119 and int.from_bytes(disk[offset + 1000 : offset + 1008], "little") == offset:
            return 2, offset
    return None


NETBSD_SETS: dict[str, dict[str, bytes | Member]] = {
    "base.tar.xz": {"bin/sh": b"stand-in\n"},
    "etc.tar.xz": {"etc/rc": b"# stand-in rc\n", "etc/defaults/rc.conf": b""},
}


def netbsd_image(
    tmp_path: Path, fake: FakeServer, *, missing: str = "", sets: dict[str, dict[str, bytes | Member]] | None = None
) -> Path:
    """A netbsd guest image recipe pinned to stand-in files served by the loopback server: base and etc, with
    the files of `sets` (set name -> its files) or NETBSD_SETS."""
    sets = sets or NETBSD_SETS
    files = {
        "kernel/netbsd-XEN3_DOMU.gz": gzip.compress(b"\x7fELF stand-in NetBSD kernel"),
        "sets/base.tar.xz": tar_xz(sets["base.tar.xz"]),
        "sets/etc.tar.xz": tar_xz(sets["etc.tar.xz"]),
    }
    entries = {}
    for path, body in files.items():
        url = fake.serve(f"/NetBSD-10.1/amd64/binary/{path}", body) if path != missing else fake.url(f"/{path}")
        entries[path] = f"url: {url}\n      sha512: {hashlib.sha512(body).hexdigest()}"
    shutil.copytree(IMAGES / "netbsd", tmp_path / "netbsd")
    shutil.copy(IMAGES / "netbsd.cfg.j2", tmp_path)
    return write(
        tmp_path / "nb.yaml",
        "builder: netbsd\nconfig: netbsd.cfg.j2\noverlay: netbsd\ndisk_free: 1\nnetbsd:\n  release: '10.1'\n"
        f"  kernel:\n    {entries['kernel/netbsd-XEN3_DOMU.gz'].replace('      ', '    ')}\n  sets:\n"
        f"    - {entries['sets/base.tar.xz']}\n    - {entries['sets/etc.tar.xz']}\n",
    )


def test_unreachable_files_are_reported_by_name_so_the_build_can_leave_the_guest_out(
    tmp_path: Path,
    server: FakeServer,
) -> None:
    image = load_guest_image(netbsd_image(tmp_path, server, missing="sets/etc.tar.xz"))
    with pytest.raises(DownloadError, match=r"etc\.tar\.xz: HTTP 404"):
        fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)


def test_offline_names_the_missing_file(tmp_path: Path, server: FakeServer) -> None:
    image = load_guest_image(netbsd_image(tmp_path, server))
    with pytest.raises(DownloadError, match=r"netbsd-XEN3_DOMU\.gz .* offline mode forbids downloading it"):
        fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=True, artifacts=None)


# FreeBSD/amd64 ELF kernel header (EI_OSABI 9 = FreeBSD), then a stand-in body.
FREEBSD_KERNEL = b"\x7fELF\x02\x01\x01\x09 stand-in FreeBSD kernel"
FREEBSD_SETS: dict[str, dict[str, bytes | Member]] = {
    "base.txz": {
        "bin/sh": b"stand-in sh\n",
        "etc/rc": b"# stand-in rc\n",
        "etc/defaults/rc.conf": b"",
        # setgid tty as in FreeBSD, whose tty group is 4; the build host's (Debian's) is 5.
        "usr/bin/wall": Member(b"stand-in wall\n", 0o2555, 4, "tty"),
    },
    "kernel.txz": {"boot/kernel/kernel": FREEBSD_KERNEL, "boot/kernel/xen.ko": b"stand-in module\n"},
}


def freebsd_image(
    tmp_path: Path,
    fake: FakeServer,
    *,
    served_instead: dict[str, bytes] | None = None,
    sets: dict[str, dict[str, bytes | Member]] | None = None,
) -> Path:
    """A freebsd guest image recipe (sets) pinned to stand-in base.txz and kernel.txz on the loopback server,
    holding the files of `sets` (set name -> its files) or FREEBSD_SETS.

    `served_instead`: set name -> other bytes the server sends for it (the pin stays that of the stand-in)."""
    entries = []
    for name, files in (sets or FREEBSD_SETS).items():
        body = tar_xz(files)
        url = fake.serve(f"/releases/amd64/14.2-RELEASE/{name}", (served_instead or {}).get(name, body))
        entries.append(f"    - url: {url}\n      sha256: {hashlib.sha256(body).hexdigest()}\n")
    shutil.copytree(IMAGES / "freebsd", tmp_path / "freebsd")
    shutil.copy(IMAGES / "freebsd.cfg.j2", tmp_path)
    return write(
        tmp_path / "fbsd.yaml",
        "builder: freebsd\ntypes: [pvh]\nconfig: freebsd.cfg.j2\noverlay: freebsd\ndisk_free: 1\n"
        "freebsd:\n  release: 14.2-RELEASE\n  sets:\n" + "".join(entries),
    )


def test_freebsd_set_served_with_other_bytes_names_url_and_both_digests_and_caches_nothing(
    tmp_path: Path,
    server: FakeServer,
) -> None:
    tampered = tar_xz({**FREEBSD_SETS["base.txz"], "bin/sh": b"tampered sh\n"})
    image = load_guest_image(freebsd_image(tmp_path, server, served_instead={"base.txz": tampered}))
    pinned = image.pinned_files()["set base.txz"]
    downloads = DownloadCache(tmp_path / "dl")
    with pytest.raises(DigestMismatch) as failure:
        fetch_image_files(image, downloads, offline=False, artifacts=None)
    message = str(failure.value)
    assert pinned.url in message and f"expected {pinned.digest}" in message
    assert f"got sha256:{hashlib.sha256(tampered).hexdigest()}" in message
    assert [p for p in downloads.root.rglob("*") if p.is_file()] == []
    assert server.paths == ["/releases/amd64/14.2-RELEASE/base.txz"]  # kernel.txz not fetched after it


# ---- decompression stops at a ceiling (gzip and xz bombs) ---------------------------------------------------


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_decompression_stops_at_a_ceiling(tmp_path: Path, compress: Callable[[bytes], bytes]) -> None:
    from xenlive.builders.files import MAX_UNPACKED, UnpackError, decompress

    assert MAX_UNPACKED == 32 << 30
    bomb = tmp_path / "disk.raw.gz"
    bomb.write_bytes(compress(bytes(8 << 20)))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(UnpackError, match=r"disk\.raw\.gz unpacks to more than 4194304 bytes"):
        decompress(bomb, tmp_path / "disk.img", limit=4 << 20)
    assert not (tmp_path / "disk.img").exists()
    decompress(bomb, tmp_path / "disk.img", limit=8 << 20)
    assert (tmp_path / "disk.img").stat().st_size == 8 << 20
