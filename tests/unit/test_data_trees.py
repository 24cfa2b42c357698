"""The data trees laid into dom0 and the guests must survive packaging: an installed xenlive has the checkout's
trees, links and modes included, unpacked from the archive the wheel carries (xenlive/data_archive.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlive import __version__, paths
from xenlive.data_archive import ARCHIVE, TREES, listing, make_archive
from xenlive.fsutil import digest_tree
from xenlive.render import render_tree

ROOT = Path(__file__).resolve().parents[2]


def symlinks() -> list[Path]:
    return sorted(p for tree in TREES if (ROOT / tree).is_dir() for p in (ROOT / tree).rglob("*") if p.is_symlink())


@pytest.mark.parametrize("link", symlinks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_symlink_is_a_mask_or_points_inside_the_tree(link: Path) -> None:
    """A link to a file that exists only in dom0 (e.g. /lib/systemd/system/x.service) dangles in the checkout
    and in the installed data, for every tool that follows links there; enable such units with a drop-in."""
    target = os.readlink(link)
    if target == "/dev/null":
        return
    assert not os.path.isabs(target), f"{link}: absolute link to {target}"
    assert (link.parent / target).resolve().is_relative_to(ROOT), f"{link} points outside the repository"
    assert (link.parent / target).exists(), f"{link}: dangling link to {target}"


def packaged(tmp_path: Path, root: Path = ROOT) -> Path:
    """A package directory holding the archive the wheel's build hook (hatch_build.py) makes of root."""
    package = tmp_path / "site-packages" / "xenlive"
    package.mkdir(parents=True)
    with (package / ARCHIVE).open("wb") as out:
        make_archive(root, out)
    return package


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """paths as an installed xenlive has them: the package holds the archive; its data is unpacked on first use."""
    monkeypatch.setattr(paths, "PACKAGE", packaged(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    paths.installed_data.cache_clear()
    yield tmp_path / "cache"
    paths.installed_data.cache_clear()


def test_an_installed_xenlive_has_the_checkouts_data_trees_links_and_modes_included(installed: Path) -> None:
    data = paths.data_dir("overlays").parent
    assert data.is_relative_to(installed / "xenlive-data") and data.name.startswith(f"{__version__}-")
    assert {paths.data_dir(name).parent for name in TREES} == {data}
    assert listing(data) == listing(ROOT)
    runsvdir = data / "guest-images/init/runit/etc/runit/runsvdir/xenlive"
    assert os.readlink(runsvdir / "xenlive-getty-hvc0") == "../../../sv/xenlive-getty-hvc0"
    assert (runsvdir / "xenlive-getty-hvc0" / "run").is_file()
    assert os.readlink(data / "overlays/xenlive-systemd/etc/systemd/system/fstrim.timer") == "/dev/null"
    assert os.access(data / "overlays/xenlive/usr/lib/xenlive/xenlive-boot", os.X_OK)
    assert not list(data.rglob("__pycache__")) and not list(data.rglob("*.pyc"))


def test_the_archive_depends_only_on_the_trees_not_on_bytecode_umask_or_dates(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for name in TREES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name, symlinks=True)
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    webconsole = copy / "overlays/xenlive/usr/lib/xenlive"
    (webconsole / "__pycache__").mkdir(exist_ok=True)
    (webconsole / "__pycache__" / "webconsole.cpython-311.pyc").write_bytes(b"bytecode")
    (webconsole / "stray.pyc").write_bytes(b"bytecode")
    (copy / "grub" / "grub.cfg.j2").chmod(0o664)  # a checkout made with umask 002
    os.utime(copy / "recipes" / "ci.yaml", (0, 0))
    assert (
        packaged(tmp_path / "a").joinpath(ARCHIVE).read_bytes()
        == packaged(tmp_path / "b", copy).joinpath(ARCHIVE).read_bytes()
    )


def test_data_changed_in_the_cache_is_unpacked_again(installed: Path) -> None:
    getty = paths.data_dir("guest-images") / "init/runit/etc/sv/xenlive-getty-hvc0/run"
    getty.write_text("#!/bin/sh\nexit 0\n")
    paths.installed_data.cache_clear()  # as the next process
    assert listing(paths.data_dir("guest-images").parent) == listing(ROOT)
    assert getty.read_text() == (ROOT / "guest-images/init/runit/etc/sv/xenlive-getty-hvc0/run").read_text()


def test_overlays_are_laid_and_keyed_without_python_bytecode(tmp_path: Path) -> None:
    """dom0 gets no __pycache__ that pip or a test left beside the web console, and the key does not change."""
    overlay = tmp_path / "overlay"
    (overlay / "usr/lib/xenlive").mkdir(parents=True)
    (overlay / "usr/lib/xenlive/webconsole.py").write_text("print('hi')\n")
    before = digest_tree(overlay, overlay=True)
    (overlay / "usr/lib/xenlive/__pycache__").mkdir()
    (overlay / "usr/lib/xenlive/__pycache__/webconsole.cpython-311.pyc").write_bytes(b"bytecode")
    (overlay / "usr/lib/xenlive/old.pyc").write_bytes(b"bytecode")
    assert digest_tree(overlay, overlay=True) == before
    assert render_tree(overlay, tmp_path / "tree", {}) == ["usr/lib/xenlive/webconsole.py"]
    assert sorted(p.name for p in (tmp_path / "tree").rglob("*")) == ["lib", "usr", "webconsole.py", "xenlive"]


def test_the_manifest_names_an_installed_xenlives_files_not_where_it_was_unpacked(installed: Path) -> None:
    shipped = paths.data_dir("guest-images") / "debian.yaml"
    assert paths.recorded(shipped) == "xenlive:guest-images/debian.yaml"
    assert paths.recorded(Path("my-iso/my-iso.yaml")) == "my-iso/my-iso.yaml"


def test_a_checkouts_files_are_recorded_as_they_are() -> None:
    assert paths.recorded(ROOT / "recipes" / "ci.yaml") == str(ROOT / "recipes" / "ci.yaml")
