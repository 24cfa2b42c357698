"""The data trees laid into dom0 and the guests must survive packaging (`pip install .` copies them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("overlays", "guest-images", "grub", "recipes")


def symlinks() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*") if p.is_symlink())


@pytest.mark.parametrize("link", symlinks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_symlink_is_a_mask_or_points_inside_the_tree(link: Path) -> None:
    """A link to a file that exists only in dom0 (e.g. /lib/systemd/system/x.service) breaks `pip install`,
    which follows links; enable such units with a drop-in instead."""
    target = os.readlink(link)
    if target == "/dev/null":
        return
    assert not os.path.isabs(target), f"{link}: absolute link to {target}"
    assert (link.parent / target).resolve().is_relative_to(ROOT), f"{link} points outside the repository"
    assert (link.parent / target).exists(), f"{link}: dangling link to {target}"
