"""Guest images built from downloads (netbsd, freebsd, url): schema, argv builders, xl configs, and the
builders run for real (tar, makefs, mksquashfs) on generated stand-ins for the release sets, served by a
loopback HTTP server. The real sets cannot be downloaded here; the stand-ins have the same names and layout.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.unit.test_download import FakeServer, server  # noqa: F401 (the fixture)
from xenlive.builders import netbsd
from xenlive.download import DownloadCache, DownloadError
from xenlive.guestimage import load_guest_image, read_guest_image
from xenlive.recipe import Guest, Recipe
from xenlive.render import render_template
from xenlive.stages.guest import fetch_image_files
from xenlive.tools.makefs import makefs_argv
from xenlive.tools.tar import extract_argv

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "guest-images"


def test_makefs_argv_writes_ffs_v2_little_endian_at_least_the_asked_size() -> None:
    argv = makefs_argv(Path("/t"), Path("/d.img"), min_mib=100)
    assert argv == [
        "makefs", "-t", "ffs", "-B", "le", "-o", "version=2",
        "-M", str(100 << 20), "-f", "10%", "/d.img", "/t",
    ]  # fmt: skip


def test_tar_argv_keeps_the_numeric_bsd_owners() -> None:
    argv = extract_argv(Path("/s/base.tar.xz"), Path("/t"))
    assert argv[:5] == ["tar", "-x", "-f", "/s/base.tar.xz", "-C"]
    assert "--numeric-owner" in argv and "--same-owner" in argv


def test_shipped_freebsd_image_is_pinned_pvh_only() -> None:
    image = load_guest_image(IMAGES / "freebsd.yaml")
    assert image.image.types == ["pvh"]
    assert [p.name for p in image.image.pinned_files().values()] == ["base.txz", "kernel.txz"]


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
    guest = Guest(name="g1", image="x", type=guest_type)  # type: ignore[arg-type]
    recipe = Recipe.model_validate({"iso": {"name": "t"}, "guests": [guest.model_dump()]})
    context = {"recipe": recipe, "images": {"g1": "x"}, "guest": guest, "image_dir": "/i/x", "disk": "/dev/d"}
    return render_template(IMAGES / template, context)


def test_netbsd_config_boots_pv_from_the_uncompressed_kernel_with_root_on_xbd0a() -> None:
    text = render("netbsd.cfg.j2", "pv")
    assert 'type = "pv"' in text and 'kernel = "/i/x/netbsd-XEN3_DOMU"' in text and 'root = "xbd0a"' in text


def test_freebsd_config_pvh_loads_the_kernel_and_hvm_boots_the_disk() -> None:
    pvh = render("freebsd.cfg.j2", "pvh")
    assert 'type = "pvh"' in pvh and 'kernel = "/i/x/kernel"' in pvh
    assert "vfs.root.mountfrom=ufs:/dev/xbd0" in pvh and "xenlive.hostname=g1" in pvh
    hvm = render("freebsd.cfg.j2", "hvm")
    assert 'type = "hvm"' in hvm and "kernel =" not in hvm


# ---- the builders on generated stand-ins for the release files --------------------------------------


def tar_xz(files: dict[str, bytes]) -> bytes:
    """A set in the release layout: ./path entries, owned by root:wheel (0:0)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o755 if name.startswith(("bin/", "sbin/")) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def netbsd_image(tmp_path: Path, fake: FakeServer, *, missing: str = "") -> Path:
    """A netbsd guest image recipe pinned to stand-in files served by the loopback server."""
    import hashlib

    files = {
        "kernel/netbsd-XEN3_DOMU.gz": gzip.compress(b"\x7fELF stand-in NetBSD kernel"),
        "sets/base.tar.xz": tar_xz({"bin/sh": b"stand-in\n"}),
        "sets/etc.tar.xz": tar_xz({"etc/rc": b"# stand-in rc\n", "etc/defaults/rc.conf": b""}),
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
    server: FakeServer,  # noqa: F811
) -> None:
    image = load_guest_image(netbsd_image(tmp_path, server, missing="sets/etc.tar.xz"))
    with pytest.raises(DownloadError, match=r"etc\.tar\.xz: HTTP 404"):
        fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)


def test_offline_names_the_missing_file(tmp_path: Path, server: FakeServer) -> None:  # noqa: F811
    image = load_guest_image(netbsd_image(tmp_path, server))
    with pytest.raises(DownloadError, match=r"netbsd-XEN3_DOMU\.gz .* offline mode forbids downloading it"):
        fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=True, artifacts=None)


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("makefs") is None, reason="needs makefs (apt-get install makefs)")
def test_netbsd_builder_makes_an_ffs_disk_and_an_uncompressed_kernel_from_stand_in_sets(
    tmp_path: Path,
    server: FakeServer,  # noqa: F811
) -> None:
    image = load_guest_image(netbsd_image(tmp_path, server))
    files = fetch_image_files(image, DownloadCache(tmp_path / "dl"), offline=False, artifacts=None)
    work = tmp_path / "work"
    work.mkdir()
    info = netbsd.build(work, image, files)
    assert info["sets"] == ["base.tar.xz", "etc.tar.xz"]
    listing = subprocess.run(["unsquashfs", "-l", str(work / "image.squashfs")], capture_output=True, text=True)
    assert "squashfs-root/disk.img" in listing.stdout and "squashfs-root/netbsd-XEN3_DOMU" in listing.stdout
    subprocess.run(["unsquashfs", "-d", str(tmp_path / "out"), str(work / "image.squashfs")], check=True,
                   capture_output=True)  # fmt: skip
    assert (tmp_path / "out" / "netbsd-XEN3_DOMU").read_bytes() == b"\x7fELF stand-in NetBSD kernel"
    superblock = (tmp_path / "out" / "disk.img").read_bytes()[8192 : 8192 + 1376]
    assert superblock[1372:1376] == (0x19540119).to_bytes(4, "little")  # FFSv2 superblock (makefs puts it at 8 KiB)
