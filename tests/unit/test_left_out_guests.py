"""A guest whose image files cannot be fetched: `build --strict` stops before any stage with one message
naming each such guest and why; without --strict the guest is left out, and the manifest and dom0's
guests.tsv (the `skip` column xenlive-boot reports at boot) say so (tests/tools/test_left_out_guests.py,
which reads guests.tsv back with unsquashfs).

The recipe is the demo's FreeBSD guest image with its URLs pointed at a loopback HTTP server that has
none of its files (or `--offline` with an empty cache), beside a prebuilt (`url`) guest the server has.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import STAND_IN_VERSIONS
from tests.fakeserver import FakeServer
from xenlive import pipeline
from xenlive.cache import Cache
from xenlive.cli import main
from xenlive.context import BuildContext

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "guest-images"
FREEBSD_SITE = "url: https://download.freebsd.org"
BASE_TXZ = "/releases/amd64/14.2-RELEASE/base.txz"
PREBUILT = {"disk": ("guest.raw", b"\0" * 4096), "kernel": ("vmlinux", b"\x7fELF stand-in kernel")}


def write_recipe(tmp_path: Path, fake: FakeServer) -> Path:
    """Guests freebsd and freebsd2 (the shipped freebsd image, unreachable) and prebuilt (served)."""
    images = tmp_path / "guest-images"
    images.mkdir()
    shipped = (IMAGES / "freebsd.yaml").read_text()
    assert shipped.count(FREEBSD_SITE) == 2
    (images / "freebsd.yaml").write_text(shipped.replace(FREEBSD_SITE, f"url: {fake.base}"))
    shutil.copytree(IMAGES / "freebsd", images / "freebsd")
    shutil.copy(IMAGES / "freebsd.cfg.j2", images)
    pins = "".join(
        f"  {role}:\n    url: {fake.serve(f'/prebuilt/{name}', body)}\n    sha256: {hashlib.sha256(body).hexdigest()}\n"
        for role, (name, body) in PREBUILT.items()
    )
    (images / "prebuilt.yaml").write_text(f"builder: url\nconfig: prebuilt.cfg.j2\nurl:\n{pins}")
    (images / "prebuilt.cfg.j2").write_text('name = "{{ guest.name }}"\nkernel = "{{ image_dir }}/kernel"\n')
    recipe = tmp_path / "left-out.yaml"
    recipe.write_text(
        "iso:\n  name: left-out\nguests:\n"
        "  - {name: freebsd, image: freebsd, type: pvh}\n"
        "  - {name: freebsd2, image: freebsd, type: pvh}\n"
        "  - {name: prebuilt, image: prebuilt}\n"
    )
    return recipe


def stages_must_not_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace every stage of build_iso (and publishing) by a tripwire; the list names those reached."""
    reached: list[str] = []
    for name in (
        "build_dom0_rootfs",
        "build_guest_image",
        "build_grub_boot",
        "build_dom0_config",
        "make_iso",
        "publish",
    ):

        def tripwire(*args: object, _name: str = name, **kwargs: object) -> None:
            reached.append(_name)
            raise AssertionError(f"{_name} ran although the build should have stopped before it")

        monkeypatch.setattr(pipeline, name, tripwire)
    # Root and mmdebstrap, grub... on the build host are checked first, and their versions asked; not what
    # this test is about (and the unit layer runs no tool).
    monkeypatch.setattr(pipeline, "check_build_host", lambda loaded: None)
    monkeypatch.setattr(pipeline, "build_context", lambda loaded, options: BuildContext(versions=STAND_IN_VERSIONS))
    return reached


@pytest.mark.parametrize("offline", [False, True], ids=["http-404", "offline-empty-cache"])
def test_strict_build_stops_before_any_stage_naming_each_guest_left_without_files(
    tmp_path: Path,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    offline: bool,
) -> None:
    recipe = write_recipe(tmp_path, server)
    reached = stages_must_not_run(monkeypatch)
    args = ["build", str(recipe), "--strict", "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--offline"] if offline else args)

    assert reached == []
    assert result.exit_code == 1, result.output
    error = result.stderr[result.stderr.index("error: ") :].splitlines()
    assert error[0] == "error: --strict: cannot build every guest:"
    if offline:  # the prebuilt guest's files are not in the empty cache either
        why = f"is not in the download cache {tmp_path / 'cache' / 'downloads'}, and offline mode forbids"
        assert [line.split(": image ")[0] for line in error[1:]] == [
            "  guest freebsd",
            "  guest freebsd2",
            "  guest prebuilt",
        ]
        assert server.paths == []
    else:
        why = f"cannot download {server.url(BASE_TXZ)}: HTTP 404"
        assert [line.split(": image ")[0] for line in error[1:]] == ["  guest freebsd", "  guest freebsd2"]
        assert server.paths == [BASE_TXZ, "/prebuilt/guest.raw", "/prebuilt/vmlinux"]
    for line in error[1:3]:  # freebsd and freebsd2
        assert ": image freebsd not built: " in line and why in line
    assert Cache(tmp_path / "cache").entries() == [] and not (tmp_path / "out").exists()


def test_a_file_that_does_not_match_its_pin_fails_the_build_even_without_strict(
    tmp_path: Path,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = write_recipe(tmp_path, server)
    server.serve("/prebuilt/vmlinux", b"not the pinned kernel")
    reached = stages_must_not_run(monkeypatch)
    result = CliRunner().invoke(main, ["build", str(recipe), "--cache-dir", str(tmp_path / "cache")])

    assert reached == [] and result.exit_code == 1, result.output
    error = result.stderr[result.stderr.index("error: ") :].strip()
    assert error.startswith(f"error: digest mismatch for {server.url('/prebuilt/vmlinux')}: expected sha256:")
    assert f"got sha256:{hashlib.sha256(b'not the pinned kernel').hexdigest()}" in error


def test_an_artifacts_directory_that_does_not_exist_is_a_usage_error_not_a_left_out_guest(tmp_path: Path) -> None:
    missing = tmp_path / "mirror"
    result = CliRunner().invoke(main, ["build", str(ROOT / "recipes" / "xen-demo.yaml"), "--artifacts", str(missing)])
    assert result.exit_code == 2
    assert f"Invalid value for --artifacts: {missing} is not a directory" in result.output
