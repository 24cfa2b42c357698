"""A guest left out without --strict: the manifest and dom0's guests.tsv (read back with unsquashfs from the
config stage mksquashfs wrote) say so (the recipe: tests/unit/test_left_out_guests.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import standins
from tests.fakeserver import FakeServer
from tests.unit.test_left_out_guests import BASE_TXZ, write_recipe
from xenlive.builders.base import Archive
from xenlive.download import DownloadCache
from xenlive.publish import BuildOutputs, publish
from xenlive.recipe import load_recipe
from xenlive.stages import StageRunner
from xenlive.stages.config import build_dom0_config
from xenlive.stages.guest import build_guest_image, fetch_guest_files

pytestmark = pytest.mark.tools


def test_without_strict_the_guest_is_left_out_in_the_manifest_and_skipped_by_guests_tsv(
    tmp_path: Path,
    server: FakeServer,
    stage_runner: Callable[[Path], StageRunner],
) -> None:
    loaded = load_recipe(write_recipe(tmp_path, server))
    downloads = DownloadCache(tmp_path / "cache" / "downloads")
    fetched, left_out = fetch_guest_files(loaded, downloads, offline=False, artifacts=None, strict=False)

    assert sorted(fetched) == ["prebuilt"]
    assert [(entry.guest, entry.image) for entry in left_out] == [("freebsd", "freebsd"), ("freebsd2", "freebsd")]
    reason = left_out[0].reason
    assert reason.startswith("image freebsd not built: ") and server.url(BASE_TXZ) in reason and "HTTP 404" in reason
    assert "\n" not in reason and "\t" not in reason  # one field of guests.tsv, one status line at boot

    runner = stage_runner(tmp_path / "cache")
    archive = Archive("bookworm", ())
    prebuilt = build_guest_image(runner, loaded.guest_images["prebuilt"], archive, fetched["prebuilt"])
    skipped = {entry.guest: entry.reason for entry in left_out}  # as build_iso passes them on
    config = build_dom0_config(runner, loaded, skipped)
    tsv = subprocess.run(
        ["unsquashfs", "-cat", str(config.path / "xenlive.squashfs"), "etc/xenlive/guests.tsv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert [line.split("\t") for line in tsv.splitlines() if not line.startswith("#")] == [
        ["freebsd", "freebsd", "pvh", "yes", reason],
        ["freebsd2", "freebsd", "pvh", "yes", reason],
        ["prebuilt", "prebuilt", "pv", "yes", "-"],
    ]

    # dom0 and the ISO are stand-ins: they take minutes.
    stand_in = standins.outputs(tmp_path / "stand-in", loaded, left_out=tuple(left_out))
    outputs = BuildOutputs(
        dom0=stand_in.dom0,
        images={"prebuilt": prebuilt},
        config=config,
        iso=stand_in.iso,
        left_out=left_out,
        stages=[stand_in.dom0.stage, prebuilt.stage, config, stand_in.iso.stage],
        epoch=0,
        seconds=1.0,
    )
    result = publish(loaded, outputs, tmp_path / "out")
    manifest = json.loads(result.manifest.read_text())
    assert manifest["left_out"] == [
        {"guest": "freebsd", "image": "freebsd", "reason": reason},
        {"guest": "freebsd2", "image": "freebsd", "reason": reason},
    ]
    assert list(manifest["guest_images"]) == ["prebuilt"]
    assert [artifact["name"] for artifact in manifest["artifacts"]] == ["guest.raw", "vmlinux"]  # no base.txz
