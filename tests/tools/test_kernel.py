"""dom0's kernel as the dom0 stage writes it, read back by the real lz4."""

from __future__ import annotations

import lzma
import struct
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_kernel import ELF, bzimage
from xenlive.kernel import extract_vmlinux, write_lz4_vmlinux

pytestmark = pytest.mark.tools


def test_dom0s_kernel_is_lz4_legacy_followed_by_its_size_and_lz4_gives_the_elf_back(tmp_path: Path) -> None:
    source = tmp_path / "vmlinuz"
    source.write_bytes(bzimage(lzma.compress(ELF, format=lzma.FORMAT_XZ)))
    out = tmp_path / "vmlinuz.lz4"
    write_lz4_vmlinux(source, out)
    data = out.read_bytes()
    assert data[:4] == struct.pack("<I", 0x184C2102)  # the legacy frame's magic, which Xen looks for
    assert struct.unpack("<I", data[-4:]) == (len(ELF),)
    assert len(data) < len(ELF) // 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinuz", "vmlinuz.lz4"]  # no ELF left beside it
    (tmp_path / "frame.lz4").write_bytes(data[:-4])
    back = subprocess.run(["lz4", "-d", "-c", str(tmp_path / "frame.lz4")], capture_output=True, check=True).stdout
    assert back == ELF


def test_the_elf_comes_out_of_a_zstd_bzimage_as_trixies_kernel_is_made(tmp_path: Path) -> None:
    """Linux's build appends the uncompressed size to the zstd stream (as to every compressed payload)."""
    plain = tmp_path / "elf"
    plain.write_bytes(ELF)
    stream = subprocess.run(["zstd", "-q", "-c", str(plain)], capture_output=True, check=True).stdout
    assert extract_vmlinux(bzimage(stream + struct.pack("<I", len(ELF)))) == ELF
