"""Trees built in memory when the machine has it to spare, and sized the same wherever they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlive import fsutil
from xenlive.fsutil import GIB, in_memory, tree_size_mib


def test_a_tree_is_sized_from_its_files_not_from_its_file_systems_blocks(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("guest\n")  # one block
    (tree / "big").write_bytes(b"x" * (3 * 2**20 + 1))  # 769 blocks
    os.link(tree / "big", tree / "big-again")  # counted once
    (tree / "short").symlink_to("etc/hostname")  # held in its inode
    with (tree / "sparse").open("wb") as f:
        f.truncate(2**20)  # 256 blocks, whether the file system stores the holes or not
    blocks = 1 + 1 + 1 + 769 + 256  # root, etc/, hostname, big, sparse
    assert tree_size_mib(tree) == -(-blocks * 4096 // 2**20)


def test_without_memory_to_spare_the_tree_is_built_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsutil, "available_memory", lambda: 3 * GIB)
    with in_memory(tmp_path / "tree", 3 * GIB // 2) as in_ram:
        assert not in_ram
        (tmp_path / "tree" / "file").write_text("x")
    assert not (tmp_path / "tree").exists()


def test_the_tree_is_removed_also_when_the_build_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsutil, "available_memory", lambda: 0)
    with pytest.raises(RuntimeError), in_memory(tmp_path / "tree", GIB):
        raise RuntimeError("mmdebstrap failed")
    assert not (tmp_path / "tree").exists()
