"""`cache list/prune/verify` and `diff` (manifest mode) through the real command line; the argv builders."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from xenlive.cache import Cache, StageInputs
from xenlive.cli import main, parse_duration, parse_size
from xenlive.diff import (
    diffoscope_argv,
    extract_iso_argv,
    extract_squashfs_argv,
    parse_squashfs_listing,
    squashfs_listing_argv,
)
from xenlive.download import DownloadCache, fetch
from xenlive.pins import Pinned


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def add_entry(cache: Cache, stage: str, n: int, size: int, age_days: float) -> StageInputs:
    inputs = StageInputs(stage, 1, {"n": n}, {}, {})
    with cache.building(inputs) as work:
        (work / "blob").write_bytes(b"x" * size)
    cache.close()
    when = time.time() - age_days * 86400
    os.utime(cache.entry(inputs), (when, when))
    return inputs


def test_cache_list_shows_stage_key_size_age_and_last_use(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    old = add_entry(cache, "dom0-rootfs", 1, 3 * 2**20, age_days=12)
    new = add_entry(cache, "iso", 2, 2**20, age_days=0)
    result = run("cache", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["STAGE", "KEY", "SIZE", "AGE", "LAST", "USE"]
    assert lines[1].split()[:3] == ["dom0-rootfs", old.key, "3.0M"] and lines[1].split()[-1] == "12d"
    assert lines[2].split()[:2] == ["iso", new.key]
    assert lines[3] == f"2 entries, 4.0 MiB in {tmp_path}"


def test_cache_prune_by_age_then_size_then_all(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    stale = add_entry(cache, "guest-debian", 1, 2**20, age_days=40)
    older = add_entry(cache, "dom0-rootfs", 2, 2 * 2**20, age_days=2)
    newest = add_entry(cache, "iso", 3, 2**20, age_days=0)
    result = run("cache", "prune", "--cache-dir", str(tmp_path), "--older-than", "30d")
    assert result.exit_code == 0 and f"removed guest-debian {stale.key} (1.0 MiB)" in result.output
    result = run("cache", "prune", "--cache-dir", str(tmp_path), "--max-size", "1.5M")
    assert f"removed dom0-rootfs {older.key}" in result.output and "removed iso" not in result.output
    assert [e.key for e in Cache(tmp_path).entries()] == [newest.key]
    assert run("cache", "prune", "--cache-dir", str(tmp_path), "--all").output.endswith("removed 1 entry, 1.0 MiB\n")
    assert Cache(tmp_path).entries() == []


def test_cache_prune_keeps_what_a_running_build_uses(tmp_path: Path) -> None:
    building = Cache(tmp_path)
    inputs = StageInputs("iso", 1, {}, {}, {})
    with building.building(inputs) as work:
        (work / "x.iso").write_text("iso")
    result = run("cache", "prune", "--cache-dir", str(tmp_path), "--all")
    assert f"kept iso {inputs.key}: a running build is using it" in result.output
    assert Cache(tmp_path).entries() != []
    building.close()


def test_cache_verify_exits_1_naming_the_damaged_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    inputs = add_entry(cache, "iso", 1, 100, age_days=0)
    assert run("cache", "verify", "--cache-dir", str(tmp_path)).exit_code == 0
    (cache.entry(inputs) / "blob").write_bytes(b"y" * 100)
    result = run("cache", "verify", "--cache-dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"damaged: iso {inputs.key}: blob: content differs from its sha256 in the manifest" in result.output


def test_the_download_cache_beside_the_stages_is_not_an_entry_to_list_verify_or_prune_by_age(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    inputs = add_entry(cache, "iso", 1, 100, age_days=0)
    release_file = tmp_path / "base.txz"
    release_file.write_bytes(b"stand-in set")
    pinned = Pinned(release_file.as_uri(), f"sha256:{hashlib.sha256(b'stand-in set').hexdigest()}")
    downloaded = fetch(pinned, DownloadCache(cache.downloads))  # where build_iso keeps what it fetches
    cache_dir = str(tmp_path / "cache")
    listing = run("cache", "list", "--cache-dir", cache_dir).output.splitlines()
    assert [line.split()[:2] for line in listing[1:-1]] == [["iso", inputs.key]]
    assert listing[-1] == f"1 entry, 0.0 MiB in {cache_dir}"
    verify = run("cache", "verify", "--cache-dir", cache_dir)
    assert verify.exit_code == 0 and verify.output == "1 entries checked, 0 damaged\n"
    prune = run("cache", "prune", "--max-size", "0", "--cache-dir", cache_dir)
    assert prune.output == f"removed iso {inputs.key} (0.0 MiB)\nremoved 1 entry, 0.0 MiB\n"
    assert downloaded.read_bytes() == b"stand-in set"
    # --all empties the cache: the downloaded files too (the next build fetches them again)
    prune = run("cache", "prune", "--all", "--cache-dir", cache_dir)
    assert prune.output == "removed downloads by-digest (0.0 MiB)\nremoved 1 entry, 0.0 MiB\n"
    assert not downloaded.exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("45", 45), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("512", 512), ("500M", 500 * 2**20), ("1.5GiB", 3 * 2**29), ("2tb", 2**41)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "ten", "5y", "-3d"])
def test_bad_duration_says_what_to_write(bad: str) -> None:
    with pytest.raises(click.BadParameter, match=r"e\.g\. 30d"):
        parse_duration(bad)


def manifest(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "xenlive": "0.1.0",
        "recipe": {"sha256": "r1"},
        "iso": {"sha256": "i1"},
        "stages": [{"name": "dom0-rootfs", "key": "k1"}, {"name": "iso", "key": "k2"}],
        "dom0_packages": {"xen-utils-4.17": "4.17.3-1", "bash": "5.2-2"},
        "guest_images": {"debian": {"packages": {"systemd": "252.30-1"}}},
    }
    return {**base, **changes}


def diff_manifests_cli(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> Result:
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    return run("diff", "--summary", str(tmp_path / "a.json"), str(tmp_path / "b.json"))


def test_diff_of_identical_manifests_exits_0(tmp_path: Path) -> None:
    result = diff_manifests_cli(tmp_path, manifest(), manifest())
    assert result.exit_code == 0 and result.output.endswith("identical\n")


def test_diff_of_manifests_names_versions_keys_and_recipe(tmp_path: Path) -> None:
    b = manifest(
        recipe={"sha256": "r2"},
        stages=[{"name": "dom0-rootfs", "key": "k1"}, {"name": "iso", "key": "k3"}],
        dom0_packages={"xen-utils-4.17": "4.17.4-1", "lz4": "1.9.4-1"},
        guest_images={"debian": {"packages": {"systemd": "252.30-1", "openssh-server": "1:9.2p1-2"}}},
    )
    result = diff_manifests_cli(tmp_path, manifest(), b)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "recipe sha256: r1 -> r2",
        "stage key: changed iso k2 -> k3",
        "dom0 package: changed xen-utils-4.17 4.17.3-1 -> 4.17.4-1",
        "dom0 package: added lz4 1.9.4-1",
        "dom0 package: removed bash 5.2-2",
        "guest image debian package: added openssh-server 1:9.2p1-2",
    ]


def test_diff_bad_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "b.json").write_text(json.dumps(manifest()))
    (tmp_path / "c.iso").write_bytes(b"\0" * 40000)
    assert diff_manifests_cli(tmp_path, {"not": "a manifest"}, manifest()).exit_code == 2
    result = run("diff", "--summary", str(tmp_path / "c.iso"), str(tmp_path / "b.json"))
    assert result.exit_code == 2 and "compare two ISOs or two manifests" in result.output
    result = run("diff", "--summary", str(tmp_path / "c.iso"), str(tmp_path / "c.iso"))
    assert result.exit_code == 2 and "not an ISO 9660 image" in result.output


def test_argv_builders() -> None:
    a, b = Path("/o/a.iso"), Path("/o/b.iso")
    assert diffoscope_argv(a, b) == ["diffoscope", "--no-progress", "/o/a.iso", "/o/b.iso"]
    assert extract_iso_argv(a, Path("/t")) == ["xorriso", "-osirrox", "on", "-indev", "/o/a.iso", "-extract", "/", "/t"]
    assert squashfs_listing_argv(Path("l.sq")) == ["unsquashfs", "-lln", "l.sq"]
    assert extract_squashfs_argv(Path("l.sq"), Path("/t")) == [
        "unsquashfs",
        "-no-progress",
        "-quiet",
        "-d",
        "/t",
        "l.sq",
    ]


def test_squashfs_listing_parsed_by_path_with_link_targets() -> None:
    listing = (
        "Parallel unsquashfs: Using 2 processors\n2 inodes (2 blocks) to write\n\n"
        "drwxr-xr-x 0/0                45 2024-01-01 00:00 squashfs-root\n"
        "-rw-r--r-- 0/0                 6 2024-01-01 00:00 squashfs-root/etc/host name\n"
        "lrwxrwxrwx 0/0                 8 2024-01-01 00:00 squashfs-root/bin -> usr/bin\n"
    )
    assert parse_squashfs_listing(listing) == {
        ".": "drwxr-xr-x 0/0 45 2024-01-01 00:00",
        "etc/host name": "-rw-r--r-- 0/0 6 2024-01-01 00:00",
        "bin": "lrwxrwxrwx 0/0 8 2024-01-01 00:00 -> usr/bin",
    }
