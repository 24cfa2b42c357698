"""The cache is relocatable, as a CI cache action saves and restores it: nothing in it names where it is, its
entries still hit after the directory moved (renamed, or copied as a restore does), and no key depends on
where the checkout or the recipe is."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeServer
from tests.unit.test_debcache import through
from tests.unit.test_source_date_epoch import ROOT, copy_project, stage_inputs
from xenlive.cache import StageInputs, canonical_json
from xenlive.debcache import DebCache, store_path
from xenlive.recipe import load_recipe
from xenlive.stages import StageRunner

POOL = "/debian/pool/main/b/bash/bash_5.2.15-2+b7_amd64.deb"


def inputs(stage: str, **settings: Any) -> StageInputs:
    return StageInputs(stage=stage, version=1, settings=settings, files={}, upstream={}, epoch=1704067200)


def fill(runner: StageRunner, package_url: str) -> dict[str, str]:
    """A few entries as stages leave them (files in subdirectories, a symlink), and a kept Debian package."""

    def build(work: Path) -> dict[str, Any]:
        (work / "tree" / "etc").mkdir(parents=True)
        (work / "tree" / "etc" / "motd").write_text("hello\n")
        (work / "tree" / "etc" / "link").symlink_to("motd")
        (work / "image.squashfs").write_bytes(os.urandom(4096))
        return {"kernel": "6.1.0-28-amd64"}

    keys = {}
    for stage in ("dom0-rootfs", "guest-debian", "dom0-config"):
        result = runner.run(inputs(stage, n=stage), stage, build)
        assert not result.cached
        keys[stage] = result.key
    with DebCache(runner.cache.debs).session([package_url]) as apt:
        through(apt, package_url)
    return keys


def assert_hits(runner: StageRunner, keys: dict[str, str], package_url: str) -> None:
    for stage, key in keys.items():
        result = runner.run(inputs(stage, n=stage), stage, lambda work, s=stage: pytest.fail(f"{s} built again"))
        assert result.cached and result.key == key and result.path.parent.parent == runner.cache.root
        assert result.info == {"kernel": "6.1.0-28-amd64"}
    assert DebCache(runner.cache.debs).kept(store_path(package_url) or "") is not None


def names_of(root: Path) -> set[str]:
    """Every file of a directory that mentions it by its absolute path."""
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and str(root).encode() in path.read_bytes()
    }


@pytest.mark.parametrize("move", ["rename", "copy"])
def test_a_moved_cache_still_hits(
    tmp_path: Path, stage_runner: Callable[..., StageRunner], server: FakeServer, move: str
) -> None:
    first = tmp_path / "runner-1" / "cache"
    keys = fill(stage_runner(first), server.serve(POOL, b"!<arch>\n"))
    stage_runner(first).cache.close()
    assert names_of(first) == set()
    moved = tmp_path / "runner-2" / "restored"
    moved.parent.mkdir()
    if move == "rename":
        first.rename(moved)
    else:  # as a CI cache restore: other inodes, other times
        shutil.copytree(first, moved, symlinks=True, copy_function=shutil.copy)
        shutil.rmtree(first)
    assert_hits(stage_runner(moved), keys, server.url(POOL))
    assert server.paths == [POOL]  # the package was downloaded once, before the move


def test_no_key_depends_on_where_the_checkout_or_the_recipe_is(tmp_path: Path) -> None:
    here = stage_inputs(load_recipe(ROOT / "recipes" / "xen-demo.yaml"))
    elsewhere = stage_inputs(load_recipe(copy_project(tmp_path / "elsewhere") / "recipes" / "xen-demo.yaml"))
    assert {name: i.key for name, i in elsewhere.items()} == {name: i.key for name, i in here.items()}
    for stage in here.values():
        assert str(ROOT) not in canonical_json(stage.as_json()), stage.stage
